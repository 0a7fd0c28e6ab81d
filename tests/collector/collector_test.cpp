// Unit tests for the collector's parts that need no network: config (every invalid config's
// exact message), client addresses, origins, user agents, report parsing on real Chromium
// captures, JSON limits, token buckets, the header helper, GeoIP with the MaxMind test
// databases, the store's writer with SQLite, and the fleet endpoints (several tokens per probe,
// GET /v1/config, POST /v1/heartbeat, vantage_points, reload) through the real Handler.
#include <openssl/evp.h>
#include <sqlite3.h>
#include <unistd.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "beacon-collector/config.hpp"
#include "beacon-collector/enrich/client_ip.hpp"
#include "beacon-collector/enrich/geoip.hpp"
#include "beacon-collector/headers.hpp"
#include "beacon-collector/http/handler.hpp"
#include "beacon-collector/ingest/content_encoding.hpp"
#include "beacon-collector/ingest/origins.hpp"
#include "beacon-collector/ingest/rate_limit.hpp"
#include "beacon-collector/ingest/reports.hpp"
#include "beacon-collector/ingest/user_agent.hpp"
#include "beacon-collector/metrics.hpp"
#include "beacon-collector/store/sqlite_store.hpp"
#include "common/config_node.hpp"

namespace fs = std::filesystem;
using namespace vantage;
using namespace vantage::collector;

namespace {

const fs::path kSource = VANTAGE_SOURCE_DIR;

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string capture_body(const std::string& name) {
  const std::string raw = read(kSource / "tests/data/browser-reports/captures" / name);
  return raw.substr(raw.find("\r\n\r\n") + 4);
}

// `endpoint` is a view: pass a string literal.
ingest::ParseContext context(std::string_view endpoint) {
  ingest::ParseContext ctx;
  ctx.received_ns = 1'800'000'000'000'000'000;
  ctx.endpoint = endpoint;
  ctx.user_agent = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0 Safari/537.36";
  return ctx;
}

struct Cwd {
  fs::path old = fs::current_path();
  explicit Cwd(const fs::path& p) { fs::current_path(p); }
  ~Cwd() { fs::current_path(old); }
};

}  // namespace

TEST_CASE("every invalid collector config fails with its exact message", "[collector][config]") {
  const fs::path dir = kSource / "tests/config/collector";
  Cwd cwd(dir);
  std::ifstream in(dir / "expected-errors.tsv");
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto tab = line.find('\t');
    const std::string file = line.substr(0, tab);
    INFO(file);
    try {
      load_collector_config(file);
      FAIL("loaded without error");
    } catch (const ConfigError& e) {
      CHECK(std::string(e.what()) == line.substr(tab + 1));
    }
    ++checked;
  }
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.path().extension() == ".yaml";
  CHECK(checked == files);
}

TEST_CASE("the example collector config loads", "[collector][config]") {
  Cwd cwd(kSource);
  ::setenv("VANTAGE_TOKEN_EU_WEST_DTAG_1", "example-token", 1);
  const CollectorConfig c = load_collector_config("regions/collector/collector.yaml");
  CHECK(c.listen_port == 8080);
  CHECK(c.limits.max_body_bytes == 64 * 1024);
  CHECK(c.allowed_origins.size() == 2);
  REQUIRE(c.probes.size() == 1);
  CHECK(c.probes[0].token == "example-token");
}

TEST_CASE("client addresses are truncated before storing", "[collector][enrich]") {
  using enrich::IpAddress;
  CHECK(IpAddress::parse("81.2.69.160")->truncated(24, 48) == "81.2.69.0/24");
  CHECK(IpAddress::parse("2001:db8:1:2::5")->truncated(24, 48) == "2001:db8:1::/48");
  CHECK(IpAddress::parse("::ffff:192.0.2.77")->truncated(24, 48) == "192.0.2.0/24");
  CHECK(IpAddress::parse("192.0.2.77")->truncated(16, 48) == "192.0.0.0/16");
  CHECK_FALSE(IpAddress::parse("example.com"));
  CHECK_FALSE(enrich::Cidr::parse("10.0.0.0/33"));
}

TEST_CASE("forwarding headers are believed only from trusted proxies", "[collector][enrich]") {
  using enrich::IpAddress;
  const std::vector<enrich::Cidr> trusted{*enrich::Cidr::parse("10.0.0.0/8")};
  const IpAddress proxy = *IpAddress::parse("10.1.2.3");
  const IpAddress stranger = *IpAddress::parse("198.51.100.7");
  CHECK(resolve_client(stranger, "81.2.69.160", "", trusted) == stranger);
  CHECK(resolve_client(proxy, "81.2.69.160", "", trusted) == *IpAddress::parse("81.2.69.160"));
  // The right-most untrusted hop: a client cannot spoof by prepending addresses.
  CHECK(resolve_client(proxy, "1.1.1.1, 81.2.69.160, 10.9.9.9", "", trusted) ==
        *IpAddress::parse("81.2.69.160"));
  CHECK(resolve_client(proxy, "", "for=192.0.2.60;proto=http;by=203.0.113.43", trusted) ==
        *IpAddress::parse("192.0.2.60"));
  CHECK(resolve_client(proxy, "81.2.69.160", R"(for="[2001:db8:cafe::17]:4711")", trusted) ==
        *IpAddress::parse("2001:db8:cafe::17"));
  CHECK(resolve_client(proxy, "garbage", "", trusted) == proxy);
}

