// `kind: http` — one HTTP(S) request with assertions, measured phase by phase
// (see docs/configuration.md#http for every key).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "probe/check.hpp"
#include "probe/checks/expect.hpp"
#include "probe/net/http_client.hpp"
#include "probe/resolver_pool.hpp"

namespace vantage {
class ConfigNode;
}

namespace vantage::probe::checks::http {

struct HttpConfig {
  std::string url;
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::string> body;
  bool follow_redirects = true;
  int max_redirects = 10;
  IpFamily ip_family = IpFamily::any;
  bool every_address = false;          // one result per resolved address
  std::vector<std::string> resolvers;  // empty = system
  std::string http_version;            // "", "1.1", "2"
  net::TlsClientOptions tls;
  std::size_t max_body_bytes = 1 << 20;  // kept for assertions
  // expect:
  StatusSet status = StatusSet::default_set();
  std::vector<Pattern> body_matches;
  std::vector<Pattern> body_not_matches;
  std::vector<JsonAssertion> json;
  std::vector<HeaderAssertion> headers_expect;
  std::optional<std::chrono::nanoseconds> cert_expires_after;  // earliest expiry must be later
  std::optional<std::chrono::nanoseconds> max_duration;
};

// Parses the kind-specific keys of one `checks[]` entry (common keys are handled by the caller).
HttpConfig parse_http_config(const ConfigNode& node);

class HttpCheck final : public Check {
 public:
  HttpCheck(CheckCommon common, HttpConfig config);
  boost::asio::awaitable<std::vector<CheckResult>> run(RunContext& ctx) override;
  std::string describe() const override;
  const HttpConfig& config() const noexcept { return config_; }

 private:
  boost::asio::awaitable<CheckResult> run_one(RunContext& ctx, const Resolution& resolution,
                                              std::vector<std::string> addresses);
  HttpConfig config_;
  std::string host_;
  std::uint16_t port_ = 0;
};

CheckPtr make_http_check(CheckCommon common, const ConfigNode& node);

// Shared with other kinds that judge an HTTP exchange (journey steps): fills target, phases,
// http/tls facts and the transport outcome of `result` from `exchange`.
void record_exchange(const net::HttpExchange& exchange, double dns_ms, CheckResult& result);

}  // namespace vantage::probe::checks::http
