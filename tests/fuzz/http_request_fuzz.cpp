// libFuzzer target: the collector's request handling from raw bytes. The input is everything a
// client sent on one connection (possibly several pipelined requests); it goes through a
// Boost.Beast request parser and the real Handler the way beacon-collector/http/server.cpp
// `serve()` drives them — header stage (the server's header_limit, no body limit yet),
// Handler::on_headers, body stage (the route's body limit), Handler::on_body — but in memory and
// on one thread. The handler runs over an in-memory SQLite store (its writer thread included),
// the MaxMind test databases and one probe token, so browser reports and probe results are
// parsed, enriched and stored.
//
// Invariants (any violation aborts):
//   - every request the server answers gets exactly one Response (on_body's `done` is called
//     once, never twice, also when it comes from the writer thread);
//   - a final status is 200-599, and the response, serialised as the server writes it, parses
//     back as HTTP with the same status; header names are tokens, values have no CR, LF or NUL;
//   - a request the parser rejected (header or body stage) is answered 4xx and the connection
//     closes: it never reaches the handler, so never gets a 2xx;
//   - a 2xx upload was a POST; for /v1/results with the configured token, and every NDJSON line
//     is accounted for (accepted + duplicates); for browser uploads with an allowed or no Origin;
//   - Access-Control-Allow-Origin is "*" or an allowed origin;
//   - /metrics stays bounded whatever clients send (label values are bounded).
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "beacon-collector/config.hpp"
#include "beacon-collector/enrich/geoip.hpp"
#include "beacon-collector/http/beast_request.hpp"
#include "beacon-collector/http/handler.hpp"
#include "beacon-collector/ingest/origins.hpp"
#include "beacon-collector/metrics.hpp"
#include "beacon-collector/store/sqlite_store.hpp"
#include "beacon-collector/store/store.hpp"
#include "common/config_node.hpp"
#include "common/log.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace vantage::collector;

