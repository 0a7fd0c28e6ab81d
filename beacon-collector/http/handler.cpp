#include "beacon-collector/http/handler.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "beacon-collector/agent/beacon_js.hpp"
#include "beacon-collector/enrich/geoip.hpp"
#include "beacon-collector/ingest/content_encoding.hpp"
#include "beacon-collector/ingest/origins.hpp"
#include "beacon-collector/ingest/rate_limit.hpp"
#include "beacon-collector/ingest/reports.hpp"
#include "beacon-collector/metrics.hpp"
#include "beacon-collector/store/store.hpp"
#include "common/log.hpp"
#include "common/observation.hpp"
#include "common/time.hpp"

namespace vantage::collector {
namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double steady_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// "application/reports+json; charset=utf-8" -> "application/reports+json"
std::string media_type(std::string_view content_type) {
  std::string_view t =
      content_type.substr(0, std::min(content_type.find(';'), content_type.size()));
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
  return ingest::ascii_lower(t);
}

std::string_view endpoint_label(Endpoint e) {
  switch (e) {
    case Endpoint::reports:
      return "reports";
    case Endpoint::csp:
      return "csp";
    case Endpoint::beacon:
      return "beacon";
    case Endpoint::results:
      return "results";
    case Endpoint::beacon_js:
      return "beacon.js";
    case Endpoint::metrics:
      return "metrics";
    case Endpoint::healthz:
      return "healthz";
    case Endpoint::readyz:
      return "readyz";
    case Endpoint::config:
      return "config";
    case Endpoint::heartbeat:
      return "heartbeat";
    case Endpoint::none:
      return "other";
  }
  return "other";
}

Response text(int status, std::string body) {
  Response r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  r.body = std::move(body);
  return r;
}

Response json_error(int status, std::string_view reason) {
  Response r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  // Reasons may echo client input (a Content-Type, a Content-Encoding): never throw on bytes
  // that are not UTF-8 (found by the http_request fuzzer).
  r.body = nlohmann::json{{"error", reason}}.dump(-1, ' ', false,
                                                  nlohmann::json::error_handler_t::replace) +
           "\n";
  return r;
}

// The path of a request target: origin-form "/p?q" as it is; absolute-form "http://h:1/p?q"
// (RFC 9112 §3.2.2, sent to proxies and allowed to origin servers) without scheme and authority.
std::string_view target_path(std::string_view target) {
  auto starts_with_scheme = [&](std::string_view scheme) {
    return target.size() >= scheme.size() &&
           ingest::ascii_lower(target.substr(0, scheme.size())) == scheme;
  };
  if (starts_with_scheme("http://") || starts_with_scheme("https://")) {
    target.remove_prefix(target.find("://") + 3);
    const auto start = target.find_first_of("/?");
    if (start == std::string_view::npos) return "/";
    target.remove_prefix(start);
    if (target.front() == '?') return "/";
  }
  return target.substr(0, std::min(target.find('?'), target.size()));
}

// A Host field value RFC 9112 §3.2 accepts: uri-host [":" port] — no white space, no path,
// userinfo or control characters. (Its exact grammar is left to the URI parser of each client;
// this refuses what cannot be a host in any of them.)
bool valid_host(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  for (unsigned char c : host) {
    if (c <= 0x20 || c >= 0x7f || c == '/' || c == '?' || c == '#' || c == '@' || c == '\\') {
      return false;
    }
  }
  return true;
}

bool is_browser(Endpoint e) {
  return e == Endpoint::reports || e == Endpoint::csp || e == Endpoint::beacon;
}

std::string sha256_hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

// The largest central configuration file served (bytes); larger: 500, result="error".
constexpr std::size_t kMaxServedConfigBytes = 1 << 20;

// What GET /v1/config serves a vantage point: <dir>/<probe_id>.yaml, else <dir>/default.yaml.
// Read at each request (no cache: a changed file is served at the next poll).
struct ServedConfig {
  enum class Status { ok, disabled, not_found, error } status = Status::disabled;
  std::string body;
  std::string sha256;  // hex of body
  std::string error;   // Status::error: what failed, naming the file
};

// 0: read; ENOENT: no such file; another errno: the read failed (`error` says what).
int read_small_file(const std::string& path, std::string& out, std::string& error) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int e = errno;
    if (e != ENOENT) error = "cannot read \"" + path + "\": " + std::strerror(e);
    return e;
  }
  struct stat st {};
  int rc = 0;
  if (::fstat(fd, &st) != 0) {
    rc = errno;
    error = "cannot read \"" + path + "\": " + std::strerror(rc);
  } else if (!S_ISREG(st.st_mode)) {
    rc = EINVAL;
    error = "\"" + path + "\" is not a regular file";
  } else if (static_cast<std::uint64_t>(st.st_size) > kMaxServedConfigBytes) {
    rc = EFBIG;
    error = "\"" + path + "\" is larger than " + std::to_string(kMaxServedConfigBytes) + " bytes";
  } else {
    out.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < out.size()) {
      const ssize_t n = ::read(fd, out.data() + got, out.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        rc = errno;
        error = "cannot read \"" + path + "\": " + std::strerror(rc);
        break;
      }
      if (n == 0) break;  // shrank while read: serve what is there
      got += static_cast<std::size_t>(n);
    }
    out.resize(got);
  }
  ::close(fd);
  return rc;
}

