// The header helper (beacon-collector/headers.hpp): the exact snippet each --format prints for
// one site, how values are quoted for each server syntax, and the inputs it refuses because no
// syntax could carry them as printed. tests/integration/test_site_headers.py runs the same
// snippets through `nginx -t`, `apache2 -t` and real servers.
#include "beacon-collector/headers.hpp"

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>

using namespace vantage::collector;

namespace {

HeaderOptions shop(HeaderFormat format) {
  HeaderOptions o;
  o.site = "https://shop.example.com/index.html";
  o.collector = "https://collector.example.com/_v/";
  o.format = format;
  return o;
}

std::string error_of(const HeaderOptions& o) {
  try {
    render_headers(o);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

constexpr const char* kHints = R"snip(#
# The agent, in every page's <head>:
#     <script src="https://collector.example.com/_v/beacon.js" data-endpoint="https://collector.example.com/_v/beacon" async></script>
# In the collector's configuration:
#     allowed_origins: ["https://shop.example.com", "https://*.shop.example.com"]
# The collector is cross-origin: browsers send a CORS preflight (OPTIONS) before every
# report upload; the collector answers it for the allowed origins.
)snip";

// The snippet before the hints, as --format nginx prints it.
constexpr const char kNginx[] =
    R"snip(# Vantage reporting headers for https://shop.example.com (printed by vantage-collector headers --format nginx).
# Save it as an include file, e.g. /etc/nginx/snippets/vantage-headers.conf, and write
#     include snippets/vantage-headers.conf;
# in the server block AND in every location block that has an add_header of its own:
# nginx's add_header in a location replaces all the add_header lines it would inherit
# from the server block (they are not merged), so such a location would send none of these.
# `always` sends them on 4xx/5xx responses too, where NEL matters most.
# Reporting API V1 endpoints: CSP and other reports from the pages.
add_header Reporting-Endpoints 'default="https://collector.example.com/_v/reports/default", csp-endpoint="https://collector.example.com/_v/reports/csp"' always;
# Network Error Logging: NEL names a Report-To group (the legacy header), not a Reporting-Endpoints one.
add_header Report-To '{"group":"nel","max_age":86400,"include_subdomains":true,"endpoints":[{"url":"https://collector.example.com/_v/reports/nel"}]}' always;
add_header NEL '{"report_to":"nel","max_age":86400,"include_subdomains":true,"success_fraction":0.01,"failure_fraction":1.0}' always;
# CSP in report-only mode (blocks nothing) with a placeholder policy, default-src 'self':
# replace it with your policy, or print this again with --csp "<your policy>". If the site
# already sends a CSP, append "; report-to csp-endpoint; report-uri https://collector.example.com/_v/csp" to it instead.
add_header Content-Security-Policy-Report-Only "default-src 'self'; report-to csp-endpoint; report-uri https://collector.example.com/_v/csp" always;
)snip";

// The snippet before the hints, as --format apache prints it.
constexpr const char kApache[] =
    R"snip(# Vantage reporting headers for https://shop.example.com (printed by vantage-collector headers --format apache).
# Needs mod_headers (Debian: a2enmod headers). Put it in the <VirtualHost> (or Include it there).
# `always` sends the headers on error responses (4xx/5xx) too, where NEL matters most.
# Reporting API V1 endpoints: CSP and other reports from the pages.
Header always set Reporting-Endpoints "default=\"https://collector.example.com/_v/reports/default\", csp-endpoint=\"https://collector.example.com/_v/reports/csp\""
# Network Error Logging: NEL names a Report-To group (the legacy header), not a Reporting-Endpoints one.
Header always set Report-To "{\"group\":\"nel\",\"max_age\":86400,\"include_subdomains\":true,\"endpoints\":[{\"url\":\"https://collector.example.com/_v/reports/nel\"}]}"
Header always set NEL "{\"report_to\":\"nel\",\"max_age\":86400,\"include_subdomains\":true,\"success_fraction\":0.01,\"failure_fraction\":1.0}"
# CSP in report-only mode (blocks nothing) with a placeholder policy, default-src 'self':
# replace it with your policy, or print this again with --csp "<your policy>". If the site
# already sends a CSP, append "; report-to csp-endpoint; report-uri https://collector.example.com/_v/csp" to it instead.
Header always set Content-Security-Policy-Report-Only "default-src 'self'; report-to csp-endpoint; report-uri https://collector.example.com/_v/csp"
)snip";

// The snippet before the hints, as --format caddy prints it.
constexpr const char kCaddy[] =
    R"snip(# Vantage reporting headers for https://shop.example.com (printed by vantage-collector headers --format caddy).
