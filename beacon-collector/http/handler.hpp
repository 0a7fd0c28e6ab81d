// The collector's request handling, independent of the HTTP library: the Beast server
// (http/server.cpp) parses the wire, this decides. Two stages so that limits apply before the
// body is read: on_headers() answers everything that needs no body (GET endpoints, OPTIONS
// preflights, and every rejection: 404, 405, 413, 415, 401/403, 429), on_body() parses,
// enriches and queues the upload and answers through `done` — at once for browser uploads,
// after the group commit for probe uploads (possibly on the writer thread).
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

enum class Endpoint { none, reports, csp, beacon, results, beacon_js, metrics, healthz, readyz };

// What on_headers() decided about a request that needs its body read.
struct Route {
  Endpoint endpoint = Endpoint::none;
  std::string name;  // stored endpoint name: "reports/<group>", "csp", "beacon", "results"
  enrich::IpAddress client;
  std::string probe_id;  // results: the authenticated vantage point
  std::int64_t started_ns = 0;
  // The body's Content-Encoding (RFC 9110 §8.4): on_body() inflates gzip and deflate bodies,
  // limiting the inflated size to the endpoint's body limit (a bomb answers 413).
  enum class Encoding { identity, gzip, deflate } encoding = Encoding::identity;
};

class Handler {
 public:
  Handler(const CollectorConfig& config, Metrics& metrics, store::Writer& writer,
          enrich::GeoIp& geoip);
  ~Handler();

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
