// The collector's request handling, independent of the HTTP library: the Beast server
// (http/server.cpp) parses the wire, this decides. Two stages so that limits apply before the
// body is read: on_headers() answers everything that needs no body (GET endpoints including a
// probe's GET /v1/config, OPTIONS preflights, and every rejection: 404, 405, 413, 415, 401/403,
// 429), on_body() parses, enriches and queues the upload and answers through `done` — for
// browser uploads once the segment log has synced them (store/segment_log.hpp; on the log's
// thread), for probe uploads and heartbeats after the group commit (on the writer thread).
//
// Reload (SIGHUP): the settings a request reads — the configuration (tokens, origins, limits,
// paths, trusted proxies, fleet.config_dir, privacy), the origin policy, the token buckets and
// GeoIP — form one immutable snapshot. Each request takes the current snapshot once, in
// on_headers(), and keeps it in its Route to the end; reload() swaps in a new one atomically, so
// a request sees either the old settings or the new ones, never a mix.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "beacon-collector/config.hpp"
#include "beacon-collector/enrich/client_ip.hpp"

namespace vantage::collector {

class Metrics;
namespace store {
class Writer;
}
namespace enrich {
class GeoIp;
}

struct Request {
  std::string method;     // "POST", "OPTIONS", "GET", …
  std::string target;     // path and query as sent (origin-form), or absolute-form "http://h/p?q"
  unsigned version = 11;  // HTTP version × 10 (10 = HTTP/1.0, 11 = HTTP/1.1)
  // Host header field lines (RFC 9112 §3.2: an HTTP/1.1 request needs exactly one) and the value
  // of the first.
  int host_count = 0;
  std::string host;
  std::string content_encoding;  // Content-Encoding as sent ("" when absent)
  // The headers the collector reads ("" when absent).
  std::string origin, content_type, authorization, x_forwarded_for, forwarded, user_agent;
  std::string if_none_match;  // GET /v1/config: the ETags the probe has (RFC 9110 §13.1.2)
  std::optional<std::uint64_t> content_length;  // nullopt: chunked or absent
  enrich::IpAddress peer;                       // the TCP peer
  std::string body;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool close = false;  // close the connection after answering (body not read, shutting down)
};

enum class Endpoint {
  none,
  reports,
  csp,
  beacon,
  results,
  beacon_js,
  metrics,
  healthz,
  readyz,
  config,     // GET: the probe's central configuration (<fleet.config_dir>/<probe_id>.yaml)
  heartbeat,  // POST: the probe's heartbeat (JSON, at most kMaxHeartbeatBytes)
};

// The largest heartbeat body (bytes, after decompression): 413 above.
inline constexpr std::uint64_t kMaxHeartbeatBytes = 64 * 1024;

// The settings snapshot a request runs with (defined in handler.cpp).
struct LiveSettings;

// What on_headers() decided about a request that needs its body read.
struct Route {
  Endpoint endpoint = Endpoint::none;
  std::string name;  // stored endpoint name: "reports/<group>", "csp", "beacon", "results"
  enrich::IpAddress client;
  std::string probe_id;  // results, heartbeat, config: the authenticated vantage point
  std::int64_t started_ns = 0;
  // The settings snapshot taken by on_headers(), used until the answer (null before).
  std::shared_ptr<const LiveSettings> live;
  // The body's Content-Encoding (RFC 9110 §8.4): on_body() inflates gzip and deflate bodies,
  // limiting the inflated size to the endpoint's body limit (a bomb answers 413).
  enum class Encoding { identity, gzip, deflate } encoding = Encoding::identity;
};

class Handler {
 public:
  // `geoip` is not owned: it must outlive the handler (tests, the fuzz target).
  Handler(const CollectorConfig& config, Metrics& metrics, store::Writer& writer,
          enrich::GeoIp& geoip);
  Handler(std::shared_ptr<const CollectorConfig> config, Metrics& metrics, store::Writer& writer,
          std::shared_ptr<enrich::GeoIp> geoip);
  ~Handler();

  // Swaps in new settings for the requests that start from now on (thread-safe; requests in
  // flight finish with theirs). Token buckets are kept when their rate and burst are unchanged.
  void reload(std::shared_ptr<const CollectorConfig> config, std::shared_ptr<enrich::GeoIp> geoip);
  // The configuration requests start with now (for the server's limits and timeouts).
  std::shared_ptr<const CollectorConfig> config() const;
  std::shared_ptr<enrich::GeoIp> geoip() const;

  // Either a complete answer, or nullopt and `route` filled: read the body (at most
  // max_body_bytes(route)) and call on_body().
  std::optional<Response> on_headers(const Request& req, Route& route);
  std::uint64_t max_body_bytes(const Route& route) const;
  // Answers through `done` exactly once (maybe from another thread).
  void on_body(Request&& req, const Route& route, std::function<void(Response)> done);
  // A request that failed at the HTTP layer (header too large, malformed, body over the limit
  // while streaming): counted, answered with this response.
  Response protocol_error(int status, std::string_view reason);

  // Shutdown: /readyz answers 503 and responses ask the client to close.
  void set_draining() noexcept { draining_ = true; }
  // The request count and duration histogram (called by the server when a response is written).
  void observe(const Route& route, int status);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool draining_ = false;
};

}  // namespace vantage::collector