# Paste it into the site block (or into a snippet you import in every site block). Caddy
# sets these headers as the request enters the block (not deferred), so error responses carry them too.
header {
	# Reporting API V1 endpoints: CSP and other reports from the pages.
	Reporting-Endpoints `default="https://collector.example.com/_v/reports/default", csp-endpoint="https://collector.example.com/_v/reports/csp"`
	# Network Error Logging: NEL names a Report-To group (the legacy header), not a Reporting-Endpoints one.
	Report-To `{"group":"nel","max_age":86400,"include_subdomains":true,"endpoints":[{"url":"https://collector.example.com/_v/reports/nel"}]}`
	NEL `{"report_to":"nel","max_age":86400,"include_subdomains":true,"success_fraction":0.01,"failure_fraction":1.0}`
	# CSP in report-only mode (blocks nothing) with a placeholder policy, default-src 'self':
	# replace it with your policy, or print this again with --csp "<your policy>". If the site
	# already sends a CSP, append "; report-to csp-endpoint; report-uri https://collector.example.com/_v/csp" to it instead.
	Content-Security-Policy-Report-Only `default-src 'self'; report-to csp-endpoint; report-uri https://collector.example.com/_v/csp`
}
)snip";

}  // namespace

TEST_CASE("--format nginx prints an include file of add_header ... always lines",
          "[collector][headers]") {
  const std::string expected = std::string(kNginx) + kHints;
  CHECK(render_headers(shop(HeaderFormat::nginx)) == expected);
}

TEST_CASE("--format apache prints mod_headers lines with escaped inner quotes",
          "[collector][headers]") {
  const std::string expected = std::string(kApache) + kHints;
  CHECK(render_headers(shop(HeaderFormat::apache)) == expected);
}

TEST_CASE("--format caddy prints a header block with backtick-quoted values",
          "[collector][headers]") {
  const std::string expected = std::string(kCaddy) + kHints;
  CHECK(render_headers(shop(HeaderFormat::caddy)) == expected);
}

TEST_CASE("--format raw (the default) prints header lines and a CSP suffix to append",
          "[collector][headers]") {
  HeaderOptions o = shop(HeaderFormat::raw);
  CHECK(HeaderOptions{}.format == HeaderFormat::raw);
  const std::string expected =
      R"snip(# Response headers for https://shop.example.com (every HTML page; NEL also on other responses):
Reporting-Endpoints: default="https://collector.example.com/_v/reports/default", csp-endpoint="https://collector.example.com/_v/reports/csp"
Report-To: {"group":"nel","max_age":86400,"include_subdomains":true,"endpoints":[{"url":"https://collector.example.com/_v/reports/nel"}]}
NEL: {"report_to":"nel","max_age":86400,"include_subdomains":true,"success_fraction":0.01,"failure_fraction":1.0}
# Append to your Content-Security-Policy (or -Report-Only) header:
Content-Security-Policy: <your policy>; report-to csp-endpoint; report-uri https://collector.example.com/_v/csp
# The agent, in every page's <head>:
<script src="https://collector.example.com/_v/beacon.js" data-endpoint="https://collector.example.com/_v/beacon" async></script>
# In the collector's config:
allowed_origins: ["https://shop.example.com", "https://*.shop.example.com"]
# The collector is cross-origin: browsers send a CORS preflight (OPTIONS) before every
# report upload; the collector answers it for the allowed origins.
)snip";
  CHECK(render_headers(o) == expected);

  // With --csp the line is the whole header, report-only unless --csp-enforce.
  o.csp = " default-src 'self'; img-src 'self' https://cdn.example.com ; ";
  const std::string out = render_headers(o);
  CHECK(out.find("\nContent-Security-Policy-Report-Only: default-src 'self'; img-src 'self' "
                 "https://cdn.example.com; report-to csp-endpoint; report-uri "
                 "https://collector.example.com/_v/csp\n") != std::string::npos);
  CHECK(out.find("<your policy>") == std::string::npos);
  o.csp_enforce = true;
  CHECK(render_headers(o).find("\nContent-Security-Policy: default-src 'self'; img-src 'self' "
                               "https://cdn.example.com; report-to") != std::string::npos);
}

