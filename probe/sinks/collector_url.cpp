#include "probe/sinks/collector_url.hpp"

#include "probe/net/url.hpp"

namespace vantage::probe::sinks {

std::string collector_url_problem(const std::string& url) {
  std::string error;
  const auto parts = net::parse_http_url(url, error);
  if (!parts) return error;
  if (parts->scheme != "http" && parts->scheme != "https") {
    return "unsupported scheme \"" + parts->scheme + "\" (expected http or https)";
  }
  if (parts->host.empty()) return "the URL names no host";
  if (url.find('#') != std::string::npos) return "a collector URL has no fragment (#…)";
  std::string path = parts->path;
  if (const auto q = path.find('?'); q != std::string::npos) path.resize(q);
  constexpr std::string_view kSegment = "/results";
  const bool ends_in_results =
      path.size() >= kSegment.size() &&
      path.compare(path.size() - kSegment.size(), kSegment.size(), kSegment) == 0;
  if (!ends_in_results) {
    return "the path \"" + path +
           "\" is not the collector's results endpoint: expected a path ending in " +
           kDefaultResultsPath + " (e.g. https://collector.example.com" + kDefaultResultsPath +
           "; a reverse proxy's path must end in /results)";
  }
  return "";
}

}  // namespace vantage::probe::sinks
