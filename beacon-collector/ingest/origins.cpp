#include "beacon-collector/ingest/origins.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <stdexcept>

namespace vantage::collector::ingest {
namespace {

std::string_view default_port(std::string_view scheme) {
  if (scheme == "https" || scheme == "wss") return "443";
  if (scheme == "http" || scheme == "ws") return "80";
  return "";
}

struct Split {
  std::string scheme, host, port;
  bool ok = false;
};

// Splits "scheme://[userinfo@]host[:port][/…]" into lower-case parts; IPv6 hosts keep brackets.
Split split_origin(std::string_view url) {
  Split s;
  const auto colon_slashes = url.find("://");
  if (colon_slashes == std::string_view::npos || colon_slashes == 0) return s;
  s.scheme = ascii_lower(url.substr(0, colon_slashes));
  std::string_view rest = url.substr(colon_slashes + 3);
  rest = rest.substr(0, std::min(rest.find_first_of("/?#"), rest.size()));
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) rest = rest.substr(at + 1);
  std::string_view host = rest;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return s;
    host = rest.substr(0, close + 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else if (const auto c = rest.rfind(':'); c != std::string_view::npos) {
    host = rest.substr(0, c);
    port = rest.substr(c + 1);
  }
  if (host.empty()) return s;
  s.host = ascii_lower(host);
  s.port = std::string(port);
  if (s.port == default_port(s.scheme)) s.port.clear();
  s.ok = true;
  return s;
}

}  // namespace

namespace {
std::atomic<std::uint64_t> g_next_policy_id{1};
struct AllowedCache {
  std::uint64_t policy = 0;
  std::string origin;
};
thread_local AllowedCache t_allowed;
}  // namespace

OriginPolicy::OriginPolicy() : id_(g_next_policy_id.fetch_add(1)) {}

OriginPolicy::OriginPolicy(const std::vector<std::string>& patterns)
    : id_(g_next_policy_id.fetch_add(1)) {
  for (const auto& text : patterns) {
    Split s = split_origin(text);
    const auto after_scheme = text.find("://");
    const bool has_path = after_scheme != std::string::npos &&
                          text.find_first_of("/?#", after_scheme + 3) != std::string::npos;
    if (!s.ok || has_path || (s.scheme != "https" && s.scheme != "http")) {
      throw std::invalid_argument("\"" + text +
                                  "\" is not an origin pattern like https://shop.example.com, "
                                  "https://*.example.com or https://*.test:*");
    }
    Pattern p{s.scheme, s.host, false, s.port};
    if (p.host.rfind("*.", 0) == 0) {
      p.any_subdomain = true;
      p.host = p.host.substr(2);
    }
    if (p.host.find('*') != std::string::npos) {
      throw std::invalid_argument("\"" + text + "\": a wildcard may only start the host (*.)");
    }
    patterns_.push_back(std::move(p));
  }
}

bool OriginPolicy::allows(std::string_view origin) const {
  if (patterns_.empty()) return true;
  if (t_allowed.policy == id_ && origin == t_allowed.origin) return true;
  const Split s = split_origin(origin);
  if (!s.ok) return false;
  const bool ok = std::any_of(patterns_.begin(), patterns_.end(), [&](const Pattern& p) {
    if (p.scheme != s.scheme) return false;
    if (p.port != "*" && p.port != s.port) return false;
    if (!p.any_subdomain) return s.host == p.host;
    return s.host.size() > p.host.size() + 1 &&
           s.host.compare(s.host.size() - p.host.size(), p.host.size(), p.host) == 0 &&
           s.host[s.host.size() - p.host.size() - 1] == '.';
  });
  if (ok) {
    t_allowed.policy = id_;
    t_allowed.origin = std::string(origin);
  }
  return ok;
}

bool OriginPolicy::allows_url(std::string_view url) const {
  if (patterns_.empty()) return true;
  const std::string& last = t_allowed.origin;
  if (t_allowed.policy == id_ && url.size() >= last.size() && url.compare(0, last.size(), last) == 0 &&
      (url.size() == last.size() || url[last.size()] == '/' || url[last.size()] == '?' ||
       url[last.size()] == '#')) {
    return true;
  }
  return allows(origin_of(url));
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string origin_of(std::string_view url) {
  const Split s = split_origin(url);
  if (!s.ok) return {};
  return s.scheme + "://" + s.host + (s.port.empty() ? "" : ":" + s.port);
}

std::string strip_query(std::string_view url) {
  const auto scheme_end = url.find("://");
  const bool valid_scheme =
      scheme_end != std::string_view::npos && scheme_end > 0 &&
      std::isalpha(static_cast<unsigned char>(url[0])) &&
      std::all_of(url.begin(), url.begin() + static_cast<std::ptrdiff_t>(scheme_end), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
      });
  if (!valid_scheme) {
    // Not an absolute URL ("inline", "/path?x", garbage): a query or fragment still goes.
    return std::string(url.substr(0, std::min(url.find_first_of("?#"), url.size())));
  }
  std::string_view rest = url.substr(scheme_end + 3);
  const auto authority_end = std::min(rest.find_first_of("/?#"), rest.size());
  std::string_view authority = rest.substr(0, authority_end);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  std::string_view path = rest.substr(authority_end);
  path = path.substr(0, std::min(path.find_first_of("?#"), path.size()));
  std::string out;
  out.reserve(scheme_end + 3 + authority.size() + path.size());
  out.append(url.substr(0, scheme_end + 3)).append(authority).append(path);
  return out;
}

}  // namespace vantage::collector::ingest