ServedConfig served_config(const std::string& dir, const std::string& probe_id) {
  ServedConfig c;
  if (dir.empty()) return c;
  // A probe id is a file name only when it cannot leave the directory.
  std::vector<std::string> candidates;
  if (!probe_id.empty() && probe_id.find('/') == std::string::npos &&
      probe_id.find('\0') == std::string::npos) {
    candidates.push_back(dir + "/" + probe_id + ".yaml");
  }
  candidates.push_back(dir + "/default.yaml");
  for (const auto& path : candidates) {
    const int rc = read_small_file(path, c.body, c.error);
    if (rc == ENOENT) continue;
    if (rc != 0) {
      c.status = ServedConfig::Status::error;
      return c;
    }
    c.status = ServedConfig::Status::ok;
    c.sha256 = sha256_hex(c.body);
    return c;
  }
  c.status = ServedConfig::Status::not_found;
  return c;
}

// RFC 9110 §13.1.2: If-None-Match is "*" or a list of entity tags, compared weakly.
bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  while (!if_none_match.empty()) {
    const auto comma = std::min(if_none_match.find(','), if_none_match.size());
    std::string_view tag = if_none_match.substr(0, comma);
    if_none_match.remove_prefix(std::min(comma + 1, if_none_match.size()));
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag == "*") return true;
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag == etag) return true;
  }
  return false;
}

// A heartbeat body (docs/collector.md#fleet) as a HeartbeatRecord, or the reason it is not one
// ("field: what was expected"). Unknown keys are ignored (newer probes may send more).
std::optional<HeartbeatRecord> parse_heartbeat(const nlohmann::json& j, std::string& error) {
  if (!j.is_object()) {
    error = "expected a JSON object";
    return std::nullopt;
  }
  HeartbeatRecord h;
  auto fail = [&](const char* key, const std::string& why) {
    error = std::string(key) + ": " + why;
    return std::nullopt;
  };
  auto field = [&](const char* key) -> const nlohmann::json* {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  };
  auto text = [&](const char* key, std::string& out) {
    const auto* v = field(key);
    if (!v) return true;
    if (!v->is_string()) return false;
    out = v->get<std::string>();
    return true;
  };
  auto integer = [&](const char* key, std::int64_t max, std::optional<std::int64_t>& out) {
    const auto* v = field(key);
    if (!v) return true;
    if (v->is_number_unsigned()) {
      const auto u = v->get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(max)) return false;
      out = static_cast<std::int64_t>(u);
      return true;
    }
    if (!v->is_number_integer()) return false;
    const auto i = v->get<std::int64_t>();
    if (i < 0 || i > max) return false;
    out = i;
    return true;
  };
  const auto* type = field("type");
  if (!type) return fail("type", "missing (expected \"heartbeat\")");
  if (!type->is_string() || *type != "heartbeat") return fail("type", "expected \"heartbeat\"");
  const auto* id = field("probe_id");
  if (!id) return fail("probe_id", "missing");
  if (!id->is_string() || id->get<std::string>().empty())
    return fail("probe_id", "expected a non-empty string");
  h.probe_id = id->get<std::string>();
  for (auto [key, out] : {std::pair<const char*, std::string*>{"region", &h.region},
                          {"country", &h.country},
                          {"isp", &h.isp},
                          {"version", &h.version},
                          {"revision", &h.revision},
                          {"config_hash", &h.config_hash},
                          {"config_source", &h.config_source}}) {
    if (!text(key, *out)) return fail(key, "expected a string");
  }
  if (!h.config_hash.empty()) {
    const std::string_view hash = h.config_hash;
    if (hash.substr(0, 7) != "sha256:" || hash.size() != 7 + 64 ||
        hash.find_first_not_of("0123456789abcdefABCDEF", 7) != std::string_view::npos) {
      return fail("config_hash", "expected \"sha256:\" and 64 hex digits");
    }
  }
  if (!h.config_source.empty() && h.config_source != "file" && h.config_source != "collector")
    return fail("config_source", "expected \"file\" or \"collector\"");
  if (!integer("asn", 4294967295LL, h.asn)) return fail("asn", "expected an integer 0-4294967295");
  for (auto [key, out] :
       {std::pair<const char*, std::optional<std::int64_t>*>{"spool_results", &h.spool_results},
        {"spool_bytes", &h.spool_bytes},
        {"started_ns", &h.started_ns},
        {"time_ns", &h.time_ns}}) {
    if (!integer(key, INT64_MAX, *out)) return fail(key, "expected a non-negative integer");
  }
  if (const auto* v = field("heartbeat_interval_s")) {
    if (!v->is_number() || !(v->get<double>() > 0) || v->get<double>() > 86400) {
      return fail("heartbeat_interval_s",
                  "expected a number of seconds, more than 0, at most 86400");
    }
    h.heartbeat_interval_ns = std::llround(v->get<double>() * 1e9);
  }
  if (const auto* v = field("checks")) {
    if (!v->is_array()) return fail("checks", "expected a list of check ids");
    std::vector<std::string> checks;
    for (const auto& c : *v) {
      if (!c.is_string()) return fail("checks", "expected a list of check ids (strings)");
      checks.push_back(c.get<std::string>());
    }
    h.checks = std::move(checks);
  }
  return h;
}

}  // namespace

