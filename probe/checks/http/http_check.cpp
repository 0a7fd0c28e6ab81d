#include "probe/checks/http/http_check.hpp"

#include <algorithm>
#include <boost/asio/use_awaitable.hpp>

#include "common/config_node.hpp"
#include "common/ids.hpp"
#include "probe/async_util.hpp"
#include "probe/checks/common_config.hpp"
#include "probe/checks/http/fetch.hpp"
#include "probe/net/url.hpp"

namespace vantage::probe::checks::http {

namespace asio = boost::asio;
using nlohmann::json;

namespace {

bool valid_header_name(const std::string& name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    // RFC 9110 §5.6.2 token characters.
    if (!(std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) !=
                                 std::string_view::npos)) {
      return false;
    }
  }
  return true;
}

}  // namespace

HttpConfig parse_http_config(const ConfigNode& node) {
  expect_check_keys(
      node, {"url", "method", "headers", "body", "follow_redirects", "max_redirects", "ip_family",
             "every_address", "resolvers", "http_version", "tls", "max_body_bytes", "expect"});
  HttpConfig c;
  const ConfigNode url = node.require("url");
  c.url = url.as_nonempty_string();
  std::string error;
  if (!net::parse_http_url(c.url, error)) url.fail(error);
  if (auto v = node.get("method")) {
    c.method = v->as_enum({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"});
  }
  if (auto v = node.get("headers")) {
    for (auto& [name, value] : v->entries()) {
      if (!valid_header_name(name)) value.fail("invalid header name");
      const std::string text = value.as_string();
      if (text.find_first_of("\r\n") != std::string::npos)
        value.fail("header values cannot contain line breaks");
      c.headers.emplace_back(name, text);
    }
  }
  if (auto v = node.get("body")) c.body = v->as_string();
  if (auto v = node.get("follow_redirects")) c.follow_redirects = v->as_bool();
  if (auto v = node.get("max_redirects")) c.max_redirects = static_cast<int>(v->as_int(0, 50));
  if (auto v = node.get("ip_family")) c.ip_family = parse_ip_family(*v);
  if (auto v = node.get("every_address")) c.every_address = v->as_bool();
  if (auto v = node.get("resolvers")) c.resolvers = parse_resolvers(*v, true);
  if (auto v = node.get("http_version")) c.http_version = v->as_enum({"1.1", "2"});
  if (auto v = node.get("tls")) c.tls = parse_tls_options(*v);
  if (auto v = node.get("max_body_bytes")) {
    c.max_body_bytes = static_cast<std::size_t>(v->as_bytes(0, 64ULL << 20));
  }
  if (c.method == "HEAD" && c.body) node.require("body").fail("a HEAD request cannot have a body");

  if (auto expect = node.get("expect")) {
    expect->expect_keys({"status", "body_matches", "body_not_matches", "json", "headers",
                         "cert_expires_after", "max_duration"});
    if (auto v = expect->get("status")) c.status = StatusSet::parse(*v);
    if (auto v = expect->get("body_matches")) {
      if (v->is_sequence()) {
        for (const auto& item : v->items()) c.body_matches.push_back(Pattern::parse(item));
      } else {
        c.body_matches.push_back(Pattern::parse(*v));
      }
    }
    if (auto v = expect->get("body_not_matches")) {
      if (v->is_sequence()) {
        for (const auto& item : v->items()) c.body_not_matches.push_back(Pattern::parse(item));
      } else {
        c.body_not_matches.push_back(Pattern::parse(*v));
      }
    }
    if (auto v = expect->get("json")) {
      for (auto& [location, value] : v->entries()) {
        std::string err;
        auto ptr = parse_json_location(location, err);
        if (!ptr) value.fail(err);
        c.json.push_back({location, *ptr, ValueMatcher::parse(value)});
      }
    }
    if (auto v = expect->get("headers")) {
      for (auto& [name, value] : v->entries()) {
        if (!valid_header_name(name)) value.fail("invalid header name");
        std::string lower = name;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        c.headers_expect.push_back({lower, ValueMatcher::parse(value)});
      }
    }
    if (auto v = expect->get("cert_expires_after")) {
      c.cert_expires_after =
          v->as_duration(std::chrono::nanoseconds(0), std::chrono::hours(24 * 3650));
    }
    if (auto v = expect->get("max_duration")) {
      c.max_duration = v->as_duration(std::chrono::milliseconds(1), std::chrono::hours(1));
    }
  }
  if (c.cert_expires_after && net::parse_http_url(c.url, error)->scheme != "https") {
    node.require("expect").require("cert_expires_after").fail("needs an https:// URL");
  }
  return c;
}

HttpCheck::HttpCheck(CheckCommon common, HttpConfig config)
    : Check(std::move(common)), config_(std::move(config)) {
  std::string error;
  const auto parts = net::parse_http_url(config_.url, error);
  if (parts) {
    host_ = parts->host;
    port_ = parts->port;
  }
}

std::string HttpCheck::describe() const {
  return config_.method + " " + net::strip_query_and_fragment(config_.url);
}

CheckPtr make_http_check(CheckCommon common, const ConfigNode& node) {
  return std::make_unique<HttpCheck>(std::move(common), parse_http_config(node));
}

void record_exchange(const net::HttpExchange& ex, double dns_ms, CheckResult& r) {
  std::string error;
  const std::string url = ex.effective_url.empty() ? r.target.url : ex.effective_url;
  if (auto parts = net::parse_http_url(url, error)) {
    r.target.host = parts->host;
    r.target.port = parts->port;
  }
  r.target.server_ip = ex.primary_ip;
  std::optional<net::MappedFailure> failure;
  if (!ex.completed()) failure = ex.failure();
  r.phases.dns = dns_ms;
  add_exchange_phases(ex, failure, r.phases);
  if (ex.status > 0) r.http = http_facts(ex, ex.redirects, ex.effective_url);
  if (ex.tls.handshake_done || ex.tls.chain_seen) r.tls = ex.tls.facts;
  if (failure) {
    net::apply(*failure, r.outcome);
    if (ex.status > 0) r.outcome.status_code = static_cast<int>(ex.status);
  }
}

asio::awaitable<std::vector<CheckResult>> HttpCheck::run(RunContext& ctx) {
  const auto start = std::chrono::steady_clock::now();
  Resolution res = co_await ctx.services.resolvers.resolve(host_, config_.ip_family,
                                                           config_.resolvers, ctx.deadline);
  if (res.failure) {
    CheckResult r;
    r.target.url = net::strip_query_and_fragment(config_.url);
    r.target.host = host_;
    r.target.port = port_;
    r.target.resolver = res.resolver;
    net::apply(*res.failure, r.outcome);
    r.phases.dns = res.dns_ms;
    r.phases.total = to_ms(std::chrono::steady_clock::now() - start);
    r.trace_id = ctx.trace_id;
    co_return std::vector<CheckResult>{std::move(r)};
  }
  if (!config_.every_address || res.addresses.size() <= 1) {
    std::vector<CheckResult> out;  // not vector{co_await …}: GCC 12 coroutine bug
    out.push_back(co_await run_one(ctx, res, res.addresses));
    co_return out;
  }
  std::vector<asio::awaitable<CheckResult>> tasks;
  for (const auto& a : res.addresses) tasks.push_back(run_one(ctx, res, {a}));
  co_return co_await gather(std::move(tasks));
}

asio::awaitable<CheckResult> HttpCheck::run_one(RunContext& ctx, const Resolution& res,
                                                std::vector<std::string> addresses) {
  const auto t0 = std::chrono::steady_clock::now();
  net::HttpRequest req;
  req.method = config_.method;
  req.url = config_.url;
  req.headers = config_.headers;
  req.body = config_.body;
  req.tls = config_.tls;
  req.max_body_bytes = config_.max_body_bytes;
  req.http_version = config_.http_version;
  Resolution first = res;
  first.addresses = std::move(addresses);
  // (Named locals, not temporaries, in co_await expressions: GCC 12 destroys some temporaries of
  // a co_await full-expression twice.)
  const FetchOptions options{config_.follow_redirects, config_.max_redirects, config_.ip_family,
                             config_.resolvers};
  const FetchResult fetched = co_await fetch(ctx, std::move(req), first, options);
  const net::HttpExchange& ex = fetched.last;

  CheckResult r;
  r.trace_id = ctx.trace_id;
  r.target.url = net::strip_query_and_fragment(config_.url);
  r.target.host = host_;
  r.target.port = port_;
  r.target.server_ip = fetched.server_ip;
  r.target.resolver = fetched.resolver;
  r.phases = fetched.phases;
  if (ex.status > 0) r.http = http_facts(ex, fetched.redirects, fetched.final_url);
  if (ex.tls.handshake_done || ex.tls.chain_seen) r.tls = ex.tls.facts;
  if (fetched.failure) {
    net::apply(*fetched.failure, r.outcome);
    if (ex.status > 0) r.outcome.status_code = static_cast<int>(ex.status);
  }

  if (fetched.completed()) {
    const bool status_ok = config_.status.contains(ex.status);
    if (!status_ok && ex.status >= 400) {
      r.outcome.type = FailureType::http_error;
      r.outcome.failed_at = Phase::assertion;
      r.outcome.status_code = static_cast<int>(ex.status);
      r.outcome.detail =
          "status " + std::to_string(ex.status) + " is not in " + config_.status.text();
    }
    record_assertion(r, "status", status_ok, config_.status.text(), std::to_string(ex.status));
    if (ex.status > 0) r.outcome.status_code = static_cast<int>(ex.status);

    const json doc = config_.json.empty() ? json() : json::parse(ex.body, nullptr, false);
    record_response_assertions(
        {config_.body_matches, config_.body_not_matches, config_.json, config_.headers_expect},
        ex.body, doc, [&](const std::string& name) { return ex.header(name); }, r.assertions,
        r.outcome);
    if (config_.cert_expires_after) {
      record_cert_expiry(r, ex.tls.facts, ctx.services.clock.utc_now(),
                         *config_.cert_expires_after);
    }
    if (config_.max_duration) {
      const double took_ms = res.dns_ms + to_ms(std::chrono::steady_clock::now() - t0);
      const bool ok = took_ms <= to_ms(*config_.max_duration);
      record_assertion(r, "max_duration", ok, format_duration(*config_.max_duration),
                       std::to_string(static_cast<long long>(took_ms)) + "ms");
    }
  }
  r.phases.total = res.dns_ms + to_ms(std::chrono::steady_clock::now() - t0);
  co_return r;
}

}  // namespace vantage::probe::checks::http
