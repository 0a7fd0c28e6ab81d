#include "probe/checks/registry.hpp"

#include <array>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/config_node.hpp"
#include "probe/checks/bgp/bgp_check.hpp"
#include "probe/checks/dns/dns_check.hpp"
#include "probe/checks/http/http_check.hpp"
#include "probe/checks/journey/journey_check.hpp"
#include "probe/checks/path/path_check.hpp"
#include "probe/checks/tcp/tcp_check.hpp"
#include "probe/checks/tls/tls_check.hpp"

namespace vantage::probe::checks {
namespace {

constexpr std::array<std::pair<std::string_view, CheckFactory>, 7> kKinds{{
    {"http", &http::make_http_check},
    {"dns", &dns::make_dns_check},
    {"tcp", &tcp::make_tcp_check},
    {"tls", &tls::make_tls_check},
    {"journey", &journey::make_journey_check},
    {"bgp", &bgp::make_bgp_check},
    {"path", &path::make_path_check},
}};

nlohmann::json canonical(const ConfigNode& node) {
  if (node.is_map()) {
    nlohmann::json out = nlohmann::json::object();  // std::map: sorted keys
    for (const auto& [key, value] : node.entries()) out[key] = canonical(value);
    return out;
  }
  if (node.is_sequence()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : node.items()) out.push_back(canonical(item));
    return out;
  }
  if (node.is_null()) return nullptr;
  // A scalar as written: "10" and 10 may mean different things to a kind's parser.
  return nlohmann::json::array({node.is_quoted() ? "quoted" : "plain", node.as_string()});
}

}  // namespace

std::string fingerprint(const CheckCommon& common, const ConfigNode& node) {
  const nlohmann::json doc = {
      {"kind", common.kind},
      {"interval_ns", common.interval.count()},
      {"timeout_ns", common.timeout.count()},
      {"retries", common.retries},
      {"retry_backoff_ns", common.retry_backoff.count()},
      {"entry", canonical(node)},
  };
  return doc.dump();
}

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
