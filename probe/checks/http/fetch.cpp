#include "probe/checks/http/fetch.hpp"

#include <algorithm>

#include "common/ids.hpp"
#include "probe/net/url.hpp"

namespace vantage::probe::checks::http {

namespace asio = boost::asio;

namespace {

void add(std::optional<double>& phase, double ms) { phase = phase.value_or(0) + ms; }

bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

std::string set_traceparent(net::HttpRequest& req, RunContext& ctx) {
  std::string span = ctx.services.ids.span_id();
  const std::string value = make_traceparent(ctx.trace_id, span);
  for (auto& [name, v] : req.headers) {
    if (name == "traceparent") {
      v = value;
      return span;
    }
  }
  req.headers.emplace_back("traceparent", value);
  req.headers.emplace_back("tracestate", "vantage=" + ctx.check_id);
  return span;
}

}  // namespace

HttpFacts http_facts(const net::HttpExchange& ex, int redirects, const std::string& final_url) {
  HttpFacts h;
  h.status_code = static_cast<int>(ex.status);
  h.http_version = ex.http_version;
  h.redirects = redirects;
  h.content_length = ex.content_length;
  h.body_bytes = ex.body_bytes;
  h.final_url = net::strip_query_and_fragment(final_url);
  return h;
}

void add_exchange_phases(const net::HttpExchange& ex,
                         const std::optional<net::MappedFailure>& failure, Phases& phases) {
  const auto& p = ex.progress;
  auto ms = [](std::int64_t us) {
    return static_cast<double>(std::max<std::int64_t>(0, us)) / 1000.0;
  };
  const std::int64_t start_us = ex.namelookup_us;
  if (p.connect_us > 0) add(phases.connect, ms(p.connect_us - start_us));
  if (p.https && p.appconnect_us > 0 && p.connect_us > 0)
    add(phases.tls, ms(p.appconnect_us - p.connect_us));
  if (p.starttransfer_us > 0 && p.pretransfer_us > 0)
    add(phases.ttfb, ms(p.starttransfer_us - p.pretransfer_us));
  if (!failure && p.starttransfer_us > 0)
    add(phases.transfer, ms(ex.total_us - p.starttransfer_us));
  if (failure) {
    // The phase that failed gets the time spent in it: a tcp.timed_out shows how long we waited.
    const std::int64_t from = failure->phase == Phase::connect ? start_us
                              : failure->phase == Phase::tls   ? p.connect_us
                              : failure->phase == Phase::ttfb
                                  ? std::max(p.pretransfer_us, p.appconnect_us)
                                  : p.starttransfer_us;
    const double spent = ms(ex.total_us - from);
    switch (failure->phase) {
      case Phase::connect:
        add(phases.connect, spent);
        break;
      case Phase::tls:
        add(phases.tls, spent);
        break;
      case Phase::ttfb:
        add(phases.ttfb, spent);
        break;
      case Phase::transfer:
        add(phases.transfer, spent);
        break;
      default:
        break;
    }
  }
}

asio::awaitable<FetchResult> fetch(RunContext& ctx, net::HttpRequest request,
                                   const Resolution& first, const FetchOptions& options) {
  FetchResult out;
  Resolution res = first;
  out.resolver = res.resolver;
  out.phases.dns = res.dns_ms;
  std::string url = request.url;
  request.follow_redirects = false;  // we follow, so every hop uses our resolvers
  for (;;) {
    std::string error;
    const auto parts = net::parse_http_url(url, error);
    request.url = url;
    request.pinned_addresses =
        parts && !parts->host_is_ip ? res.addresses : std::vector<std::string>{};
    request.timeout = ctx.remaining();
    request.connect_timeout = request.timeout;
    out.span_ids.push_back(set_traceparent(request, ctx));
    net::HttpExchange ex = co_await net::http_exchange(ctx.services.curl, request);
    if (!ex.completed()) out.failure = ex.failure();
    add_exchange_phases(ex, out.failure, out.phases);
    out.server_ip = !ex.primary_ip.empty()      ? ex.primary_ip
                    : res.addresses.size() == 1 ? res.addresses.front()
                                                : std::string();
    const std::string* location = ex.header("location");
    if (out.failure || !options.follow_redirects || !is_redirect(ex.status) || !location) {
      out.last = std::move(ex);
      break;
    }
    // A redirect to follow.
    if (out.redirects >= options.max_redirects) {
      out.failure =
          net::MappedFailure{FailureType::http_response_redirect_loop, Phase::transfer,
                             "more than " + std::to_string(options.max_redirects) + " redirects"};
      out.last = std::move(ex);
      break;
    }
    const auto next = net::resolve_reference(url, *location);
    const auto next_parts = next ? net::parse_http_url(*next, error) : std::nullopt;
    if (!next_parts) {
      out.failure =
          net::MappedFailure{FailureType::http_response_invalid, Phase::transfer,
                             "unusable Location header \"" + location->substr(0, 200) + "\""};
      out.last = std::move(ex);
      break;
    }
    const long status = ex.status;
    if (status == 303 || ((status == 301 || status == 302) && request.method == "POST")) {
      request.method = "GET";  // RFC 9110 §15.4: what browsers do
      request.body.reset();
    }
    ++out.redirects;
    const bool same_host = parts && next_parts->host == parts->host;
    url = *next;
    if (!same_host) {
      res = co_await ctx.services.resolvers.resolve(next_parts->host, options.ip_family,
                                                    options.resolvers, ctx.deadline);
      out.resolver = res.resolver;
      add(out.phases.dns, res.dns_ms);
      if (res.failure) {
        out.failure = res.failure;
        out.last = std::move(ex);
        break;
      }
    }
  }
  out.final_url = url;
  co_return out;
}

}  // namespace vantage::probe::checks::http