// The settings of the requests started since the last reload (see handler.hpp).
struct LiveSettings {
  std::shared_ptr<const CollectorConfig> config;
  std::shared_ptr<enrich::GeoIp> geoip;
  ingest::OriginPolicy origins;
  std::shared_ptr<ingest::TokenBuckets> per_ip;
  std::shared_ptr<ingest::TokenBuckets> per_origin;

  LiveSettings(std::shared_ptr<const CollectorConfig> c, std::shared_ptr<enrich::GeoIp> g,
               const LiveSettings* previous)
      : config(std::move(c)), geoip(std::move(g)), origins(config->allowed_origins) {
    // Keep the buckets (and what they counted) when their limits did not change.
    const auto same = [](const RateLimit& a, const RateLimit& b) {
      return a.rate == b.rate && a.burst == b.burst;
    };
    if (previous && same(previous->config->limits.per_ip, config->limits.per_ip)) {
      per_ip = previous->per_ip;
    } else {
      per_ip = std::make_shared<ingest::TokenBuckets>(config->limits.per_ip.rate,
                                                      config->limits.per_ip.burst);
    }
    if (previous && same(previous->config->limits.per_origin, config->limits.per_origin)) {
      per_origin = previous->per_origin;
    } else {
      per_origin = std::make_shared<ingest::TokenBuckets>(config->limits.per_origin.rate,
                                                          config->limits.per_origin.burst);
    }
  }
};

struct Handler::Impl {
  Metrics& metrics;
  store::Writer& writer;
  // The current snapshot: read once per request (an atomic shared_ptr load), swapped by reload().
  std::atomic<std::shared_ptr<const LiveSettings>> live;

  Impl(std::shared_ptr<const CollectorConfig> c, Metrics& m, store::Writer& w,
       std::shared_ptr<enrich::GeoIp> g)
      : metrics(m),
        writer(w),
        live(std::make_shared<const LiveSettings>(std::move(c), std::move(g), nullptr)) {}

  std::shared_ptr<const LiveSettings> current() const {
    return live.load(std::memory_order_acquire);
  }

  // Routes a path (query removed) to an endpoint; `group` gets the Reporting API endpoint name
  // for "/reports/<group>".
  static Endpoint route_path(const CollectorConfig& config, std::string_view path,
                             std::string& group) {
    const std::string& prefix = config.paths.prefix;
    if (!prefix.empty()) {
      if (path.substr(0, prefix.size()) != prefix) return Endpoint::none;
      path.remove_prefix(prefix.size());
    }
    auto match = [&](const std::vector<std::string>& paths, bool allow_sub) {
      for (const auto& p : paths) {
        if (path == p) return true;
        if (allow_sub && path.size() > p.size() + 1 && path.substr(0, p.size()) == p &&
            path[p.size()] == '/' && path.find('/', p.size() + 1) == std::string_view::npos) {
          group = std::string(path.substr(p.size() + 1));
          return true;
        }
      }
      return false;
    };
    if (match(config.paths.reports, true)) return Endpoint::reports;
    if (match(config.paths.csp, false)) return Endpoint::csp;
    if (match(config.paths.beacon, false)) return Endpoint::beacon;
    if (match(config.paths.results, false)) return Endpoint::results;
    if (match(config.paths.config, false)) return Endpoint::config;
    if (match(config.paths.heartbeat, false)) return Endpoint::heartbeat;
    if (path == "/beacon.js") return Endpoint::beacon_js;
    if (path == "/metrics") return Endpoint::metrics;
    if (path == "/healthz") return Endpoint::healthz;
    if (path == "/readyz") return Endpoint::readyz;
    return Endpoint::none;
  }

  Response reject(int status, std::string_view reason_label, std::string_view reason) {
    metrics.rejected(reason_label);
    return json_error(status, reason);
  }

  void add_cors(Response& r, const std::string& origin) const {
    if (origin.empty()) return;
    r.headers.emplace_back("Access-Control-Allow-Origin", origin);
    r.headers.emplace_back("Vary", "Origin");
  }