TEST_CASE("--csp and --csp-enforce in the server formats", "[collector][headers]") {
  HeaderOptions o = shop(HeaderFormat::nginx);
  o.csp = "script-src 'self' 'sha256-abc+/='";
  o.csp_enforce = true;
  std::string out = render_headers(o);
  CHECK(out.find("\nadd_header Content-Security-Policy \"script-src 'self' 'sha256-abc+/='; "
                 "report-to csp-endpoint; report-uri https://collector.example.com/_v/csp\" "
                 "always;\n") != std::string::npos);
  CHECK(out.find("# Your CSP, enforced, with the reporting directives") != std::string::npos);
  CHECK(out.find("Report-Only") == std::string::npos);
  o.format = HeaderFormat::apache;
  o.csp_enforce = false;
  out = render_headers(o);
  CHECK(out.find("\nHeader always set Content-Security-Policy-Report-Only \"script-src 'self' "
                 "'sha256-abc+/='; report-to") != std::string::npos);
  o.format = HeaderFormat::caddy;
  CHECK(render_headers(o).find("\n\tContent-Security-Policy-Report-Only `script-src 'self' "
                               "'sha256-abc+/='; report-to") != std::string::npos);
}

TEST_CASE("values are escaped for each syntax", "[collector][headers]") {
  // A percent-encoded collector path: mod_headers reads `%` as a format specifier.
  HeaderOptions o = shop(HeaderFormat::apache);
  o.collector = "https://collector.example.com/v%31";
  std::string out = render_headers(o);
  CHECK(out.find("\nHeader always set Report-To \"{\\\"group\\\":\\\"nel\\\",\\\"max_age\\\":86400,"
                 "\\\"include_subdomains\\\":true,\\\"endpoints\\\":[{\\\"url\\\":"
                 "\\\"https://collector.example.com/v%%31/reports/nel\\\"}]}\"\n") !=
        std::string::npos);
  // The hint comments are not config values: no escaping there.
  CHECK(out.find("#     <script src=\"https://collector.example.com/v%31/beacon.js\"") !=
        std::string::npos);
  o.format = HeaderFormat::nginx;
  CHECK(render_headers(o).find("add_header NEL '{\"report_to\":\"nel\",") != std::string::npos);
}

TEST_CASE("an http collector and a same-origin collector change the notes",
          "[collector][headers]") {
  HeaderOptions o = shop(HeaderFormat::nginx);
  o.collector = "http://collector.example.com";
  std::string out = render_headers(o);
  CHECK(out.find("\n# WARNING: browsers only deliver Reporting API and NEL reports to an https:// "
                 "collector.\n") != std::string::npos);
  o.collector = "https://shop.example.com/_v";
  o.include_subdomains = false;
  out = render_headers(o);
  CHECK(out.find("WARNING") == std::string::npos);
  CHECK(out.find("cross-origin") == std::string::npos);
  CHECK(out.find("\"include_subdomains\":false") != std::string::npos);
  CHECK(out.find("#     allowed_origins: [\"https://shop.example.com\"]\n") != std::string::npos);
}

TEST_CASE("inputs no server syntax can carry as printed are refused with the reason",
          "[collector][headers]") {
  HeaderOptions o = shop(HeaderFormat::nginx);
  o.site = "shop";
  CHECK(error_of(o) == "--site must be an absolute URL like https://shop.example.com");
  o = shop(HeaderFormat::nginx);
  o.collector = "https://collector.example.com/a'b";
  CHECK(error_of(o) ==
        "--collector contains \"'\", which a header value cannot carry in every server syntax: "
        "percent-encode it");
  o.collector = "https://collector.example.com/$x";
  CHECK(error_of(o).rfind("--collector contains '$'", 0) == 0);
  o.collector = "https://collector.example.com/a,b";
  CHECK(error_of(o).rfind("--collector contains ','", 0) == 0);
  o.collector = "https://collector.example.com/a b";
  CHECK(error_of(o).rfind("--collector contains a space", 0) == 0);

  o = shop(HeaderFormat::caddy);
  for (const char* bad :
       {"default-src \"self\"", "default-src 'self' {host}", "default-src $host",
        "default-src a.test, b.test", "img-src `x`", "default-src 'self'\nX-Injected: 1"}) {
    o.csp = bad;
    CAPTURE(bad);
    CHECK(error_of(o).rfind("--csp contains ", 0) == 0);
  }
  o.csp = "default-src 'self'\nX";
  CHECK(error_of(o) ==
        "--csp contains byte 0x0a, which a policy does not need and a server "
        "syntax cannot carry as printed");
  o.csp = "default-src 'self'; Report-URI https://elsewhere.example.com/csp";
  CHECK(error_of(o) ==
        "--csp has a report-uri directive: leave it out, the snippet adds "
        "report-to and report-uri for the collector");
  o.csp = "report-to other; default-src 'self'";
  CHECK(error_of(o).rfind("--csp has a report-to directive", 0) == 0);
  o.csp = "img-src https://example.com/report-to";  // a source, not a directive
  CHECK(error_of(o) == "(no error)");
}
