// libFuzzer target: DNS response parsing (probe/checks/dns/dns_message.cpp) must never crash,
// hang or read out of bounds, whatever the bytes.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "probe/checks/dns/dns_message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string error;
  const auto msg = vantage::probe::checks::dns::parse_dns_message(
      std::span<const std::uint8_t>(data, size), error);
  if (msg) {
    for (const auto& rr : msg->answers) {
      if (rr.type.empty()) __builtin_trap();
    }
  } else if (error.empty()) {
    __builtin_trap();  // a failure always says why
  }
  return 0;
}