  bool content_type_ok(Endpoint e, const std::string& type) const {
    switch (e) {
      case Endpoint::reports:
        return type == "application/reports+json" || type == "application/json";
      case Endpoint::csp:
        return type == "application/csp-report" || type == "application/json";
      case Endpoint::beacon:
        return type == "text/plain" || type == "application/json";
      case Endpoint::results:
        return type == "application/x-ndjson" || type == "application/json";
      case Endpoint::heartbeat:
        return type == "application/json";
      default:
        return false;
    }
  }

  // Constant-time token comparison (every token is compared, each in constant time for its
  // length); returns the probe id or "".
  static std::string authenticate(const CollectorConfig& config, std::string_view token) {
    std::string found;
    for (const auto& p : config.probes) {
      if (p.token.size() == token.size() &&
          CRYPTO_memcmp(p.token.data(), token.data(), token.size()) == 0) {
        found = p.probe_id;
      }
    }
    return found;
  }

  static std::uint64_t body_limit(const CollectorConfig& config, Endpoint e) {
    if (e == Endpoint::heartbeat) return kMaxHeartbeatBytes;
    return e == Endpoint::results ? config.limits.max_results_body_bytes
                                  : config.limits.max_body_bytes;
  }

  // Bearer authentication of a probe (results, heartbeat, config): nullopt and route.probe_id
  // set, or the 401/403 answer.
  std::optional<Response> authorize(const CollectorConfig& config, const Request& req,
                                    Route& route) {
    const std::string_view auth = req.authorization;
    if (auth.size() < 7 || ingest::ascii_lower(auth.substr(0, 7)) != "bearer ") {
      Response r = reject(401, "unauthorized", "missing bearer token");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      r.close = true;
      return r;
    }
    route.probe_id = authenticate(config, auth.substr(7));
    if (route.probe_id.empty()) {
      Response r = reject(403, "forbidden", "unknown token");
      r.close = true;
      return r;
    }
    return std::nullopt;
  }

  // GET /v1/config (docs/collector.md#fleet).
  Response central_config(const CollectorConfig& config, const Request& req, Route& route) {
    if (auto denied = authorize(config, req, route)) return std::move(*denied);
    route.name = "config";
    const ServedConfig served = served_config(config.fleet.config_dir, route.probe_id);
    switch (served.status) {
      case ServedConfig::Status::disabled:
        metrics.config_request("not_found");
        return json_error(404, "central configuration is not enabled (fleet.config_dir)");
      case ServedConfig::Status::not_found:
        metrics.config_request("not_found");
        return json_error(404, "no configuration for vantage point \"" + route.probe_id + "\"");
      case ServedConfig::Status::error:
        metrics.config_request("error");
        log_errors.write(log::Level::error, "collector.config_read_failed",
                         {{"probe_id", route.probe_id}, {"error", served.error}});
        return json_error(500, "the collector cannot read the configuration for vantage point \"" +
                                   route.probe_id + "\"");
      case ServedConfig::Status::ok:
        break;
    }
    const std::string etag = "\"" + served.sha256 + "\"";
    Response r;
    r.headers.emplace_back("ETag", etag);
    r.headers.emplace_back("Cache-Control", "no-cache");
    if (!req.if_none_match.empty() && etag_matches(req.if_none_match, etag)) {
      metrics.config_request("not_modified");
      r.status = 304;
      return r;
    }
    metrics.config_request("ok");
    r.headers.emplace_back("Content-Type", "application/yaml");
    r.body = served.body;
    return r;
  }

