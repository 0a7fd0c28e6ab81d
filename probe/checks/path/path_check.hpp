// `kind: path` — a Paris traceroute to a target (probe/net/trace/tracer.hpp): where on the
// Internet this vantage point's packets stop, and why.
//
// Each run resolves `host`, traces the first address (of `ip_family`) and produces
//   - a `check_result` (check_kind "path"): ok when the target answered; otherwise the failure
//     type says how the path ended (tcp.address_unreachable: an ICMP unreachable; tcp.timed_out:
//     silent hops or max_hops; tcp.failed: a forwarding loop; timeout: the run's deadline;
//     unknown: the probe cannot open raw sockets, detail names CAP_NET_RAW);
//   - a `path_result` record with every hop (docs/path.md has its schema), published through
//     Services::publish_record and joined to the check_result by `trace_id`.
// Raw sockets need CAP_NET_RAW: start() tests it once per process and logs
// `path.no_cap_net_raw` naming the capability and the path checks affected; other checks run on.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "probe/check.hpp"
#include "probe/net/trace/tracer.hpp"
#include "probe/resolver_pool.hpp"

namespace vantage {
class ConfigNode;
}

namespace vantage::probe::checks::path {

struct PathConfig {
  std::string host;  // name or literal address
  net::trace::Protocol protocol = net::trace::Protocol::udp;
  std::uint16_t port = 0;  // 0: the protocol's default (udp 33434, tcp 443; unused by icmp)
  IpFamily ip_family = IpFamily::any;
  std::vector<std::string> resolvers;
  int first_ttl = 1;
  int max_hops = 30;
  int probes_per_hop = 3;
  int parallel_hops = 4;
  int max_silent_hops = 5;
  std::chrono::milliseconds hop_timeout{1000};

  std::uint16_t effective_port() const;
};

// Throws ConfigError (file:line:col: key: message) for unknown keys and out-of-range values.
PathConfig parse_path_config(const ConfigNode& node);

// The `path_result` record of one trace (without "vantage", which the probe adds).
// `started` is the run's UTC start; `id` the record's id.
nlohmann::json path_record(const std::string& id, const std::string& check_id, UtcTime started,
                           const std::string& trace_id, const PathConfig& config,
                           const std::string& server_ip, const net::trace::TraceResult& trace);

class PathCheck final : public Check {
 public:
  PathCheck(CheckCommon common, PathConfig config);
  boost::asio::awaitable<std::vector<CheckResult>> run(RunContext& ctx) override;
  std::string describe() const override;
  void start(Services& services) override;

 private:
  PathConfig config_;
};

CheckPtr make_path_check(CheckCommon common, const ConfigNode& node);

}  // namespace vantage::probe::checks::path