TEST_CASE("origin patterns match exact origins, subdomains and ports", "[collector][ingest]") {
  ingest::OriginPolicy p({"https://shop.example.com", "https://*.example.org", "https://*.test:*"});
  CHECK(p.allows("https://shop.example.com"));
  CHECK(p.allows("https://shop.example.com:443"));
  CHECK_FALSE(p.allows("http://shop.example.com"));
  CHECK_FALSE(p.allows("https://shop.example.com:8443"));
  CHECK(p.allows("https://a.b.example.org"));
  CHECK_FALSE(p.allows("https://example.org"));
  CHECK_FALSE(p.allows("https://evilexample.org"));
  CHECK(p.allows("https://app.test:23443"));
  CHECK(p.allows_url("https://a.example.org/path?q=1"));
  CHECK_FALSE(p.allows_url("about:blank"));
  CHECK(ingest::OriginPolicy().allows("https://anything.example"));
  CHECK_THROWS_AS(ingest::OriginPolicy({"https://*evil.example"}), std::invalid_argument);
  CHECK(ingest::strip_query("https://u:p@a.example/p/q?x=1#f") == "https://a.example/p/q");
  CHECK(ingest::strip_query("inline") == "inline");
  CHECK(ingest::strip_query("/checkout?card=4111") == "/checkout");
  CHECK(ingest::strip_query("htt#ps://a.example/?q") == "htt");  // found by the fuzzer
}

TEST_CASE("user agents are reduced to browser family and major version", "[collector][ingest]") {
  using ingest::reduce_user_agent;
  auto ua = reduce_user_agent(
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91");
  CHECK((ua.family == "Edge" && ua.major == 120));
  ua = reduce_user_agent(
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 "
      "(KHTML, like Gecko) Version/17.4 Safari/605.1.15");
  CHECK((ua.family == "Safari" && ua.major == 17));
  ua = reduce_user_agent("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
  CHECK((ua.family == "Firefox" && ua.major == 128));
  CHECK(reduce_user_agent("").family.empty());
  CHECK(reduce_user_agent("SomethingElse/1").family == "Other");
}

TEST_CASE("NEL reports from Chromium are normalised", "[collector][ingest]") {
  auto ctx = context("reports/nel");
  auto out = ingest::parse_reporting_api(capture_body("nel-tcp-refused-plus-ok-batch.http"), ctx);
  REQUIRE(out.ok());
  REQUIRE(out.records.size() >= 2);
  const auto& refused = out.records[0];
  CHECK(refused.kind == "browser_report");
  CHECK(refused.type == "network-error");
  CHECK(refused.nel_type == "tcp.refused");
  CHECK(refused.nel_phase == "connection");
  CHECK(refused.server_ip == "127.0.0.1");
  CHECK(refused.status_code == 0);
  CHECK(refused.elapsed_ms.has_value());
  CHECK(refused.ua_family == "HeadlessChrome");
  CHECK(refused.event_ns < ctx.received_ns);
}

TEST_CASE("every report type in the captures is kept, unknown types raw", "[collector][ingest]") {
  auto ctx = context("reports/default");
  std::map<std::string, int> types;
  for (const char* name :
       {"reporting-v1-crash.http", "reporting-v1-default-deprecation-permissions-policy.http",
        "reporting-v1-integrity-violation-plus-coep.http",
        "reporting-v1-csp-violation-batch3-same-origin.http"}) {
    auto out = ingest::parse_reporting_api(capture_body(name), ctx);
    REQUIRE(out.ok());
    for (const auto& r : out.records) ++types[r.type];
  }
  CHECK(types["crash"] == 1);
  CHECK(types["deprecation"] == 1);
  CHECK(types["permissions-policy-violation"] == 1);
  CHECK(types["coep"] == 1);
  CHECK(types["integrity-violation"] == 1);
  CHECK(types["csp-violation"] == 3);
  auto odd = ingest::parse_reporting_api(
      R"([{"age":0,"type":"future-report","url":"https://a.example/?q","body":{"x":[1,{"u":"https://b.example/p?s=1"}]}}])",
      ctx);
  REQUIRE(odd.records.size() == 1);
  CHECK(odd.records[0].type == "future-report");
  CHECK(odd.records[0].url == "https://a.example/");
  CHECK(odd.records[0].body == R"({"x":[1,{"u":"https://b.example/p"}]})");
  auto stack = ingest::parse_beacon(
      R"j({"kind":"js-error","page":"https://a.example/","stack":"Error: boom\n    at https://a.example/app.js?v=3&t=secret:11:34\n    at f (https://a.example/p.html#frag:2)","message":"see https://a.example/x?token=secret for details"})j",
      ctx);
  REQUIRE(stack.records.size() == 1);
  CHECK(stack.records[0].body.find("secret") == std::string::npos);
  CHECK(stack.records[0].body.find("https://a.example/app.js:11:34") != std::string::npos);
  CHECK(stack.records[0].body.find("(https://a.example/p.html:2)") != std::string::npos);
  CHECK(stack.records[0].body.find("see https://a.example/x for details") != std::string::npos);
}

TEST_CASE("a bad report inside a batch is dropped, a bad batch is refused", "[collector][ingest]") {
  auto ctx = context("reports/nel");
  auto out = ingest::parse_reporting_api(
      R"([{"age":10,"type":"network-error","url":"https://a.example/","body":{"type":"ok"}},
          {"age":-5,"type":"network-error","url":"https://a.example/"},
          {"url":"https://a.example/"}, 7])",
      ctx);
  REQUIRE(out.ok());
  CHECK(out.records.size() == 1);
  CHECK(out.dropped["age_out_of_range"] == 1);
  CHECK(out.dropped["invalid_report"] == 2);
  CHECK(ingest::parse_reporting_api("{}", ctx).error_reason == "wrong_shape");
  CHECK(ingest::parse_reporting_api("[", ctx).error_reason == "malformed_json");
  CHECK(ingest::parse_reporting_api("\xff", ctx).error_reason == "malformed_json");
}

TEST_CASE("legacy CSP reports map onto the Reporting API names", "[collector][ingest]") {
  auto out = ingest::parse_csp_report(capture_body("csp-legacy-report-uri-cross-origin.http"),
                                      context("csp"));
  REQUIRE(out.records.size() == 1);
  const auto& r = out.records[0];
  CHECK(r.type == "csp-violation");
  CHECK(r.url == "https://app.test:23443/page-cross.html");
  CHECK(r.body.find("\"effectiveDirective\":\"style-src-elem\"") != std::string::npos);
  CHECK(r.body.find("effective-directive") == std::string::npos);
}

TEST_CASE("agent beacons become rum events", "[collector][ingest]") {
  auto ctx = context("beacon");
  auto out = ingest::parse_beacon(capture_body("sendbeacon-text-fetch-404.http"), ctx);
  REQUIRE(out.records.size() == 1);
  CHECK(out.records[0].kind == "rum_event");
  CHECK(out.records[0].type == "http_error");
  CHECK(out.records[0].status_code == 404);
  CHECK(out.records[0].method == "GET");
  out = ingest::parse_beacon(capture_body("sendbeacon-text-perf-navigation-timing.http"), ctx);
  REQUIRE(out.records.size() == 1);
  CHECK(out.records[0].type == "timing");
  CHECK(out.records[0].body.find("\"phases_ms\":{\"dns\":") != std::string::npos);
  // A batch from beacon.js: ages from the agent's own clock, weight from its sampling.
  out = ingest::parse_beacon(
      R"({"sent":100000,"sample_rate":0.25,"events":[
          {"kind":"js-error","ts":99000,"page":"https://a.example/p?x","message":"boom"},
          {"kind":"xhr-http-error","ts":100000,"page":"https://a.example/","method":"POST",
           "url":"https://a.example/api/orders/:id","status":503,"duration":12}]})",
      ctx);
  REQUIRE(out.records.size() == 2);
  CHECK(out.records[0].type == "js_error");
  CHECK(out.records[0].url == "https://a.example/p");
  CHECK(ctx.received_ns - out.records[0].event_ns == 1000LL * 1'000'000);
  CHECK(out.records[0].weight == 4.0);
  CHECK(out.records[1].type == "http_error");
  CHECK(out.records[1].method == "POST");
  CHECK(out.records[1].status_code == 503);
}

