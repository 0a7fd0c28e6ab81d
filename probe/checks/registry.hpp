// Check kinds by name. Adding a kind: a folder under probe/checks/ and one line in registry.cpp.
#pragma once

#include <string_view>
#include <vector>

#include "probe/check.hpp"

namespace vantage {
class ConfigNode;
}

namespace vantage::probe::checks {

// Builds a check from its `checks[]` entry; throws ConfigError for a bad entry.
using CheckFactory = CheckPtr (*)(CheckCommon common, const ConfigNode& node);

// The factory for `kind`, or nullptr.
CheckFactory find_check_kind(std::string_view kind);

// Every registered kind, in registration order.
std::vector<std::string_view> check_kinds();

}  // namespace vantage::probe::checks
