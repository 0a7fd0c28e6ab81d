// One HTTP(S) fetch as a check sees it: the request, and every redirect it follows, each hop
// resolved through the check's own resolvers (never libcurl's) and pinned, phases summed over
// hops (like blackbox_exporter), a new W3C span id per request. Shared by the http check and
// journey steps.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/observation.hpp"
#include "probe/check.hpp"
#include "probe/net/failure_mapping.hpp"
#include "probe/net/http_client.hpp"
#include "probe/resolver_pool.hpp"

namespace vantage::probe::checks::http {

struct FetchOptions {
  bool follow_redirects = true;
  int max_redirects = 10;
  IpFamily ip_family = IpFamily::any;
  std::vector<std::string> resolvers;  // empty = system
};

struct FetchResult {
  net::HttpExchange last;                     // the final exchange (or the one that failed)
  std::optional<net::MappedFailure> failure;  // transport, DNS or redirect failure
  Phases phases;                              // summed over hops; dns included; total unset
  int redirects = 0;
  std::string final_url;  // URL of the last request
  std::string server_ip;  // address of the last connection
  std::string resolver;   // resolver of the last lookup
  std::vector<std::string> span_ids;  // one per request, in order
  bool completed() const noexcept { return !failure; }
};

// Sends `request` (its URL already resolved to `first`), following redirects per `options`
// (301/302/303 turn POST into GET without a body, 307/308 keep method and body). Sets a new
// traceparent span for every request of `ctx.trace_id`. Never throws for network errors.
boost::asio::awaitable<FetchResult> fetch(RunContext& ctx, net::HttpRequest request,
                                          const Resolution& first, const FetchOptions& options);

// The HTTP facts of an exchange's response (status, version, sizes), with the redirects
// followed to reach it and the final URL (query and fragment removed).
HttpFacts http_facts(const net::HttpExchange& exchange, int redirects,
                     const std::string& final_url);

// Adds one exchange's phase durations to `phases`: connect, tls, ttfb, transfer from libcurl's
// timestamps; when the exchange failed, the failing phase gets the time spent in it.
void add_exchange_phases(const net::HttpExchange& exchange,
                         const std::optional<net::MappedFailure>& failure, Phases& phases);

}  // namespace vantage::probe::checks::http