TEST_CASE("JSON limits are checked on the raw bytes", "[collector][ingest]") {
  std::string label;
  CHECK(ingest::check_json_limits(R"([{"a":"\"[[[[["}])", 2, 100, label).empty());
  CHECK_FALSE(ingest::check_json_limits("[[[", 2, 100, label).empty());
  CHECK(label == "json_too_deep");
  CHECK_FALSE(ingest::check_json_limits(R"(["aaaaaaaaaa"])", 5, 5, label).empty());
  CHECK(label == "string_too_long");
}

TEST_CASE("token buckets refill at their rate and name the wait", "[collector][ingest]") {
  ingest::TokenBuckets b(2, 3);
  CHECK(b.take("192.0.2.1", 0) == 0);
  CHECK(b.take("192.0.2.1", 0) == 0);
  CHECK(b.take("192.0.2.1", 0) == 0);
  CHECK(b.take("192.0.2.1", 0) == 1);  // empty: one token in 0.5 s -> Retry-After: 1
  CHECK(b.take("192.0.2.2", 0) == 0);  // other keys have their own bucket
  CHECK(b.take("192.0.2.1", 0.5) == 0);
  ingest::TokenBuckets slow(0.1, 1);
  CHECK(slow.take("k", 0) == 0);
  CHECK(slow.take("k", 0) == 10);
  CHECK(ingest::TokenBuckets(0, 0).take("k", 0) == 0);  // disabled
}

TEST_CASE("the header helper prints the Reporting API, NEL and CSP lines", "[collector]") {
  HeaderOptions o;
  o.site = "https://shop.example.com/index.html";
  o.collector = "https://collector.example.com/_v/";
  const std::string h = render_headers(o);
  CHECK(h.find("Reporting-Endpoints: default=\"https://collector.example.com/_v/reports/default\", "
               "csp-endpoint=\"https://collector.example.com/_v/reports/csp\"\n") !=
        std::string::npos);
  CHECK(h.find("Report-To: {\"group\":\"nel\",\"max_age\":86400,\"include_subdomains\":true,"
               "\"endpoints\":[{\"url\":\"https://collector.example.com/_v/reports/nel\"}]}\n") !=
        std::string::npos);
  CHECK(h.find("NEL: {\"report_to\":\"nel\",\"max_age\":86400,\"include_subdomains\":true,"
               "\"success_fraction\":0.01,\"failure_fraction\":1.0}\n") != std::string::npos);
  CHECK(h.find("report-to csp-endpoint; report-uri https://collector.example.com/_v/csp") !=
        std::string::npos);
  CHECK(h.find("allowed_origins: [\"https://shop.example.com\", \"https://*.shop.example.com\"]") !=
        std::string::npos);
  CHECK(h.find("WARNING") == std::string::npos);
  o.collector = "http://collector.example.com";
  CHECK(render_headers(o).find("WARNING") != std::string::npos);
  o.site = "shop";
  CHECK_THROWS_AS(render_headers(o), std::invalid_argument);
}