  std::optional<Response> on_headers(const Request& req, Route& route, bool draining) {
    route.started_ns = now_ns();
    route.live = current();
    const CollectorConfig& config = *route.live->config;
    const ingest::OriginPolicy& origins = route.live->origins;
    // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1
    // request message that lacks a Host header field and to any request message that contains
    // more than one Host header field line or a Host header field with an invalid field value."
    if (req.host_count > 1 || (req.host_count == 0 && req.version >= 11) ||
        (req.host_count == 1 && !valid_host(req.host))) {
      Response r = reject(400, "bad_host",
                          req.host_count > 1    ? "more than one Host header"
                          : req.host_count == 0 ? "missing Host header"
                                                : "invalid Host header");
      r.close = true;
      return r;
    }
    const std::string_view path = target_path(req.target);
    std::string group;
    route.endpoint = route_path(config, path, group);
    route.client = enrich::resolve_client(req.peer, req.x_forwarded_for, req.forwarded,
                                          config.trusted_proxies);
    const Endpoint e = route.endpoint;
    if (e == Endpoint::none) return reject(404, "not_found", "no such endpoint");
    if (e == Endpoint::config) {
      if (req.method != "GET" && req.method != "HEAD") {
        Response r = reject(405, "method_not_allowed", "use GET");
        r.headers.emplace_back("Allow", "GET, HEAD");
        return r;
      }
      return central_config(config, req, route);
    }

    if (e == Endpoint::beacon_js || e == Endpoint::metrics || e == Endpoint::healthz ||
        e == Endpoint::readyz) {
      if (req.method != "GET" && req.method != "HEAD") {
        Response r = reject(405, "method_not_allowed", "use GET");
        r.headers.emplace_back("Allow", "GET, HEAD");
        return r;
      }
      switch (e) {
        case Endpoint::beacon_js: {
          Response r;
          r.headers.emplace_back("Content-Type", "text/javascript; charset=utf-8");
          r.headers.emplace_back("Cache-Control", "public, max-age=3600");
          r.headers.emplace_back("Access-Control-Allow-Origin", "*");
          r.body = std::string(agent::kBeaconJs);
          return r;
        }
        case Endpoint::metrics: {
          Response r;
          r.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
          r.body = metrics.render();
          return r;
        }
        case Endpoint::healthz:
          return text(200, "ok\n");
        default: {
          if (draining) return text(503, "draining\n");
          if (writer.depth() + writer.logging() >= writer.capacity() * 9 / 10)
            return text(503, "store queue full\n");
          return text(200, "ready\n");
        }
      }
    }

    const bool browser = is_browser(e);
    if (req.method == "OPTIONS") {
      if (!browser) {
        // Probes do not preflight, but OPTIONS is answered on every upload path (RFC 9110
        // §9.3.7): what the path allows, no CORS (no page may upload probe results).
        Response r;
        r.status = 204;
        r.headers.emplace_back("Allow", "POST, OPTIONS");
        return r;
      }
      if (req.origin.empty() || !origins.allows(req.origin)) {
        return reject(403, "origin_not_allowed", "origin not allowed");
      }
      Response r;
      r.status = 204;
      add_cors(r, req.origin);
      r.headers.emplace_back("Access-Control-Allow-Methods", "POST, OPTIONS");
      r.headers.emplace_back("Access-Control-Allow-Headers", "content-type");
      r.headers.emplace_back("Access-Control-Max-Age", "86400");
      return r;
    }
    if (req.method != "POST") {
      Response r = reject(405, "method_not_allowed", "use POST");
      r.headers.emplace_back("Allow", browser ? "POST, OPTIONS" : "POST");
      return r;
    }
    const std::uint64_t limit = body_limit(config, e);
    if (req.content_length && *req.content_length > limit) {
      Response r = reject(413, "body_too_large",
                          "the body is " + std::to_string(*req.content_length) +
                              " bytes; the limit is " + std::to_string(limit));
      r.close = true;
      return r;
    }
    if (!content_type_ok(e, media_type(req.content_type))) {
      Response r = reject(415, "unsupported_media_type",
                          "unsupported Content-Type \"" + req.content_type + "\"");
      r.close = true;
      return r;
    }
    // RFC 9110 §8.4 and §15.5.16: a coding the server does not support is a 415. One coding
    // only: nobody stacks them on uploads.
    const std::string coding = media_type(req.content_encoding);
    if (coding == "gzip" || coding == "x-gzip") {
      route.encoding = Route::Encoding::gzip;
    } else if (coding == "deflate") {
      route.encoding = Route::Encoding::deflate;
    } else if (!coding.empty() && coding != "identity") {
      Response r = reject(415, "unsupported_encoding",
                          "unsupported Content-Encoding \"" + req.content_encoding +
                              "\": use gzip, deflate or none");
      r.headers.emplace_back("Accept-Encoding", "gzip, deflate");
      r.close = true;
      return r;
    }

    if (e == Endpoint::results || e == Endpoint::heartbeat) {
      if (auto denied = authorize(config, req, route)) return denied;
      route.name = e == Endpoint::results ? "results" : "heartbeat";
      return std::nullopt;
    }

    if (!req.origin.empty() && !origins.allows(req.origin)) {
      Response r = reject(403, "origin_not_allowed", "origin not allowed");
      r.close = true;
      return r;
    }
    const double now = steady_s();
    if (int wait = route.live->per_ip->take(route.client.to_string(), now)) {
      Response r = reject(429, "rate_limited_client", "too many uploads from this address");
      r.headers.emplace_back("Retry-After", std::to_string(wait));
      add_cors(r, req.origin);
      r.close = true;
      return r;
    }
    if (!req.origin.empty()) {
      if (int wait = route.live->per_origin->take(req.origin, now)) {
        Response r = reject(429, "rate_limited_origin", "too many uploads from this origin");
        r.headers.emplace_back("Retry-After", std::to_string(wait));
        add_cors(r, req.origin);
        r.close = true;
        return r;
      }
    }
    route.name = e == Endpoint::reports ? (group.empty() ? "reports" : "reports/" + group)
                                        : std::string(endpoint_label(e));
    return std::nullopt;
  }

