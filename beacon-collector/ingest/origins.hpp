// The origin allow-list (DESIGN §5): which sites may upload. Patterns are
// "scheme://host[:port]" with an optional leading "*." on the host (any subdomain, not the bare
// domain) and an optional ":*" port (any port): "https://shop.example.com",
// "https://*.example.com", "https://*.test:*". An empty list allows every origin.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vantage::collector::ingest {

class OriginPolicy {
 public:
  OriginPolicy();
  // Throws std::invalid_argument naming the first pattern that does not parse.
  explicit OriginPolicy(const std::vector<std::string>& patterns);

  bool allow_all() const noexcept { return patterns_.empty(); }
  // `origin` as in the Origin header: "https://app.example.com:8443" (lower-case scheme/host).
  bool allows(std::string_view origin) const;
  // Checks the origin of an absolute URL ("https://app.example.com/page?q" ->
  // "https://app.example.com"). A URL that has no origin ("about:blank", "") is not allowed
  // unless every origin is.
  bool allows_url(std::string_view url) const;

 private:
  struct Pattern {
    std::string scheme;
    std::string host;        // without "*."
    bool any_subdomain = false;
    std::string port;        // "" = the scheme's default port, "*" = any
  };
  std::vector<Pattern> patterns_;
  // Identifies this policy in the per-thread cache of the last allowed origin (uploads from one
  // site arrive in runs: the common case is answered by one string comparison).
  std::uint64_t id_;
};

// ASCII lower case (header values, schemes, host names).
std::string ascii_lower(std::string_view s);
// "scheme://host[:port]" of an absolute URL, lower-cased, default port omitted; "" if none.
std::string origin_of(std::string_view url);
// The URL without its query and fragment (and without user:password@), e.g.
// "https://a.example/p?q=1#f" -> "https://a.example/p". Anything else is cut at its first "?" or
// "#" ("/p?q" -> "/p"; "inline" stays).
std::string strip_query(std::string_view url);

}  // namespace vantage::collector::ingest
