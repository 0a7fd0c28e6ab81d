#include "probe/check.hpp"

#include <algorithm>

namespace vantage::probe {

std::chrono::milliseconds RunContext::remaining() const {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return std::max(left, std::chrono::milliseconds(1));
}

}  // namespace vantage::probe