  static void enrich_records(const LiveSettings& live, std::vector<BrowserRecord>& records,
                             const enrich::IpAddress& client) {
    const CollectorConfig& config = *live.config;
    const enrich::GeoIp& geoip = *live.geoip;
    const enrich::GeoInfo who = geoip.lookup(client);
    const std::string prefix_text =
        client.truncated(config.ipv4_prefix_length, config.ipv6_prefix_length);
    std::unordered_map<std::string, enrich::GeoInfo> servers;
    for (auto& r : records) {
      r.client_prefix = prefix_text;
      r.country = who.country;
      r.city = who.city;
      r.asn = who.asn;
      r.isp = who.isp;
      if (!r.server_ip.empty()) {
        auto it = servers.find(r.server_ip);
        if (it == servers.end()) {
          enrich::GeoInfo info;
          if (auto a = enrich::IpAddress::parse(r.server_ip)) info = geoip.lookup(*a);
          it = servers.emplace(r.server_ip, std::move(info)).first;
        }
        r.server_asn = it->second.asn;
        r.server_as_org = it->second.isp;
      }
    }
  }

  void browser_upload(Request&& req, const Route& route,
                      const std::function<void(Response)>& done) {
    const CollectorConfig& config = *route.live->config;
    const ingest::OriginPolicy& origins = route.live->origins;
    ingest::ParseContext ctx;
    ctx.received_ns = route.started_ns;
    ctx.endpoint = route.name;  // views: `req` and `route` outlive the parse
    ctx.origin = req.origin;
    ctx.user_agent = req.user_agent;
    ctx.origins = origins.allow_all() ? nullptr : &origins;
    ctx.limits.max_reports = config.limits.max_reports_per_batch;
    ctx.limits.max_depth = config.limits.max_json_depth;
    ctx.limits.max_string_bytes = config.limits.max_string_bytes;
    ctx.limits.max_age_ms = config.limits.max_report_age.count();
    ingest::ParseOutcome out;
    switch (route.endpoint) {
      case Endpoint::reports:
        out = ingest::parse_reporting_api(req.body, ctx);
        break;
      case Endpoint::csp:
        out = ingest::parse_csp_report(req.body, ctx);
        break;
      default:
        out = ingest::parse_beacon(req.body, ctx);
        break;
    }
    if (!out.ok()) {
      Response r = reject(400, out.error_reason, out.error);
      add_cors(r, req.origin);
      return done(std::move(r));
    }
    for (const auto& [reason, n] : out.dropped) metrics.dropped(reason, n);
    enrich_records(*route.live, out.records, route.client);
    // Count the types before the records move into the queue (most uploads: one type).
    struct Count {
      std::string kind, type;
      int n;
    };
    std::vector<Count> counts;
    for (const auto& r : out.records) {
      if (!counts.empty() && counts.back().type == r.type && counts.back().kind == r.kind) {
        ++counts.back().n;
      } else {
        counts.push_back({r.kind, r.type, 1});
      }
    }
    if (out.records.empty()) {
      Response r;
      r.status = 204;
      add_cors(r, req.origin);
      return done(std::move(r));
    }
    store::Upload upload;
    upload.reports = std::move(out.records);
    // The 204 waits for the segment log's sync (store/segment_log.hpp): an acknowledged report
    // survives a crash. The answer then comes from the log's thread.
    auto answer = [this, done, origin = req.origin,
                   counts = std::move(counts)](std::error_code written) {
      if (written) {
        // A full disk, an I/O error: never a 204 for what is not on disk.
        Response r = reject(
            503, "store_unavailable",
            "the report could not be written to disk (" + written.message() + "); retry later");
        r.headers.emplace_back("Retry-After", "5");
        add_cors(r, origin);
        return done(std::move(r));
      }
      for (const auto& c : counts) metrics.record(c.kind, c.type, c.n);
      Response r;
      r.status = 204;
      add_cors(r, origin);
      done(std::move(r));
    };
    if (!writer.submit_durable(std::move(upload), std::move(answer))) {
      Response r = reject(503, "queue_full", "the store queue is full; retry later");
      r.headers.emplace_back("Retry-After", "1");
      add_cors(r, req.origin);
      return done(std::move(r));
    }
  }

