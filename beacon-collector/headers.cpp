#include "beacon-collector/headers.hpp"

#include <cstdio>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "beacon-collector/ingest/origins.hpp"

namespace vantage::collector {
namespace {

constexpr std::string_view kDefaultPolicy = "default-src 'self'";

std::string fraction(double f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", f);
  std::string s = buf;
  if (s.find('.') == std::string::npos && s.find('e') == std::string::npos) s += ".0";
  return s;
}

std::string describe(char c) {
  if (c == ' ') return "a space";
  if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned char>(c));
    return std::string("byte ") + buf;
  }
  if (c == '\'') return "\"'\"";
  return std::string("'") + c + "'";
}

// URL characters (RFC 3986) that stay literal in a JSON string, a structured-field string, a CSP
// directive and every server syntax below. Left out: `'` (nginx single quotes), `$` (nginx
// variables, no escape exists), `,` and `;` (they split CSP policies and directives).
bool url_char_ok(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("-._~:/?#[]@!&()*+=%").find(c) != std::string_view::npos;
}

void check_url(std::string_view url, std::string_view option) {
  for (char c : url) {
    if (!url_char_ok(c)) {
      throw std::invalid_argument(std::string(option) + " contains " + describe(c) +
                                  ", which a header value cannot carry in every server syntax: "
                                  "percent-encode it");
    }
  }
}

// The policy without surrounding blanks and trailing ';'. Rejects what no server syntax can
// carry as printed (quotes other than CSP's single quotes, backslash, `$` for nginx, braces for
// Caddy placeholders), commas (a comma starts a second policy, which would not report) and the
// reporting directives this helper adds.
std::string checked_policy(std::string_view policy) {
  while (!policy.empty() && (policy.back() == ' ' || policy.back() == ';')) policy.remove_suffix(1);
  while (!policy.empty() && policy.front() == ' ') policy.remove_prefix(1);
  for (char c : policy) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || std::string_view("\"`\\${},").find(c) != std::string_view::npos) {
      throw std::invalid_argument("--csp contains " + describe(c) +
                                  ", which a policy does not need and a server syntax cannot "
                                  "carry as printed");
    }
  }
  // Directive names: the first token after the start or a ';'.
  std::size_t pos = 0;
  while (pos <= policy.size()) {
    std::size_t end = policy.find(';', pos);
    if (end == std::string_view::npos) end = policy.size();
    std::string_view directive = policy.substr(pos, end - pos);
    while (!directive.empty() && directive.front() == ' ') directive.remove_prefix(1);
    const std::string name = ingest::ascii_lower(directive.substr(0, directive.find(' ')));
    if (name == "report-to" || name == "report-uri") {
      throw std::invalid_argument("--csp has a " + name +
                                  " directive: leave it out, the snippet adds report-to and "
                                  "report-uri for the collector");
    }
    pos = end + 1;
  }
  return std::string(policy);
}

// One header of the snippet; `comment` lines are printed before it in the format's syntax.
struct Header {
  std::vector<std::string> comment;
  std::string name;
  std::string value;
};

struct Snippet {
  std::string site;
  std::vector<Header> headers;
  std::vector<std::string> hints;  // agent tag, allowed_origins, warnings (comment lines)
};

// nginx: single quotes unless the value has one (CSP), then double quotes; `\` escapes the
// quote and itself. `$` cannot be escaped in nginx and never reaches here (checked above).
std::string nginx_quote(const std::string& v) {
  const char q = v.find('\'') == std::string::npos ? '\'' : '"';
  std::string out(1, q);
  for (char c : v) {
    if (c == q || c == '\\') out += '\\';
    out += c;
  }
  return out + q;
}

