#include "probe/checks/tls/tls_check.hpp"

#include "common/config_node.hpp"
#include "probe/checks/common_config.hpp"
#include "probe/checks/http/http_check.hpp"
#include "probe/net/url.hpp"

namespace vantage::probe::checks::tls {

namespace asio = boost::asio;

TlsCheckConfig parse_tls_check_config(const ConfigNode& node) {
  expect_check_keys(node,
                    {"host", "port", "server_name", "ip_family", "resolvers", "tls", "expect"});
  TlsCheckConfig c;
  c.host = node.require("host").as_nonempty_string();
  if (auto v = node.get("port")) c.port = static_cast<std::uint16_t>(v->as_int(1, 65535));
  c.server_name = c.host;
  if (auto v = node.get("server_name")) {
    c.server_name = v->as_nonempty_string();
    if (net::is_ip_literal(c.server_name))
      v->fail("server_name must be a DNS name, not an address");
  }
  if (auto v = node.get("ip_family")) c.ip_family = parse_ip_family(*v);
  if (auto v = node.get("resolvers")) c.resolvers = parse_resolvers(*v, true);
  if (auto v = node.get("tls")) c.tls = parse_tls_options(*v);
  if (auto expect = node.get("expect")) {
    expect->expect_keys({"cert_expires_after", "issuer_matches", "version"});
    if (auto v = expect->get("cert_expires_after")) {
      c.cert_expires_after =
          v->as_duration(std::chrono::nanoseconds(0), std::chrono::hours(24 * 3650));
    }
    if (auto v = expect->get("issuer_matches")) c.issuer_matches = Pattern::parse(*v);
    if (auto v = expect->get("version")) {
      for (const auto& item : (v->is_sequence() ? v->items() : std::vector<ConfigNode>{*v})) {
        c.versions.push_back(item.as_enum({"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}));
      }
    }
  }
  return c;
}

TlsCheck::TlsCheck(CheckCommon common, TlsCheckConfig config)
    : Check(std::move(common)), config_(std::move(config)) {}

std::string TlsCheck::describe() const {
  return "tls " + config_.server_name + " at " + config_.host + ":" + std::to_string(config_.port);
}

CheckPtr make_tls_check(CheckCommon common, const ConfigNode& node) {
  return std::make_unique<TlsCheck>(std::move(common), parse_tls_check_config(node));
}

asio::awaitable<std::vector<CheckResult>> TlsCheck::run(RunContext& ctx) {
  const auto start = std::chrono::steady_clock::now();
  CheckResult r;
  r.target.host = config_.server_name;
  r.target.port = config_.port;
  const Resolution res = co_await ctx.services.resolvers.resolve(config_.host, config_.ip_family,
                                                                 config_.resolvers, ctx.deadline);
  r.target.resolver = res.resolver;
  if (res.failure) {
    net::apply(*res.failure, r.outcome);
    r.phases.dns = res.dns_ms;
    r.phases.total = to_ms(std::chrono::steady_clock::now() - start);
    co_return std::vector<CheckResult>{std::move(r)};
  }
  net::HttpRequest req;
  const bool v6_name = config_.server_name.find(':') != std::string::npos;
  req.url = "https://" + (v6_name ? "[" + config_.server_name + "]" : config_.server_name) + ":" +
            std::to_string(config_.port) + "/";
  req.connect_only = true;
  req.pinned_addresses = res.addresses;
  req.timeout = ctx.remaining();
  req.connect_timeout = req.timeout;
  req.tls = config_.tls;
  const net::HttpExchange ex = co_await net::http_exchange(ctx.services.curl, req);
  http::record_exchange(ex, res.dns_ms, r);
  r.target.url.clear();
  r.target.host = config_.server_name;
  r.target.port = config_.port;
  r.http.reset();

  if (ex.completed()) {
    const auto& facts = ex.tls.facts;
    if (config_.cert_expires_after) {
      record_cert_expiry(r, facts, ctx.services.clock.utc_now(), *config_.cert_expires_after);
    }
    if (config_.issuer_matches) {
      record_assertion(r, "issuer_matches", config_.issuer_matches->search(facts.issuer),
                       config_.issuer_matches->source(), facts.issuer);
    }
    if (!config_.versions.empty()) {
      std::string want;
      bool ok = false;
      for (const auto& v : config_.versions) {
        want += (want.empty() ? "" : ", ") + v;
        ok = ok || v == facts.version;
      }
      record_assertion(r, "version", ok, want, facts.version);
    }
  }
  r.phases.total = to_ms(std::chrono::steady_clock::now() - start);
  co_return std::vector<CheckResult>{std::move(r)};
}

}  // namespace vantage::probe::checks::tls
