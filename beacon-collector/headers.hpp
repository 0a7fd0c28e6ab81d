// The header helper (`vantage-collector headers`): the response headers a site sends so that
// browsers report to the collector — Reporting-Endpoints (Reporting API V1, W3C Reporting API),
// Report-To and NEL (W3C Network Error Logging; NEL still needs the legacy Report-To group), a
// Content-Security-Policy with the `report-to` / `report-uri` directives (CSP Level 3), and, as
// hints, the agent's script tag and the collector's `allowed_origins`.
//
// Four output formats: `raw` (header lines, the default), and ready-to-paste server
// configuration that is valid as printed — `nginx` (an include file of core `add_header … always;`
// lines), `apache` (mod_headers `Header always set …`) and `caddy` (a `header { … }` block). In
// the server formats the hints are comments of that syntax, and the CSP header is
// Content-Security-Policy-Report-Only with `default-src 'self'` unless `csp` gives the policy.
#pragma once

#include <string>

namespace vantage::collector {

enum class HeaderFormat { raw, nginx, apache, caddy };

struct HeaderOptions {
  std::string site;       // the site's origin, e.g. "https://shop.example.com"
  std::string collector;  // the collector's base URL, e.g. "https://collector.example.com/_v"
  double nel_success_fraction = 0.01;  // NEL sampling of successful requests, 0-1
  double nel_failure_fraction = 1.0;   // NEL sampling of failed requests, 0-1
  int max_age_s = 86400;               // how long browsers keep the policy, seconds
  bool include_subdomains = true;
  HeaderFormat format = HeaderFormat::raw;
  // The site's CSP without report-to/report-uri (the helper appends those), e.g.
  // "default-src 'self'; img-src 'self' https://cdn.example.com". Empty: `raw` prints a line to
  // append to the site's own policy; the server formats use `default-src 'self'`.
  std::string csp;
  // Send the policy as Content-Security-Policy (enforced) instead of -Report-Only.
  bool csp_enforce = false;
};

// Returns the snippet in `options.format`, ending with a newline. Throws std::invalid_argument
// when `site` or `collector` is not an absolute http(s) URL, when one of them or `csp` holds a
// character that cannot be carried safely in every format (quotes, backslash, `$`, `,`, braces,
// spaces in URLs, control or non-ASCII characters), or when `csp` already has a report-to or
// report-uri directive.
std::string render_headers(const HeaderOptions& options);

}  // namespace vantage::collector
