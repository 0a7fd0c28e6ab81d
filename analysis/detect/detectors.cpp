// Helpers shared by the detectors (detectors.hpp).
#include "analysis/detect/detectors.hpp"

#include <algorithm>
#include <cmath>

#include "common/ip_prefix.hpp"

namespace vantage::analysis {

bool connection_failure(const std::string& t) {
  return t != "ok" && t.rfind("dns.", 0) != 0 && t != "http.error" && t != "assertion.failed";
}

bool dns_failure_type(const std::string& t) {
  return t.rfind("dns.", 0) == 0 || t == "assertion.failed";
}

bool nel_network_failure(const std::string& t) {
  return t != "ok" && !t.empty() && t.rfind("http.", 0) != 0 && t.rfind("agent ", 0) != 0 &&
         t != "abandoned";
}

bool covers(const std::string& prefix, const std::string& ip) {
  const auto p = IpPrefix::parse(prefix);
  const auto a = IpAddr::parse(ip);
  return p && a && p->contains(*a);
}

double percentile(std::vector<float> v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

void add_vantage_point(Incident& inc, const VantagePoint& vp) {
  if (!vp.id.empty()) add_unique(inc.probes, vp.id);
  add_unique(inc.asns, vp.asn);
  if (!vp.isp.empty()) add_unique(inc.isps, vp.isp);
  if (!vp.region.empty()) add_unique(inc.regions, vp.region);
  if (!vp.country.empty()) add_unique(inc.countries, vp.country);
}

std::string join_asns(const std::vector<std::uint32_t>& v) {
  std::string s;
  for (auto a : v) s += (s.empty() ? "AS" : ", AS") + std::to_string(a);
  return s;
}

}  // namespace vantage::analysis
