#include "probe/net/url.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>

#include <algorithm>
#include <memory>

namespace vantage::probe::net {
namespace {

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct CurlStringDeleter {
  void operator()(char* s) const { curl_free(s); }
};

std::string get_part(CURLU* u, CURLUPart part, unsigned flags = 0) {
  char* out = nullptr;
  if (curl_url_get(u, part, &out, flags) != CURLUE_OK || !out) return {};
  std::unique_ptr<char, CurlStringDeleter> holder(out);
  return out;
}

}  // namespace

bool is_ip_literal(const std::string& text) noexcept {
  unsigned char buf[16];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

std::optional<UrlParts> parse_http_url(const std::string& url, std::string& error) {
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (!u) {
    error = "out of memory";
    return std::nullopt;
  }
  const CURLUcode rc = curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0);
  if (rc != CURLUE_OK) {
    error = std::string("malformed URL: ") + curl_url_strerror(rc);
    return std::nullopt;
  }
  UrlParts p;
  p.scheme = get_part(u.get(), CURLUPART_SCHEME);
  std::transform(p.scheme.begin(), p.scheme.end(), p.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (p.scheme != "http" && p.scheme != "https") {
    error = "unsupported scheme \"" + p.scheme + "\" (use http or https)";
    return std::nullopt;
  }
  p.host = get_part(u.get(), CURLUPART_HOST);
  if (p.host.empty()) {
    error = "the URL has no host";
    return std::nullopt;
  }
  if (p.host.front() == '[' && p.host.back() == ']') {
    p.host = p.host.substr(1, p.host.size() - 2);
    p.host_is_ipv6 = true;
  }
  p.host_is_ip = is_ip_literal(p.host);
  const std::string port = get_part(u.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  p.port = static_cast<std::uint16_t>(port.empty() ? 0 : std::stoi(port));
  p.path = get_part(u.get(), CURLUPART_PATH);
  if (p.path.empty()) p.path = "/";
  return p;
}

std::optional<std::string> resolve_reference(const std::string& base,
                                             const std::string& reference) {
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, base.c_str(), 0) != CURLUE_OK) return std::nullopt;
  if (curl_url_set(u.get(), CURLUPART_URL, reference.c_str(), 0) != CURLUE_OK) return std::nullopt;
  std::string out = get_part(u.get(), CURLUPART_URL);
  if (out.empty()) return std::nullopt;
  return out;
}

std::string strip_query_and_fragment(const std::string& url) {
  const auto cut = url.find_first_of("?#");
  return cut == std::string::npos ? url : url.substr(0, cut);
}

}  // namespace vantage::probe::net