TEST_CASE("GeoIP lookups with the MaxMind test databases", "[collector][enrich]") {
  const fs::path mmdb = kSource / "tests/data/mmdb";
  enrich::GeoIp geo((mmdb / "GeoIP2-City-Test.mmdb").string(),
                    (mmdb / "GeoLite2-ASN-Test.mmdb").string(), "");
  auto telstra = geo.lookup(*enrich::IpAddress::parse("1.128.0.1"));
  CHECK(telstra.asn == 1221);
  CHECK(telstra.isp == "Telstra Pty Ltd");
  auto london = geo.lookup(*enrich::IpAddress::parse("81.2.69.160"));
  CHECK(london.country == "GB");
  CHECK(london.city == "London");
  auto none = geo.lookup(*enrich::IpAddress::parse("192.0.2.1"));
  CHECK((none.country.empty() && none.asn == 0));
  CHECK_THROWS_AS(
      enrich::GeoIp((mmdb / "GeoIP2-City-Test-Invalid-Node-Count.mmdb").string(), "", ""),
      std::system_error);
}

TEST_CASE("the writer group-commits and reports duplicates by result id", "[collector][store]") {
  const fs::path db =
      fs::temp_directory_path() / ("vantage-store-test-" + std::to_string(::getpid()) + ".db");
  fs::remove(db);
  {
    store::SqliteStore sqlite(db.string());
    store::Writer writer(sqlite, 1000, 100);
    std::vector<store::UploadOutcome> outcomes(2);
    std::atomic<int> done{0};
    for (int u = 0; u < 2; ++u) {
      store::Upload upload;
      for (int i = 0; i < 3; ++i) {
        ResultRecord r;
        r.id = "result-" + std::to_string(u + i);  // upload 1 repeats ids 1 and 2
        r.kind = "check_result";
        r.probe_id = "p";
        r.check = "c";
        r.outcome = "ok";
        r.json = "{}";
        upload.results.push_back(r);
      }
      BrowserRecord b;
      b.kind = "browser_report";
      b.type = "network-error";
      b.client_prefix = "192.0.2.0/24";
      b.body = "{}";
      upload.reports.push_back(b);
      upload.done = [&, u](const store::UploadOutcome& o) {
        outcomes[static_cast<std::size_t>(u)] = o;
        ++done;
      };
      REQUIRE(writer.submit(std::move(upload)));
    }
    writer.stop();
    CHECK(done == 2);
    CHECK(outcomes[0].committed);
    CHECK(outcomes[0].inserted == 3);
    CHECK(outcomes[1].inserted == 1);
    CHECK(outcomes[1].duplicates == 2);
    CHECK(writer.committed_records() == 8);
    CHECK_FALSE(writer.submit(store::Upload{}));  // stopped
  }
  sqlite3* con = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &con) == SQLITE_OK);
  auto count = [&](const char* sql) {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(con, sql, -1, &s, nullptr);
    sqlite3_step(s);
    const int n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return n;
  };
  CHECK(count("SELECT count(*) FROM probe_results") == 4);
  CHECK(count("SELECT count(*) FROM browser_reports") == 2);
  CHECK(count("PRAGMA user_version") == 3);
  sqlite3_close(con);
  fs::remove(db);
  fs::remove(db.string() + "-wal");
  fs::remove(db.string() + "-shm");
}

TEST_CASE("gzip and deflate bodies inflate within their limit", "[collector][ingest]") {
  const std::string text = "[{\"type\":\"network-error\",\"url\":\"https://shop.example.com/\"}]";
  auto compress = [&](int window_bits, const std::string& in) {
    z_stream z{};
    REQUIRE(deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) ==
            Z_OK);
    std::string out(deflateBound(&z, in.size()), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
  };
  std::string out, error;
  using ingest::InflateStatus;
  CHECK(ingest::inflate_body(compress(16 + MAX_WBITS, text), true, 1024, out, error) ==
        InflateStatus::ok);
  CHECK(out == text);
  CHECK(ingest::inflate_body(compress(MAX_WBITS, text), false, 1024, out, error) ==
        InflateStatus::ok);
  CHECK(out == text);
  CHECK(ingest::inflate_body(compress(-MAX_WBITS, text), false, 1024, out, error) ==
        InflateStatus::ok);
  CHECK(out == text);
  // Two gzip members one after the other (RFC 1952 §2.2) are one body.
  const std::string two = compress(16 + MAX_WBITS, "[1,") + compress(16 + MAX_WBITS, "2]");
  CHECK(ingest::inflate_body(two, true, 1024, out, error) == InflateStatus::ok);
  CHECK(out == "[1,2]");
  // A bomb stops at the limit; a cut or corrupt stream is malformed, with a reason.
  const std::string bomb = compress(16 + MAX_WBITS, std::string(10 << 20, ' '));
  CHECK(bomb.size() < 20 * 1024);
  CHECK(ingest::inflate_body(bomb, true, 64 * 1024, out, error) == InflateStatus::too_large);
  const std::string gz = compress(16 + MAX_WBITS, text);
  CHECK(ingest::inflate_body(gz.substr(0, gz.size() - 6), true, 1024, out, error) ==
        InflateStatus::malformed);
  CHECK(error == "the compressed stream is truncated");
  CHECK(ingest::inflate_body("\x1f\x8b\x08\x00 not gzip", true, 1024, out, error) ==
        InflateStatus::malformed);
  CHECK(ingest::inflate_body(gz + "trailing", true, 1024, out, error) == InflateStatus::malformed);
}

