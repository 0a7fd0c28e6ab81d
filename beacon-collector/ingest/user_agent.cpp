#include "beacon-collector/ingest/user_agent.hpp"

#include <array>
#include <charconv>
#include <utility>

namespace vantage::collector::ingest {
namespace {

int major_after(std::string_view ua, std::size_t pos) {
  int major = 0;
  const char* end = ua.data() + ua.size();
  const char* p = ua.data() + pos;
  auto [ptr, ec] = std::from_chars(p, end, major);
  return ec == std::errc() && ptr != p ? major : 0;
}

}  // namespace

BrowserFamily reduce_user_agent(std::string_view ua) {
  if (ua.empty()) return {};
  // Order matters: Edge and Opera also say "Chrome/", Chrome also says "Safari/".
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 10> kTokens{{
      {"Edg/", "Edge"},
      {"EdgiOS/", "Edge"},
      {"OPR/", "Opera"},
      {"SamsungBrowser/", "Samsung Internet"},
      {"HeadlessChrome/", "HeadlessChrome"},
      {"CriOS/", "Chrome"},
      {"Chrome/", "Chrome"},
      {"FxiOS/", "Firefox"},
      {"Firefox/", "Firefox"},
      {"curl/", "curl"},
  }};
  for (const auto& [token, family] : kTokens) {
    const auto pos = ua.find(token);
    if (pos != std::string_view::npos) {
      return {std::string(family), major_after(ua, pos + token.size())};
    }
  }
  // Safari reports its version in "Version/17.4 … Safari/605.1.15".
  if (ua.find("Safari/") != std::string_view::npos) {
    const auto v = ua.find("Version/");
    return {"Safari", v == std::string_view::npos ? 0 : major_after(ua, v + 8)};
  }
  return {"Other", 0};
}

}  // namespace vantage::collector::ingest
