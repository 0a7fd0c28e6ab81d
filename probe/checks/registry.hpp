// Check kinds by name. Adding a kind: a folder under probe/checks/ and one line in registry.cpp.
#pragma once

#include <string>
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

// The effective definition of a check, for reloads (CheckCommon::fingerprint): `common`'s
// kind, interval, timeout, retries and backoff (defaults applied) and the canonical JSON of its
// `checks[]` entry (mappings with sorted keys, scalars as written, quoting kept). Two entries
// that differ only in key order, comments or layout give the same fingerprint. Files a check
// reads (token files, journey scripts) are not part of it.
std::string fingerprint(const CheckCommon& common, const ConfigNode& node);

}  // namespace vantage::probe::checks
