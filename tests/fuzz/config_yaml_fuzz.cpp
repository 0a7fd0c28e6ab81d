// libFuzzer target: strict YAML config reading (common/config_node.cpp) turns any input into a
// ConfigError with a position, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config_node.hpp"

namespace {
void walk(const vantage::ConfigNode& n, int depth) {
  if (depth > 32) return;
  if (n.is_map()) {
    for (const auto& [key, child] : n.entries()) walk(child, depth + 1);
  } else if (n.is_sequence()) {
    for (const auto& item : n.items()) walk(item, depth + 1);
  } else if (n.is_scalar()) {
    try {
      (void)n.as_duration(std::chrono::nanoseconds(0), std::chrono::hours(24 * 365));
    } catch (const vantage::ConfigError&) {
    }
    try {
      (void)n.as_bytes(0, ~0ULL);
    } catch (const vantage::ConfigError&) {
    }
    try {
      (void)n.as_int(-1000, 1000);
    } catch (const vantage::ConfigError&) {
    }
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto root = vantage::ConfigNode::load_string(
        std::string(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
    walk(root, 0);
  } catch (const vantage::ConfigError& e) {
    if (std::string(e.what()).rfind("fuzz.yaml", 0) != 0) __builtin_trap();
  }
  return 0;
}
