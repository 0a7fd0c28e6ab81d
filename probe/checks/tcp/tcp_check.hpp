// `kind: tcp` — a TCP connect, optionally followed by a scripted exchange (send / expect), like
// blackbox_exporter's tcp prober `query_response`: e.g. expect an SMTP banner "^220 ".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "probe/check.hpp"
#include "probe/checks/expect.hpp"
#include "probe/resolver_pool.hpp"

namespace vantage {
class ConfigNode;
}

namespace vantage::probe::checks::tcp {

struct TcpStep {
  std::optional<std::string> send;  // bytes to write
  std::optional<Pattern> expect;    // read until this matches what was received so far
};

struct TcpConfig {
  std::string host;
  std::uint16_t port = 0;
  IpFamily ip_family = IpFamily::any;
  std::vector<std::string> resolvers;
  std::vector<TcpStep> steps;  // `query_response`
};

TcpConfig parse_tcp_config(const ConfigNode& node);

class TcpCheck final : public Check {
 public:
  TcpCheck(CheckCommon common, TcpConfig config);
  boost::asio::awaitable<std::vector<CheckResult>> run(RunContext& ctx) override;
  std::string describe() const override;

 private:
  TcpConfig config_;
};

CheckPtr make_tcp_check(CheckCommon common, const ConfigNode& node);

}  // namespace vantage::probe::checks::tcp