  void results_upload(Request&& req, const Route& route, std::function<void(Response)> done) {
    const CollectorConfig& config = *route.live->config;
    store::Upload upload;
    std::string_view body = req.body;
    int line_no = 0;
    while (!body.empty()) {
      const auto nl = std::min(body.find('\n'), body.size());
      std::string_view line = body.substr(0, nl);
      body.remove_prefix(std::min(nl + 1, body.size()));
      ++line_no;
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
      if (line.empty()) continue;
      if (static_cast<int>(upload.results.size()) >= config.limits.max_results_per_upload) {
        // A size limit like the body's: 413 tells the probe to halve its batch (a 400 would make
        // it set valid results aside).
        return done(reject(413, "too_many_reports",
                           "more than " + std::to_string(config.limits.max_results_per_upload) +
                               " results in one upload"));
      }
      std::string error;
      auto invalid = [&](const std::string& why) {
        return done(reject(400, "invalid_result", "line " + std::to_string(line_no) + ": " + why));
      };
      auto other_probe = [&](const char* what, const std::string& named) {
        return done(reject(403, "forbidden",
                           "line " + std::to_string(line_no) + ": the token belongs to probe \"" +
                               route.probe_id + "\", the " + what + " names \"" + named + "\""));
      };
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) return invalid("not valid JSON");
      const auto kind = j.is_object() ? j.find("kind") : j.end();
      if (kind != j.end() && kind->is_string() &&
          (*kind == "route_event" || *kind == "bgp_alert")) {
        auto bgp = bgp_record_from_json(j, error);
        if (!bgp) return invalid(error);
        if (bgp->vantage.probe_id != route.probe_id)
          return other_probe("record", bgp->vantage.probe_id);
        ResultRecord r;
        r.id = bgp->id;
        r.kind = bgp->kind;
        r.time_ns = to_unix_nanos(bgp->time);
        r.received_ns = route.started_ns;
        r.probe_id = bgp->vantage.probe_id;
        r.check = bgp->check;
        r.json = std::string(line);
        r.bgp = std::move(bgp);
        upload.results.push_back(std::move(r));
        continue;
      }
      auto result = check_result_from_json(j, error);
      if (!result) return invalid(error);
      if (result->vantage.probe_id != route.probe_id)
        return other_probe("result", result->vantage.probe_id);
      ResultRecord r;
      r.id = result->id;
      r.kind = result->steps.empty() ? "check_result" : "journey_result";
      r.time_ns = to_unix_nanos(result->time);
      r.received_ns = route.started_ns;
      r.probe_id = result->vantage.probe_id;
      r.region = result->vantage.region;
      r.asn = result->vantage.asn;
      r.check = result->check_id;
      r.check_kind = result->check_kind;
      r.target_url = result->target.url;
      r.server_ip = result->target.server_ip;
      r.outcome = std::string(to_string(result->outcome.type));
      r.status_code = result->outcome.status_code;
      r.total_ms = result->phases.total;
      r.json = std::string(line);
      upload.results.push_back(std::move(r));
    }
    if (upload.results.empty()) {
      Response r;
      r.headers.emplace_back("Content-Type", "application/json");
      r.body = "{\"accepted\":0,\"duplicates\":0}\n";
      return done(std::move(r));
    }
    Metrics* m = &metrics;
    upload.done = [done, m](const store::UploadOutcome& o) {
      if (!o.committed) {
        m->rejected("store_failed");
        Response r = json_error(503, "the store failed: " + o.error);
        r.headers.emplace_back("Retry-After", "5");
        return done(std::move(r));
      }
      m->record("probe_result", "result", o.inserted);
      if (o.duplicates) m->dropped("duplicate_result", o.duplicates);
      Response r;
      r.headers.emplace_back("Content-Type", "application/json");
      r.body = nlohmann::json{{"accepted", o.inserted}, {"duplicates", o.duplicates}}.dump() + "\n";
      done(std::move(r));
    };
    if (!writer.submit(std::move(upload))) {
      Response r = reject(503, "queue_full", "the store queue is full; retry later");
      r.headers.emplace_back("Retry-After", "1");
      return done(std::move(r));
    }
  }

  // POST /v1/heartbeat: validated, stored (heartbeats row + vantage_points upsert), answered 204
  // once committed.
  void heartbeat_upload(Request&& req, const Route& route, std::function<void(Response)> done) {
    const CollectorConfig& config = *route.live->config;
    std::string label;
    const std::string too_much = ingest::check_json_limits(req.body, config.limits.max_json_depth,
                                                           config.limits.max_string_bytes, label);
    if (!too_much.empty()) return done(reject(400, "invalid_heartbeat", too_much));
    const nlohmann::json j = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return done(reject(400, "invalid_heartbeat", "not valid JSON"));
    std::string error;
    auto heartbeat = parse_heartbeat(j, error);
    if (!heartbeat) return done(reject(400, "invalid_heartbeat", error));
    if (heartbeat->probe_id != route.probe_id) {
      return done(reject(403, "forbidden",
                         "the token belongs to probe \"" + route.probe_id +
                             "\", the heartbeat names \"" + heartbeat->probe_id + "\""));
    }
    heartbeat->received_ns = route.started_ns;
    const ServedConfig served = served_config(config.fleet.config_dir, route.probe_id);
    if (served.status == ServedConfig::Status::ok)
      heartbeat->served_config_hash = "sha256:" + served.sha256;
    store::Upload upload;
    upload.heartbeats.push_back(std::move(*heartbeat));
    Metrics* m = &metrics;
    upload.done = [done, m](const store::UploadOutcome& o) {
      if (!o.committed) {
        m->rejected("store_failed");
        Response r = json_error(503, "the store failed: " + o.error);
        r.headers.emplace_back("Retry-After", "5");
        return done(std::move(r));
      }
      m->heartbeat();
      Response r;
      r.status = 204;
      done(std::move(r));
    };
    if (!writer.submit(std::move(upload))) {
      Response r = reject(503, "queue_full", "the store queue is full; retry later");
      r.headers.emplace_back("Retry-After", "1");
      return done(std::move(r));
    }
  }

  log::RateLimited log_errors{std::chrono::seconds(10)};
};

