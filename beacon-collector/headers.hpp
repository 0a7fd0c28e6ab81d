// The header helper (`vantage-collector headers`): the exact response header lines a site sends
// so that browsers report to the collector — Reporting-Endpoints (Reporting API V1), Report-To
// and NEL (Network Error Logging needs the legacy Report-To group), the CSP directives
// `report-to` / `report-uri`, and the agent's script tag.
#pragma once

#include <string>

namespace vantage::collector {

struct HeaderOptions {
  std::string site;       // the site's origin, e.g. "https://shop.example.com"
  std::string collector;  // the collector's base URL, e.g. "https://collector.example.com/_v"
  double nel_success_fraction = 0.01;  // NEL sampling of successful requests
  double nel_failure_fraction = 1.0;   // NEL sampling of failed requests
  int max_age_s = 86400;               // how long browsers keep the policy, seconds
  bool include_subdomains = true;
};

// Returns the lines (each "Name: value\n") followed by notes. Throws std::invalid_argument when
// `site` or `collector` is not an absolute http(s) URL.
std::string render_headers(const HeaderOptions& options);

}  // namespace vantage::collector