// Apache: double quotes; the config parser turns `\"` into `"`, and mod_headers reads `%` as a
// format specifier (`%%` is a literal one).
std::string apache_quote(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') {
      out += "\\\"";
    } else if (c == '%') {
      out += "%%";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Caddy: a backtick token is taken literally (values never hold a backtick: checked above).
std::string caddy_quote(const std::string& v) { return "`" + v + "`"; }

void comment_lines(std::string& out, const std::vector<std::string>& lines,
                   std::string_view indent) {
  for (const auto& line : lines) {
    out += std::string(indent) + (line.empty() ? "#" : "# " + line) + "\n";
  }
}

std::string render_server(const Snippet& s, HeaderFormat format) {
  std::string out;
  const std::string title = "Vantage reporting headers for " + s.site +
                            " (printed by vantage-collector headers --format ";
  switch (format) {
    case HeaderFormat::nginx:
      comment_lines(out,
                    {title + "nginx).",
                     "Save it as an include file, e.g. /etc/nginx/snippets/vantage-headers.conf, "
                     "and write",
                     "    include snippets/vantage-headers.conf;",
                     "in the server block AND in every location block that has an add_header of "
                     "its own:",
                     "nginx's add_header in a location replaces all the add_header lines it "
                     "would inherit",
                     "from the server block (they are not merged), so such a location would send "
                     "none of these.",
                     "`always` sends them on 4xx/5xx responses too, where NEL matters most."},
                    "");
      break;
    case HeaderFormat::apache:
      comment_lines(out,
                    {title + "apache).",
                     "Needs mod_headers (Debian: a2enmod headers). Put it in the <VirtualHost> "
                     "(or Include it there).",
                     "`always` sends the headers on error responses (4xx/5xx) too, where NEL "
                     "matters most."},
                    "");
      break;
    case HeaderFormat::caddy:
      comment_lines(out,
                    {title + "caddy).",
                     "Paste it into the site block (or into a snippet you import in every site "
                     "block). Caddy",
                     "sets these headers as the request enters the block (not deferred), so "
                     "error responses carry them too."},
                    "");
      out += "header {\n";
      break;
    case HeaderFormat::raw:
      break;
  }
  for (const auto& h : s.headers) {
    switch (format) {
      case HeaderFormat::nginx:
        comment_lines(out, h.comment, "");
        out += "add_header " + h.name + " " + nginx_quote(h.value) + " always;\n";
        break;
      case HeaderFormat::apache:
        comment_lines(out, h.comment, "");
        out += "Header always set " + h.name + " " + apache_quote(h.value) + "\n";
        break;
      case HeaderFormat::caddy:
        comment_lines(out, h.comment, "\t");
        out += "\t" + h.name + " " + caddy_quote(h.value) + "\n";
        break;
      case HeaderFormat::raw:
        break;
    }
  }
  if (format == HeaderFormat::caddy) out += "}\n";
  comment_lines(out, s.hints, "");
  return out;
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
    throw std::invalid_argument(
        "--collector must be an absolute URL like https://collector.example.com");
  }
  check_url(site, "--site");
  check_url(base, "--collector");
  const std::string policy = o.csp.empty() ? std::string() : checked_policy(o.csp);

  const std::string sub = o.include_subdomains ? "true" : "false";
  const std::string age = std::to_string(o.max_age_s);
  const std::string endpoints =
      "default=\"" + base + "/reports/default\", csp-endpoint=\"" + base + "/reports/csp\"";
  const std::string report_to = "{\"group\":\"nel\",\"max_age\":" + age +
                                ",\"include_subdomains\":" + sub + ",\"endpoints\":[{\"url\":\"" +
                                base + "/reports/nel\"}]}";
  const std::string nel = "{\"report_to\":\"nel\",\"max_age\":" + age +
                          ",\"include_subdomains\":" + sub +
                          ",\"success_fraction\":" + fraction(o.nel_success_fraction) +
                          ",\"failure_fraction\":" + fraction(o.nel_failure_fraction) + "}";
  const std::string csp_reporting = "report-to csp-endpoint; report-uri " + base + "/csp";
  const std::string csp_name =
      o.csp_enforce ? "Content-Security-Policy" : "Content-Security-Policy-Report-Only";
  const std::string agent = "<script src=\"" + base + "/beacon.js\" data-endpoint=\"" + base +
                            "/beacon\" async></script>";
  // NEL's include_subdomains makes browsers report failures on subdomains (a DNS failure of
  // cdn.shop.example.com) with the subdomain as the upload's Origin: allow those too.
  const auto scheme_end = site.find("://") + 3;
  const std::string allowed = "allowed_origins: [\"" + site + "\"" +
                              (o.include_subdomains ? ", \"" + site.substr(0, scheme_end) + "*." +
                                                          site.substr(scheme_end) + "\""
                                                    : "") +
                              "]";
  std::vector<std::string> warnings;
  if (base.rfind("https://", 0) != 0) {
    warnings.push_back(
        "WARNING: browsers only deliver Reporting API and NEL reports to an "
        "https:// collector.");
  }
  if (ingest::origin_of(base) != site) {
    warnings.push_back(
        "The collector is cross-origin: browsers send a CORS preflight (OPTIONS) "
        "before every");
    warnings.push_back("report upload; the collector answers it for the allowed origins.");
  }

  if (o.format == HeaderFormat::raw) {
    std::string out;
    out += "# Response headers for " + site + " (every HTML page; NEL also on other responses):\n";
    out += "Reporting-Endpoints: " + endpoints + "\n";
    out += "Report-To: " + report_to + "\n";
    out += "NEL: " + nel + "\n";
    if (policy.empty()) {
      out += "# Append to your Content-Security-Policy (or -Report-Only) header:\n";
      out += "Content-Security-Policy: <your policy>; " + csp_reporting + "\n";
    } else {
      out += "# Your policy with the reporting directives" +
             std::string(o.csp_enforce ? " (enforced):\n" : " (report-only: blocks nothing):\n");
      out += csp_name + ": " + policy + "; " + csp_reporting + "\n";
    }
    out += "# The agent, in every page's <head>:\n";
    out += agent + "\n";
    out += "# In the collector's config:\n";
    out += allowed + "\n";
    for (const auto& w : warnings) out += "# " + w + "\n";
    return out;
  }

  Snippet s;
  s.site = site;
  s.headers.push_back({{"Reporting API V1 endpoints: CSP and other reports from the pages."},
                       "Reporting-Endpoints",
                       endpoints});
  s.headers.push_back({{"Network Error Logging: NEL names a Report-To group (the legacy header), "
                        "not a Reporting-Endpoints one."},
                       "Report-To",
                       report_to});
  s.headers.push_back({{}, "NEL", nel});
  std::vector<std::string> csp_comment;
  if (policy.empty()) {
    csp_comment = {
        "CSP in report-only mode (blocks nothing) with a placeholder policy, default-src 'self':",
        "replace it with your policy, or print this again with --csp \"<your policy>\". If the "
        "site",
        "already sends a CSP, append \"; " + csp_reporting + "\" to it instead."};
  } else if (o.csp_enforce) {
    csp_comment = {"Your CSP, enforced, with the reporting directives (--csp, --csp-enforce)."};
  } else {
    csp_comment = {
        "Your CSP in report-only mode (blocks nothing), with the reporting directives; "
        "--csp-enforce enforces it."};
  }
  s.headers.push_back(
      {std::move(csp_comment), csp_name,
       (policy.empty() ? std::string(kDefaultPolicy) : policy) + "; " + csp_reporting});
  s.hints = {"", "The agent, in every page's <head>:", "    " + agent,
             "In the collector's configuration:", "    " + allowed};
  for (auto& w : warnings) s.hints.push_back(std::move(w));
  return render_server(s, o.format);
}

}  // namespace vantage::collector
