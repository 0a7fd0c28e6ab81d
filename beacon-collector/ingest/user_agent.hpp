// Reduces a User-Agent header to browser family and major version, the only part the collector
// stores ("Mozilla/5.0 … HeadlessChrome/156.0.0.0 Safari/537.36" -> {"HeadlessChrome", 156}).
#pragma once

#include <string>
#include <string_view>

namespace vantage::collector::ingest {

struct BrowserFamily {
  std::string family;  // "Edge", "Opera", "Samsung Internet", "HeadlessChrome", "Chrome",
                       // "Firefox", "Safari", "curl", "Other"; "" for an empty header
  int major = 0;       // 0 when unknown
};

BrowserFamily reduce_user_agent(std::string_view user_agent);

}  // namespace vantage::collector::ingest
