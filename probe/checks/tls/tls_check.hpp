// `kind: tls` — a TCP connect and TLS handshake only (no HTTP), reporting the TLS facts
// (version, cipher, chain, earliest expiry) and failing on certificate problems or an expiry
// closer than a threshold.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "probe/check.hpp"
#include "probe/checks/expect.hpp"
#include "probe/net/http_client.hpp"
#include "probe/resolver_pool.hpp"

namespace vantage {
class ConfigNode;
}

namespace vantage::probe::checks::tls {

struct TlsCheckConfig {
  std::string host;  // name or address to connect to
  std::uint16_t port = 443;
  std::string server_name;  // SNI and the name the certificate must carry; default: host
  IpFamily ip_family = IpFamily::any;
  std::vector<std::string> resolvers;
  net::TlsClientOptions tls;
  std::optional<std::chrono::nanoseconds> cert_expires_after;
  std::optional<Pattern> issuer_matches;
  std::vector<std::string> versions;  // accepted negotiated versions, e.g. ["TLSv1.3"]
};

TlsCheckConfig parse_tls_check_config(const ConfigNode& node);

class TlsCheck final : public Check {
 public:
  TlsCheck(CheckCommon common, TlsCheckConfig config);
  boost::asio::awaitable<std::vector<CheckResult>> run(RunContext& ctx) override;
  std::string describe() const override;

 private:
  TlsCheckConfig config_;
};

CheckPtr make_tls_check(CheckCommon common, const ConfigNode& node);

}  // namespace vantage::probe::checks::tls