namespace {

constexpr std::string_view kToken = "fuzz-token-1";  // probe "fuzz-probe-1" (config_yaml())
// Requests served per input at most (a long pipeline adds no coverage, only time).
constexpr int kMaxRequestsPerInput = 16;
// The in-memory store grows with what is stored: start afresh every so many inputs.
constexpr int kInputsPerCollector = 2000;
// Generous: label values are bounded, so the page has a fixed set of series.
constexpr std::size_t kMaxMetricsBytes = 256 * 1024;

[[noreturn]] void violated(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "http_request invariant violated: %s %.*s\n", what,
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// Small limits (the smallest the config allows, or near) so that inputs of a few KiB reach
// every limit; rate limits off, so that an input's answer does not depend on the inputs before.
// The MaxMind test databases resolve 81.2.69.0/24 (GB), 2.125.160.216 (GB) and 1.128.0.0/11.
std::string config_yaml() {
  std::string yaml = R"(listen: 127.0.0.1:0
allowed_origins: [https://shop.example.com, "https://*.test:*"]
trusted_proxies: [10.0.0.0/8, "::1"]
geoip:
  city_db: MMDB/GeoIP2-City-Test.mmdb
  asn_db: MMDB/GeoLite2-ASN-Test.mmdb
  isp_db: MMDB/GeoIP2-ISP-Test.mmdb
limits:
  max_body_bytes: 16KiB
  max_results_body_bytes: 64KiB
  max_header_bytes: 4KiB
  max_reports_per_batch: 20
  max_results_per_upload: 20
  max_json_depth: 8
  max_string_bytes: 2KiB
  per_ip: {rate: 0}
  per_origin: {rate: 0}
store: {sqlite: ":memory:", queue_records: 10000, batch_records: 1000, commit_interval: 0ms}
probes:
  - {id: fuzz-probe-1, token_env: VANTAGE_FUZZ_PROBE_TOKEN}
)";
  const std::string mmdb = VANTAGE_SOURCE_DIR "/tests/data/mmdb";
  for (auto at = yaml.find("MMDB"); at != std::string::npos;
       at = yaml.find("MMDB", at + mmdb.size())) {
    yaml.replace(at, 4, mmdb);
  }
  return yaml;
}

// What collector_app.cpp builds, without the server.
struct Collector {
  CollectorConfig config;
  enrich::GeoIp geoip;
  store::SqliteStore store;
  store::Writer writer;
  Metrics metrics;
  Handler handler;
  ingest::OriginPolicy origins;

  explicit Collector(CollectorConfig c)
      : config(std::move(c)),
        geoip(config.geoip.city_db, config.geoip.asn_db, config.geoip.isp_db),
        store(config.store.sqlite_path),
        writer(store, config.store.queue_records, config.store.batch_records,
               config.store.commit_interval),
        handler(config, metrics, writer, geoip),
        origins(config.allowed_origins) {}
  ~Collector() { writer.stop(); }
};

CollectorConfig load_config() {
  setenv("VANTAGE_FUZZ_PROBE_TOKEN", std::string(kToken).c_str(), 1);
  return parse_collector_config(
      vantage::ConfigNode::load_string(config_yaml(), "fuzz-collector.yaml"));
}

using Parser = http::request_parser<http::string_body>;

// http::read_header / http::read on a connection whose bytes are all in `rest` already: put()
// until the stage is done; needing more than there is means the client stopped sending (the
// stream's end: put_eof(), or end_of_stream when nothing of this message came).
void read_stage(Parser& parser, std::string_view& rest, bool header_only, beast::error_code& ec) {
  for (;;) {
    if (header_only ? parser.is_header_done() : parser.is_done()) return;
    std::size_t used = 0;
    if (!rest.empty()) {
      used = parser.put(asio::buffer(rest.data(), rest.size()), ec);
      rest.remove_prefix(used);
      if (ec && ec != http::error::need_more) return;
      ec = {};
    }
    if (used == 0) {
      if (parser.got_some()) {
        parser.put_eof(ec);
        if (!ec && !(header_only ? parser.is_header_done() : parser.is_done())) {
          ec = http::error::partial_message;
        }
      } else {
        ec = http::error::end_of_stream;
      }
      return;
    }
  }
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f ||
        std::string_view("\"(),/:;<=>?@[\\]{}").find(static_cast<char>(c)) !=
            std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// VANTAGE_FUZZ_TRACE=1: one line per answer on stderr (what a seed exercises).
const bool kTrace = std::getenv("VANTAGE_FUZZ_TRACE") != nullptr;

// Checks a response and writes it as Server::Impl::write() does; returns whether the connection
// stays open for the next request.
bool write(const Collector& c, const Response& res, unsigned version, bool keep_alive, bool head) {
  if (kTrace) {
    std::fprintf(stderr, "  -> %d %.*s\n", res.status,
                 static_cast<int>(std::min<std::size_t>(res.body.size(), 160)), res.body.data());
  }
  if (res.status < 200 || res.status > 599)
    violated("final status outside 200-599:", std::to_string(res.status));
  for (const auto& [name, value] : res.headers) {
    if (!is_token(name)) violated("header name is not a token:", name);
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      violated("header value with CR, LF or NUL:", name);
    }
    if (beast::iequals(name, "Access-Control-Allow-Origin") && value != "*" &&
        !c.origins.allows(value)) {
      violated("CORS allows an origin that is not allowed:", value);
    }
  }
  http::response<http::string_body> out(static_cast<http::status>(res.status), version);
  out.set(http::field::server, "vantage-collector");
  for (const auto& [k, v] : res.headers) out.insert(k, v);
  out.body() = res.body;
  out.keep_alive(keep_alive && !res.close);
  out.prepare_payload();
  if (head) out.body().clear();
  std::ostringstream wire;
  wire << out;
  const std::string bytes = wire.str();

  // What the client reads back.
  http::response_parser<http::string_body> back;
  back.eager(true);
  back.skip(head);
  back.body_limit(boost::none);
  beast::error_code ec;
  const std::size_t used = back.put(asio::buffer(bytes), ec);
  if (!ec && !back.is_done()) back.put_eof(ec);
  if (ec || !back.is_done() || used != bytes.size())
    violated("response does not parse back:", ec.message());
  if (back.get().result_int() != static_cast<unsigned>(res.status))
    violated("response status changed on the wire");
  if (!head && back.get().body() != res.body) violated("response body changed on the wire");
  return out.keep_alive();
}

// Waits for on_body's answer (it may come from the writer thread) and checks it comes once.
struct Answer {
  std::mutex mutex;
  std::condition_variable cv;
  std::optional<Response> response;
  int calls = 0;
};

Response answer_body(Handler& handler, Request&& req, const Route& route) {
  auto answer = std::make_shared<Answer>();
  handler.on_body(std::move(req), route, [answer](Response r) {
    std::lock_guard lock(answer->mutex);
    if (++answer->calls > 1) violated("on_body answered twice");
    answer->response = std::move(r);
    answer->cv.notify_all();
  });
  std::unique_lock lock(answer->mutex);
  if (!answer->cv.wait_for(lock, std::chrono::seconds(20),
                           [&] { return answer->response.has_value(); })) {
    violated("on_body never answered");
  }
  return std::move(*answer->response);
}

// Non-empty NDJSON lines, counted as the handler splits them.
int ndjson_lines(std::string_view body) {
  int n = 0;
  while (!body.empty()) {
    const auto nl = std::min(body.find('\n'), body.size());
    std::string_view line = body.substr(0, nl);
    body.remove_prefix(std::min(nl + 1, body.size()));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (!line.empty()) ++n;
  }
  return n;
}

void check_upload_answer(const Collector& c, const Request& req, const Route& route,
                         const Response& res) {
  if (res.status < 200 || res.status > 299) return;
  if (req.method != "POST") violated("2xx upload answer to a", req.method);
  if (route.endpoint == Endpoint::results) {
    const std::string_view auth = req.authorization;
    if (auth.size() < 7 || !beast::iequals(auth.substr(0, 7), "bearer ") ||
        auth.substr(7) != kToken) {
      violated("results accepted without the probe's token");
    }
    const bool identity =
        req.content_encoding.empty() || beast::iequals(req.content_encoding, "identity");
    if (identity) {
      const auto j = nlohmann::json::parse(res.body, nullptr, false);
      if (!j.is_object() || !j["accepted"].is_number_integer() ||
          !j["duplicates"].is_number_integer()) {
        violated("results answer is not {accepted, duplicates}:", res.body);
      }
      const int lines = ndjson_lines(req.body);
      if (j["accepted"].get<int>() + j["duplicates"].get<int>() != lines) {
        violated("results answer does not account for every line:", res.body);
      }
      if (lines > c.config.limits.max_results_per_upload)
        violated("more results accepted than the limit");
    }
  } else if (route.endpoint == Endpoint::heartbeat) {
    const std::string_view auth = req.authorization;
    if (auth.size() < 7 || !beast::iequals(auth.substr(0, 7), "bearer ") ||
        auth.substr(7) != kToken) {
      violated("heartbeat accepted without the probe's token");
    }
  } else if (!req.origin.empty() && !c.origins.allows(req.origin)) {
    violated("browser upload accepted from an origin not allowed:", req.origin);
  }
}

void serve(Collector& c, std::string_view rest) {
  static const enrich::IpAddress peer = *enrich::IpAddress::parse("10.0.0.1");  // a trusted proxy
  for (int n = 0; n < kMaxRequestsPerInput && !rest.empty(); ++n) {
    Parser parser;
    parser.header_limit(static_cast<std::uint32_t>(c.config.limits.max_header_bytes));
    parser.body_limit(boost::none);
    beast::error_code ec;
    read_stage(parser, rest, /*header_only=*/true, ec);
    Route route;
    if (ec) {
      int status = 0;
      if (ec == http::error::header_limit) {
        status = 431;
      } else if (ec == http::error::body_limit) {
        status = 413;
      } else if (ec != http::error::end_of_stream) {
        status = 400;
      }
      if (status) {
        Response r = c.handler.protocol_error(status, "fuzz: " + ec.message());
        if (r.status != status || !r.close)
          violated("protocol error answered as", std::to_string(r.status));
        write(c, r, 11, false, false);
        c.handler.observe(route, r.status);
      }
      return;
    }
    Request req = to_request(parser, peer);
    if (kTrace) std::fprintf(stderr, "%s %s\n", req.method.c_str(), req.target.c_str());
    const unsigned version = parser.get().version();
    const bool keep_alive = parser.get().keep_alive();
    const bool head = parser.get().method() == http::verb::head;
    if (auto early = c.handler.on_headers(req, route)) {
      const bool has_body =
          parser.chunked() || (parser.content_length() && *parser.content_length() > 0);
      if (has_body) early->close = true;
      if (early->status >= 200 && early->status <= 299 && req.method == "POST") {
        violated("a POST answered 2xx before its body was read");
      }
      const bool open = write(c, *early, version, keep_alive, head);
      c.handler.observe(route, early->status);
      if (!open) return;
      continue;
    }
    parser.body_limit(c.handler.max_body_bytes(route));
    // (Expect: 100-continue: the server writes "100 Continue" here; nothing to do in memory.)
    read_stage(parser, rest, /*header_only=*/false, ec);
    if (ec) {
      if (ec == http::error::body_limit) {
        Response r = c.handler.protocol_error(413, "request body too large");
        if (r.status != 413 || !r.close)
          violated("body over the limit answered as", std::to_string(r.status));
        write(c, r, version, false, false);
        c.handler.observe(route, r.status);
      } else {
        c.metrics.connection_closed("error");  // the server closes without an answer
      }
      return;
    }
    req.body = std::move(parser.get().body());
    const Request copy = req;  // what the checks below compare the answer with
    Response res = answer_body(c.handler, std::move(req), route);
    check_upload_answer(c, copy, route, res);
    const bool open = write(c, res, version, keep_alive, false);
    c.handler.observe(route, res.status);
    if (!open) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  vantage::log::set_level(vantage::log::Level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const CollectorConfig config = load_config();
  static std::unique_ptr<Collector> collector;
  static int inputs = 0;
  if (!collector || ++inputs % kInputsPerCollector == 0) {
    if (collector && collector->metrics.render().size() > kMaxMetricsBytes) {
      violated("the metrics page grew past", std::to_string(kMaxMetricsBytes));
    }
    collector.reset();
    collector = std::make_unique<Collector>(config);
  }
  serve(*collector, std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
