#include "probe/checks/registry.hpp"

#include <array>
#include <utility>

#include "probe/checks/bgp/bgp_check.hpp"
#include "probe/checks/dns/dns_check.hpp"
#include "probe/checks/http/http_check.hpp"
#include "probe/checks/journey/journey_check.hpp"
#include "probe/checks/tcp/tcp_check.hpp"
#include "probe/checks/tls/tls_check.hpp"

namespace vantage::probe::checks {
namespace {

constexpr std::array<std::pair<std::string_view, CheckFactory>, 6> kKinds{{
    {"http", &http::make_http_check},
    {"dns", &dns::make_dns_check},
    {"tcp", &tcp::make_tcp_check},
    {"tls", &tls::make_tls_check},
    {"journey", &journey::make_journey_check},
    {"bgp", &bgp::make_bgp_check},
}};

}  // namespace

CheckFactory find_check_kind(std::string_view kind) {
  for (const auto& [name, factory] : kKinds) {
    if (name == kind) return factory;
  }
  return nullptr;
}

std::vector<std::string_view> check_kinds() {
  std::vector<std::string_view> out;
  for (const auto& [name, factory] : kKinds) out.push_back(name);
  return out;
}

}  // namespace vantage::probe::checks
