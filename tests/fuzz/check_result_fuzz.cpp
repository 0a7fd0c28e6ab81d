// libFuzzer target: the check_result reader (common/observation.cpp) must reject anything it
// cannot read with a reason, never crash, and round-trip what it accepts.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/observation.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string error;
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const auto r = vantage::parse_check_result_line(line, error);
  if (!r) {
    if (error.empty()) __builtin_trap();
    return 0;
  }
  const auto again = vantage::parse_check_result_line(vantage::to_ndjson_line(*r), error);
  if (!again || !(*again == *r)) __builtin_trap();
  return 0;
}