TEST_CASE("an integer beyond 64 bits drops only the report that carries it",
          "[collector][ingest]") {
  ingest::ParseContext ctx;
  ctx.received_ns = 1'700'000'000'000'000'000LL;
  ctx.endpoint = "reports";
  ctx.limits.max_age_ms = 86'400'000;
  const std::string body =
      R"([{"type":"network-error","url":"https://a.example.com/","age":18446744073709551616,"body":{}},)"
      R"({"type":"network-error","url":"https://b.example.com/","age":-99999999999999999999,"body":{}},)"
      R"({"type":"network-error","url":"https://c.example.com/","age":12,"body":{"note":"1234567890123456789012"}}])";
  const auto out = ingest::parse_reporting_api(body, ctx);
  REQUIRE(out.ok());
  REQUIRE(out.records.size() == 1);
  CHECK(out.records[0].url == "https://c.example.com/");
  CHECK(out.records[0].body.find("1234567890123456789012") != std::string::npos);  // strings kept
  CHECK(out.dropped.at("age_out_of_range") == 2);
  // Still malformed: a number JSON does not allow.
  CHECK_FALSE(
      ingest::parse_reporting_api(R"([{"type":"x","age":012345678901234567890}])", ctx).ok());
}

// --- Fleet: tokens, GET /v1/config, POST /v1/heartbeat, vantage_points, reload ---------------

namespace {

// A handler over a real SqliteStore (temporary file) and its writer, as collector_app.cpp wires
// them, without the server: requests go to on_headers()/on_body() directly.
struct FleetFixture {
  fs::path dir;
  fs::path db;
  fs::path config_dir;
  std::unique_ptr<store::SqliteStore> sqlite;
  std::unique_ptr<store::Writer> writer;
  Metrics metrics;
  std::unique_ptr<Handler> handler;

