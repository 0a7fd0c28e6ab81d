#include "beacon-collector/headers.hpp"

#include <cstdio>
#include <stdexcept>

#include "beacon-collector/ingest/origins.hpp"

namespace vantage::collector {
namespace {
std::string fraction(double f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", f);
  std::string s = buf;
  if (s.find('.') == std::string::npos && s.find('e') == std::string::npos) s += ".0";
  return s;
}
}  // namespace

std::string render_headers(const HeaderOptions& o) {
  const std::string site = ingest::origin_of(o.site);
  std::string base = ingest::strip_query(o.collector);
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (site.empty() || site.rfind("http", 0) != 0) {
    throw std::invalid_argument("--site must be an absolute URL like https://shop.example.com");
  }
  if (ingest::origin_of(base).empty() || base.rfind("http", 0) != 0) {
    throw std::invalid_argument("--collector must be an absolute URL like https://collector.example.com");
  }
  const std::string sub = o.include_subdomains ? "true" : "false";
  const std::string age = std::to_string(o.max_age_s);
  std::string out;
  out += "# Response headers for " + site + " (every HTML page; NEL also on other responses):\n";
  out += "Reporting-Endpoints: default=\"" + base + "/reports/default\", csp-endpoint=\"" + base +
         "/reports/csp\"\n";
  out += "Report-To: {\"group\":\"nel\",\"max_age\":" + age + ",\"include_subdomains\":" + sub +
         ",\"endpoints\":[{\"url\":\"" + base + "/reports/nel\"}]}\n";
  out += "NEL: {\"report_to\":\"nel\",\"max_age\":" + age + ",\"include_subdomains\":" + sub +
         ",\"success_fraction\":" + fraction(o.nel_success_fraction) +
         ",\"failure_fraction\":" + fraction(o.nel_failure_fraction) + "}\n";
  out += "# Append to your Content-Security-Policy (or -Report-Only) header:\n";
  out += "Content-Security-Policy: <your policy>; report-to csp-endpoint; report-uri " + base +
         "/csp\n";
  out += "# The agent, in every page's <head>:\n";
  out += "<script src=\"" + base + "/beacon.js\" data-endpoint=\"" + base +
         "/beacon\" async></script>\n";
  out += "# In the collector's config:\n";
  // NEL's include_subdomains makes browsers report failures on subdomains (a DNS failure of
  // cdn.shop.example.com) with the subdomain as the upload's Origin: allow those too.
  const auto scheme_end = site.find("://") + 3;
  out += "allowed_origins: [\"" + site + "\"" +
         (o.include_subdomains ? ", \"" + site.substr(0, scheme_end) + "*." + site.substr(scheme_end) + "\"" : "") +
         "]\n";
  if (base.rfind("https://", 0) != 0) {
    out += "# WARNING: browsers only deliver Reporting API and NEL reports to an https:// "
           "collector.\n";
  }
  const std::string collector_origin = ingest::origin_of(base);
  if (collector_origin != site) {
    out += "# The collector is cross-origin: browsers send a CORS preflight (OPTIONS) before every\n"
           "# report upload; the collector answers it for the allowed origins.\n";
  }
  return out;
}

}  // namespace vantage::collector