Handler::Handler(const CollectorConfig& config, Metrics& metrics, store::Writer& writer,
                 enrich::GeoIp& geoip)
    : Handler(std::make_shared<const CollectorConfig>(config), metrics, writer,
              std::shared_ptr<enrich::GeoIp>(&geoip, [](enrich::GeoIp*) {})) {}

Handler::Handler(std::shared_ptr<const CollectorConfig> config, Metrics& metrics,
                 store::Writer& writer, std::shared_ptr<enrich::GeoIp> geoip)
    : impl_(std::make_unique<Impl>(std::move(config), metrics, writer, std::move(geoip))) {}

Handler::~Handler() = default;

void Handler::reload(std::shared_ptr<const CollectorConfig> config,
                     std::shared_ptr<enrich::GeoIp> geoip) {
  const auto previous = impl_->current();
  impl_->live.store(
      std::make_shared<const LiveSettings>(std::move(config), std::move(geoip), previous.get()),
      std::memory_order_release);
}

std::shared_ptr<const CollectorConfig> Handler::config() const { return impl_->current()->config; }

std::shared_ptr<enrich::GeoIp> Handler::geoip() const { return impl_->current()->geoip; }

std::optional<Response> Handler::on_headers(const Request& req, Route& route) {
  auto r = impl_->on_headers(req, route, draining_);
  if (r && draining_) r->close = true;
  return r;
}

std::uint64_t Handler::max_body_bytes(const Route& route) const {
  const auto live = route.live ? route.live : impl_->current();
  return Impl::body_limit(*live->config, route.endpoint);
}

void Handler::on_body(Request&& req, const Route& route_in, std::function<void(Response)> done) {
  auto finish = [this, done = std::move(done)](Response r) {
    if (draining_) r.close = true;
    done(std::move(r));
  };
  // A Route not filled by on_headers() (a caller that skipped it) gets the current settings.
  Route filled;
  if (!route_in.live) {
    filled = route_in;
    filled.live = impl_->current();
  }
  const Route& route = route_in.live ? route_in : filled;
  if (route.encoding != Route::Encoding::identity) {
    std::string inflated, error;
    const std::uint64_t limit = Impl::body_limit(*route.live->config, route.endpoint);
    switch (ingest::inflate_body(req.body, route.encoding == Route::Encoding::gzip, limit, inflated,
                                 error)) {
      case ingest::InflateStatus::ok:
        req.body = std::move(inflated);
        break;
      case ingest::InflateStatus::too_large: {
        Response r = impl_->reject(
            413, "body_too_large",
            "the decompressed body is over the limit of " + std::to_string(limit) + " bytes");
        if (is_browser(route.endpoint)) impl_->add_cors(r, req.origin);  // its origin was checked
        return finish(std::move(r));
      }
      case ingest::InflateStatus::malformed: {
        Response r = impl_->reject(
            400, "malformed_encoding",
            "the body is not valid " +
                std::string(route.encoding == Route::Encoding::gzip ? "gzip" : "deflate") + ": " +
                error);
        if (is_browser(route.endpoint)) impl_->add_cors(r, req.origin);
        return finish(std::move(r));
      }
    }
  }
  if (route.endpoint == Endpoint::results) {
    impl_->results_upload(std::move(req), route, std::move(finish));
  } else if (route.endpoint == Endpoint::heartbeat) {
    impl_->heartbeat_upload(std::move(req), route, std::move(finish));
  } else {
    impl_->browser_upload(std::move(req), route, finish);
  }
}

Response Handler::protocol_error(int status, std::string_view reason) {
  std::string label = status == 431   ? "header_too_large"
                      : status == 413 ? "body_too_large"
                                      : "bad_request";
  Response r = impl_->reject(status, label, reason);
  r.close = true;
  return r;
}

void Handler::observe(const Route& route, int status) {
  const double seconds = static_cast<double>(now_ns() - route.started_ns) / 1e9;
  impl_->metrics.request(static_cast<std::size_t>(route.endpoint), endpoint_label(route.endpoint),
                         status, route.started_ns ? seconds : 0);
}

}  // namespace vantage::collector
