// The browser agent (agent/beacon.js), embedded at build time and served at GET /beacon.js.
#pragma once

#include <string_view>

namespace vantage::collector::agent {
extern const std::string_view kBeaconJs;
}
