// `kind: dns` — one query (name, type) sent to each configured resolver, with assertions on the
// rcode, the answer set and TTLs. One result per resolver, so analysis can compare resolvers
// and vantage points (a resolver answering outside the expected set is a possible hijack).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "probe/check.hpp"
#include "probe/checks/expect.hpp"

namespace vantage {
class ConfigNode;
}

namespace vantage::probe::checks::dns {

struct IpPrefix {
  std::string text;  // as written, "203.0.113.0/24"
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};
  int length = 0;
  bool contains(const std::string& address) const;
  static std::optional<IpPrefix> parse(const std::string& text);
};

struct DnsConfig {
  std::string name;
  std::string type = "A";
  std::uint16_t type_code = 1;
  std::vector<std::string> resolvers;               // "system" or host:port; default ["system"]
  std::vector<int> rcodes{0};                       // accepted rcodes, default NOERROR
  std::optional<std::vector<std::string>> answers;  // exact set of answer data (queried type)
  std::optional<Pattern> answers_match;             // every answer's data must match
  std::vector<IpPrefix> answers_within;             // every A/AAAA answer inside one of these
  std::optional<std::uint32_t> min_ttl;             // seconds, every answer
  std::optional<int> min_answers;                   // answers of the queried type
};

DnsConfig parse_dns_config(const ConfigNode& node);

class DnsCheck final : public Check {
 public:
  DnsCheck(CheckCommon common, DnsConfig config);
  boost::asio::awaitable<std::vector<CheckResult>> run(RunContext& ctx) override;
  std::string describe() const override;

 private:
  boost::asio::awaitable<CheckResult> query(RunContext& ctx, std::string resolver);
  DnsConfig config_;
};

CheckPtr make_dns_check(CheckCommon common, const ConfigNode& node);

}  // namespace vantage::probe::checks::dns
