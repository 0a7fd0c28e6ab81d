// The shape of `collector.url` (docs/configuration.md, "collector"): what --validate can say
// about a collector URL before the first upload. A URL that libcurl accepts but that cannot be
// the collector's results endpoint (no path, a path ending elsewhere) would otherwise pass and
// then spool forever behind 404s.
#pragma once

#include <string>

namespace vantage::probe::sinks {

// The collector's default results path (beacon-collector `paths.results`).
inline constexpr const char* kDefaultResultsPath = "/v1/results";

// Checks that `url` is http:// or https://, names a host, and has a path whose last segment is
// "results" (the collector's `/v1/results`, or a reverse proxy's `/…/results`), with no
// fragment. Returns "" when it is, else a message with a hint ("the path \"/\" is not the
// collector's results endpoint: expected …/v1/results, e.g. https://collector.example.com/v1/
// results"). Does not contact the collector.
std::string collector_url_problem(const std::string& url);

}  // namespace vantage::probe::sinks