  FleetFixture() {
    dir = fs::temp_directory_path() /
          ("vantage-fleet-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter()));
    fs::remove_all(dir);
    fs::create_directories(dir / "probes.d");
    config_dir = dir / "probes.d";
    db = dir / "collector.db";
    ::setenv("VANTAGE_TEST_TOKEN_OLD", "token-old", 1);
    ::setenv("VANTAGE_TEST_TOKEN_NEW", "token-new", 1);
    ::setenv("VANTAGE_TEST_TOKEN_B", "token-b", 1);
    sqlite = std::make_unique<store::SqliteStore>(db.string());
    writer = std::make_unique<store::Writer>(*sqlite, 1000, 100, std::chrono::microseconds(0));
    handler = std::make_unique<Handler>(config(true), metrics, *writer,
                                        std::make_shared<enrich::GeoIp>("", "", ""));
  }
  ~FleetFixture() {
    writer->stop();
    handler.reset();
    writer.reset();
    sqlite.reset();
    fs::remove_all(dir);
  }
  static int& counter() {
    static int n = 0;
    return n;
  }

  // eu-west-1 with the old and the new token (rotation), or with the new one only.
  std::shared_ptr<const CollectorConfig> config(bool with_old_token, bool fleet = true) const {
    std::string yaml = "store: {sqlite: " + db.string() + "}\nprobes:\n  - id: eu-west-1\n";
    yaml += with_old_token ? "    tokens: [{token_env: VANTAGE_TEST_TOKEN_OLD}, {token_env: "
                             "VANTAGE_TEST_TOKEN_NEW}]\n"
                           : "    token_env: VANTAGE_TEST_TOKEN_NEW\n";
    yaml += "  - id: us-east-1\n    token_env: VANTAGE_TEST_TOKEN_B\n";
    if (fleet) yaml += "fleet: {config_dir: " + config_dir.string() + "}\n";
    return std::make_shared<const CollectorConfig>(
        parse_collector_config(ConfigNode::load_string(yaml, "collector.yaml")));
  }

  static Request request(std::string method, std::string target, std::string token) {
    Request r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.host_count = 1;
    r.host = "collector.test";
    if (!token.empty()) r.authorization = "Bearer " + token;
    r.peer = *enrich::IpAddress::parse("192.0.2.10");
    return r;
  }

  Response get_config(const std::string& token, const std::string& if_none_match = "") {
    Request r = request("GET", "/v1/config", token);
    r.if_none_match = if_none_match;
    Route route;
    auto answer = handler->on_headers(r, route);
    REQUIRE(answer);  // GET /v1/config never needs a body
    return *answer;
  }

  // The whole exchange: on_headers, then on_body; waits for the answer (it comes from the
  // writer thread after the commit).
  Response post(const std::string& target, const std::string& token, const std::string& body) {
    Request r = request("POST", target, token);
    r.content_type = "application/json";
    r.content_length = body.size();
    Route route;
    if (auto early = handler->on_headers(r, route)) return *early;
    r.body = body;
    std::promise<Response> answer;
    auto future = answer.get_future();
    handler->on_body(std::move(r), route, [&answer](Response res) { answer.set_value(res); });
    REQUIRE(future.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    return future.get();
  }

  void write_file(const std::string& name, const std::string& text) const {
    std::ofstream(config_dir / name, std::ios::binary) << text;
  }

  std::vector<std::map<std::string, std::string>> rows(const std::string& sql) const {
    sqlite3* con = nullptr;
    REQUIRE(sqlite3_open_v2(db.c_str(), &con, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(con, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    std::vector<std::map<std::string, std::string>> out;
    while (sqlite3_step(s) == SQLITE_ROW) {
      std::map<std::string, std::string> row;
      for (int i = 0; i < sqlite3_column_count(s); ++i) {
        const auto* text = sqlite3_column_text(s, i);
        row[sqlite3_column_name(s, i)] =
            text ? std::string(reinterpret_cast<const char*>(text)) : "NULL";
      }
      out.push_back(std::move(row));
    }
    sqlite3_finalize(s);
    sqlite3_close(con);
    return out;
  }
};

std::string header(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

std::string error_of(const Response& r) { return nlohmann::json::parse(r.body).at("error"); }

std::string sha256_of(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  std::string hex;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", digest[i]);
    hex += buf;
  }
  return hex;
}

const std::string kHash64(64, 'a');

std::string heartbeat_body(const std::string& probe_id, const std::string& extra = "") {
  return R"({"type":"heartbeat","probe_id":")" + probe_id +
         R"(","region":"eu-west","country":"DE","asn":64501,"isp":"Example ISP","version":"0.3.0",)"
         R"("revision":"a2487b4","config_hash":"sha256:)" +
         kHash64 +
         R"(","config_source":"collector","checks":["shop-home","api-health"],"spool_results":3,)"
         R"("spool_bytes":2048,"heartbeat_interval_s":30,"started_ns":1765000000000000000,)"
         R"("time_ns":1765000030000000000)" +
         extra + "}";
}

}  // namespace

TEST_CASE("a probe may have several tokens; old and new forms load together",
          "[collector][config][fleet]") {
  FleetFixture f;
  const auto c = f.config(true);
  REQUIRE(c->probes.size() == 3);
  CHECK((c->probes[0].probe_id == "eu-west-1" && c->probes[0].token == "token-old"));
  CHECK((c->probes[1].probe_id == "eu-west-1" && c->probes[1].token == "token-new"));
  CHECK((c->probes[2].probe_id == "us-east-1" && c->probes[2].token == "token-b"));
  CHECK(c->fleet.config_dir == f.config_dir.string());
  CHECK(c->paths.config == std::vector<std::string>{"/v1/config"});
  CHECK(c->paths.heartbeat == std::vector<std::string>{"/v1/heartbeat"});
  // A token given to two probes is refused even when it is one of several.
  const std::string shared =
      "store: {sqlite: x.db}\nprobes:\n  - id: a\n    tokens: [{token_env: "
      "VANTAGE_TEST_TOKEN_OLD}, {token_env: VANTAGE_TEST_TOKEN_NEW}]\n  - id: b\n"
      "    token_env: VANTAGE_TEST_TOKEN_NEW\n";
  CHECK_THROWS_WITH(parse_collector_config(ConfigNode::load_string(shared, "c.yaml")),
                    "c.yaml:5:5: probes[1]: two probes share a token");
  CHECK_THROWS_WITH(parse_collector_config(ConfigNode::load_string(
                        "store: {sqlite: x.db}\nprobes:\n  - id: a\n    tokens: []\n", "c.yaml")),
                    "c.yaml:4:13: probes[0].tokens: give at least one token");
}

TEST_CASE("restart-only keys are named and kept on reload", "[collector][config][fleet]") {
  FleetFixture f;
  CollectorConfig running = *f.config(true);
  CollectorConfig next = running;
  CHECK(restart_only_changes(running, next).empty());
  next.listen_port = 9999;
  next.threads = 4;
  next.store.sqlite_path = "/elsewhere.db";
  next.store.batch_records = 7;
  next.allowed_origins = {"https://shop.example.com"};  // reloadable: not listed
  next.limits.per_ip.rate = 1;                          // reloadable: not listed
  CHECK(restart_only_changes(running, next) ==
        std::vector<std::string>{"listen", "threads", "store.sqlite", "store.batch_records"});
  const CollectorConfig kept = keep_restart_only(running, next);
  CHECK(kept.listen_port == running.listen_port);
  CHECK(kept.threads == running.threads);
  CHECK(kept.store.sqlite_path == running.store.sqlite_path);
  CHECK(kept.allowed_origins == next.allowed_origins);
  CHECK(kept.limits.per_ip.rate == 1);
}

TEST_CASE("GET /v1/config serves the probe's file with an ETag", "[collector][fleet]") {
  FleetFixture f;
  SECTION("authentication as for results") {
    Response r = f.get_config("");
    CHECK(r.status == 401);
    CHECK(header(r, "WWW-Authenticate") == "Bearer");
    r = f.get_config("wrong-token");
    CHECK(r.status == 403);
    CHECK(error_of(r) == "unknown token");
  }
  SECTION("404 with the reason when nothing is there") {
    Response r = f.get_config("token-new");
    CHECK(r.status == 404);
    CHECK(error_of(r) == "no configuration for vantage point \"eu-west-1\"");
    f.handler->reload(f.config(true, /*fleet=*/false), f.handler->geoip());
    r = f.get_config("token-new");
    CHECK(r.status == 404);
    CHECK(error_of(r) == "central configuration is not enabled (fleet.config_dir)");
    CHECK(f.metrics.render().find(
              "vantage_collector_config_requests_total{result=\"not_found\"} 2") !=
          std::string::npos);
  }
  SECTION("default.yaml, then the probe's own file; 304 while unchanged") {
    const std::string fallback =
        "checks:\n  - {id: shop-home, kind: http, url: "
        "https://shop.example.com/}\n";
    f.write_file("default.yaml", fallback);
    Response r = f.get_config("token-old");
    CHECK(r.status == 200);
    CHECK(r.body == fallback);
    CHECK(header(r, "Content-Type") == "application/yaml");
    const std::string etag = "\"" + sha256_of(fallback) + "\"";
    CHECK(header(r, "ETag") == etag);
    // Both tokens of a rotation are the same vantage point.
    CHECK(f.get_config("token-new").body == fallback);
    r = f.get_config("token-new", etag);
    CHECK(r.status == 304);
    CHECK(r.body.empty());
    CHECK(header(r, "ETag") == etag);
    CHECK(f.get_config("token-new", "\"other\", W/" + etag).status == 304);
    CHECK(f.get_config("token-new", "\"other\"").status == 200);
    // The probe's own file wins, and is read at the next request (no reload needed).
    const std::string own = "checks: []\n";
    f.write_file("eu-west-1.yaml", own);
    r = f.get_config("token-new", etag);
    CHECK(r.status == 200);
    CHECK(r.body == own);
    CHECK(header(r, "ETag") == "\"" + sha256_of(own) + "\"");
    // Another vantage point still gets the default.
    CHECK(f.get_config("token-b").body == fallback);
    const std::string page = f.metrics.render();
    CHECK(page.find("vantage_collector_config_requests_total{result=\"ok\"} 5") !=
          std::string::npos);
    CHECK(page.find("vantage_collector_config_requests_total{result=\"not_modified\"} 2") !=
          std::string::npos);
  }
  SECTION("an unreadable file is a 500, counted as an error") {
    fs::create_directories(f.config_dir / "eu-west-1.yaml");  // a directory, not a file
    Response r = f.get_config("token-new");
    CHECK(r.status == 500);
    CHECK(error_of(r) ==
          "the collector cannot read the configuration for vantage point \"eu-west-1\"");
    CHECK(f.metrics.render().find("vantage_collector_config_requests_total{result=\"error\"} 1") !=
          std::string::npos);
  }
  SECTION("only GET and HEAD") {
    Request r = FleetFixture::request("POST", "/v1/config", "token-new");
    Route route;
    auto answer = f.handler->on_headers(r, route);
    REQUIRE(answer);
    CHECK(answer->status == 405);
    CHECK(header(*answer, "Allow") == "GET, HEAD");
  }
}

TEST_CASE("POST /v1/heartbeat stores the vantage point's state after the commit",
          "[collector][fleet]") {
  FleetFixture f;
  const std::string served = "checks: []\n";
  f.write_file("default.yaml", served);
  Response r = f.post("/v1/heartbeat", "token-old", heartbeat_body("eu-west-1"));
  CHECK(r.status == 204);
  // 204 comes after the commit: the rows are there now.
  auto vp = f.rows("SELECT * FROM vantage_points");
  REQUIRE(vp.size() == 1);
  CHECK(vp[0]["probe_id"] == "eu-west-1");
  CHECK(vp[0]["region"] == "eu-west");
  CHECK(vp[0]["country"] == "DE");
  CHECK(vp[0]["asn"] == "64501");
  CHECK(vp[0]["isp"] == "Example ISP");
  CHECK(vp[0]["version"] == "0.3.0");
  CHECK(vp[0]["revision"] == "a2487b4");
  CHECK(vp[0]["config_hash"] == "sha256:" + kHash64);
  CHECK(vp[0]["config_source"] == "collector");
  CHECK(vp[0]["served_config_hash"] == "sha256:" + sha256_of(served));
  CHECK(vp[0]["checks"] == R"(["shop-home","api-health"])");
  CHECK(vp[0]["spool_results"] == "3");
  CHECK(vp[0]["spool_bytes"] == "2048");
  CHECK(vp[0]["heartbeat_interval_ns"] == "30000000000");
  CHECK(vp[0]["started_ns"] == "1765000000000000000");
  CHECK(vp[0]["first_seen_ns"] == vp[0]["last_heartbeat_ns"]);
  CHECK(vp[0]["last_seen_ns"] == vp[0]["last_heartbeat_ns"]);
  auto hb = f.rows("SELECT * FROM heartbeats");
  REQUIRE(hb.size() == 1);
  CHECK(hb[0]["probe_id"] == "eu-west-1");
  CHECK(hb[0]["time_ns"] == "1765000030000000000");
  CHECK(hb[0]["version"] == "0.3.0");
  CHECK(hb[0]["spool_results"] == "3");
  CHECK(hb[0]["received_ns"] == vp[0]["last_heartbeat_ns"]);

  // A second heartbeat: one more history row, the same vantage point row updated.
  const std::string first_seen = vp[0]["first_seen_ns"];
  CHECK(f.post("/v1/heartbeat", "token-new",
               R"({"type":"heartbeat","probe_id":"eu-west-1","version":"0.3.1"})")
            .status == 204);
  vp = f.rows("SELECT * FROM vantage_points");
  REQUIRE(vp.size() == 1);
  CHECK(vp[0]["version"] == "0.3.1");
  CHECK(vp[0]["region"] == "NULL");  // the latest state: what this heartbeat said
  CHECK(vp[0]["first_seen_ns"] == first_seen);
  CHECK(std::stoll(vp[0]["last_heartbeat_ns"]) > std::stoll(first_seen));
  CHECK(f.rows("SELECT * FROM heartbeats").size() == 2);
  const std::string page = f.metrics.render();
  CHECK(page.find("vantage_collector_heartbeats_total 2") != std::string::npos);
}

TEST_CASE("a bad heartbeat is refused with its reason and stores nothing", "[collector][fleet]") {
  FleetFixture f;
  const std::vector<std::pair<std::string, std::string>> cases{
      {"{", "not valid JSON"},
      {"[]", "expected a JSON object"},
      {R"({"probe_id":"eu-west-1"})", "type: missing (expected \"heartbeat\")"},
      {R"({"type":"result","probe_id":"eu-west-1"})", "type: expected \"heartbeat\""},
      {R"({"type":"heartbeat"})", "probe_id: missing"},
      {R"({"type":"heartbeat","probe_id":7})", "probe_id: expected a non-empty string"},
      {heartbeat_body("eu-west-1", R"(,"asn":-1)"), "asn: expected an integer 0-4294967295"},
      {R"({"type":"heartbeat","probe_id":"eu-west-1","asn":4294967296})",
       "asn: expected an integer 0-4294967295"},
      {R"({"type":"heartbeat","probe_id":"eu-west-1","region":5})", "region: expected a string"},
      {R"({"type":"heartbeat","probe_id":"eu-west-1","config_hash":"md5:x"})",
       "config_hash: expected \"sha256:\" and 64 hex digits"},
      {R"({"type":"heartbeat","probe_id":"eu-west-1","config_source":"disk"})",
       "config_source: expected \"file\" or \"collector\""},
      {R"({"type":"heartbeat","probe_id":"eu-west-1","checks":"a"})",
       "checks: expected a list of check ids"},
      {R"({"type":"heartbeat","probe_id":"eu-west-1","checks":[1]})",
       "checks: expected a list of check ids (strings)"},
      {R"({"type":"heartbeat","probe_id":"eu-west-1","spool_results":1.5})",
       "spool_results: expected a non-negative integer"},
      {R"({"type":"heartbeat","probe_id":"eu-west-1","time_ns":18446744073709551615})",
       "time_ns: expected a non-negative integer"},
      {R"({"type":"heartbeat","probe_id":"eu-west-1","heartbeat_interval_s":0})",
       "heartbeat_interval_s: expected a number of seconds, more than 0, at most 86400"},
      {"[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]", "JSON nesting is deeper than 16 levels"},
  };
  for (const auto& [body, reason] : cases) {
    INFO(body);
    Response r = f.post("/v1/heartbeat", "token-new", body);
    CHECK(r.status == 400);
    CHECK(error_of(r).find(reason) != std::string::npos);
  }
  // Another vantage point's id with this token: 403 naming both.
  Response r = f.post("/v1/heartbeat", "token-new", heartbeat_body("us-east-1"));
  CHECK(r.status == 403);
  CHECK(error_of(r) ==
        "the token belongs to probe \"eu-west-1\", the heartbeat names \"us-east-1\"");
  CHECK(f.post("/v1/heartbeat", "", heartbeat_body("eu-west-1")).status == 401);
  CHECK(f.post("/v1/heartbeat", "nope", heartbeat_body("eu-west-1")).status == 403);
  // Over 64 KiB: 413 before the body is read.
  Request big = FleetFixture::request("POST", "/v1/heartbeat", "token-new");
  big.content_type = "application/json";
  big.content_length = kMaxHeartbeatBytes + 1;
  Route route;
  auto answer = f.handler->on_headers(big, route);
  REQUIRE(answer);
  CHECK(answer->status == 413);
  CHECK(f.rows("SELECT * FROM heartbeats").empty());
  CHECK(f.rows("SELECT * FROM vantage_points").empty());
}

TEST_CASE("probe results refresh last_seen_ns of their vantage point", "[collector][fleet]") {
  FleetFixture f;
  auto write_results = [&](std::int64_t received_ns, const std::string& probe) {
    ResultRecord r;
    r.id = "r-" + std::to_string(received_ns);
    r.kind = "check_result";
    r.probe_id = probe;
    r.region = "eu-west";
    r.asn = 64501;
    r.check = "c";
    r.outcome = "ok";
    r.json = "{}";
    r.received_ns = received_ns;
    store::Batch batch;
    batch.results.push_back(&r);
    REQUIRE_FALSE(f.sqlite->write(batch).error);
  };
  write_results(1000, "eu-west-1");  // results before any heartbeat create the row
  auto vp = f.rows("SELECT * FROM vantage_points");
  REQUIRE(vp.size() == 1);
  CHECK((vp[0]["first_seen_ns"] == "1000" && vp[0]["last_seen_ns"] == "1000"));
  CHECK((vp[0]["region"] == "eu-west" && vp[0]["asn"] == "64501"));
  CHECK(vp[0]["last_heartbeat_ns"] == "NULL");
  write_results(3000, "eu-west-1");
  write_results(2000, "eu-west-1");  // late: last_seen_ns never goes back
  vp = f.rows("SELECT * FROM vantage_points");
  CHECK((vp[0]["first_seen_ns"] == "1000" && vp[0]["last_seen_ns"] == "3000"));
  CHECK(f.sqlite->vantage_points() == 1);
  write_results(4000, "us-east-1");
  CHECK(f.sqlite->vantage_points() == 2);
}

TEST_CASE("a reload swaps tokens for the next request; a request in flight keeps its own",
          "[collector][fleet]") {
  FleetFixture f;
  f.write_file("default.yaml", "checks: []\n");
  CHECK(f.get_config("token-old").status == 200);
  CHECK(f.get_config("token-new").status == 200);
  // A heartbeat whose headers were accepted with the old token before the reload...
  Request r = FleetFixture::request("POST", "/v1/heartbeat", "token-old");
  r.content_type = "application/json";
  Route route;
  REQUIRE_FALSE(f.handler->on_headers(r, route));
  f.handler->reload(f.config(false), f.handler->geoip());
  // ... still completes with the settings it started with.
  r.body = heartbeat_body("eu-west-1");
  std::promise<Response> answer;
  auto future = answer.get_future();
  f.handler->on_body(std::move(r), route, [&answer](Response res) { answer.set_value(res); });
  REQUIRE(future.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(future.get().status == 204);
  // New requests: the old token is gone, the new one works.
  CHECK(f.get_config("token-old").status == 403);
  CHECK(f.get_config("token-new").status == 200);
  CHECK(f.post("/v1/heartbeat", "token-old", heartbeat_body("eu-west-1")).status == 403);
  CHECK(f.post("/v1/heartbeat", "token-new", heartbeat_body("eu-west-1")).status == 204);
}
