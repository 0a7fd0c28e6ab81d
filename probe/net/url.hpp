// URL handling through libcurl's URL API (curl_url), so the probe and libcurl agree on what a
// URL means.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace vantage::probe::net {

struct UrlParts {
  std::string scheme;      // lower case, e.g. "https"
  std::string host;        // without brackets for IPv6 literals
  std::uint16_t port = 0;  // explicit or the scheme's default
  std::string path;        // "/" when absent
  bool host_is_ip = false;
  bool host_is_ipv6 = false;
};

// Parses an absolute http:// or https:// URL (RFC 3986). On failure returns nullopt and sets
// `error` (e.g. "unsupported scheme \"ftp\"", "malformed URL").
std::optional<UrlParts> parse_http_url(const std::string& url, std::string& error);

// Resolves a Location header value against the URL it came from (RFC 3986 §5.2, by libcurl's
// URL API): absolute URLs are taken as they are, relative ones joined. nullopt if malformed.
std::optional<std::string> resolve_reference(const std::string& base, const std::string& reference);

// The URL without query and fragment (what results store: queries can carry secrets).
std::string strip_query_and_fragment(const std::string& url);

// True if `text` is an IPv4 or IPv6 address literal (no brackets).
bool is_ip_literal(const std::string& text) noexcept;

}  // namespace vantage::probe::net
