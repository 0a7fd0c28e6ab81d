// Identifiers: result ids (UUIDv7, RFC 9562 §5.7: time-ordered, so stores index them well) and
// W3C Trace Context ids (https://www.w3.org/TR/trace-context/#traceparent-header).
// The random source is injected so tests are deterministic.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "common/time.hpp"

namespace vantage {

class IdGenerator {
 public:
  // Seeded from std::random_device.
  IdGenerator();
  explicit IdGenerator(std::uint64_t seed);

  // "01890a5d-ac96-7000-8000-0123456789ab" for the given UTC time.
  std::string uuid_v7(UtcTime now);
  // 32 lower-case hex digits, never all zero.
  std::string trace_id();
  // 16 lower-case hex digits, never all zero.
  std::string span_id();
  // Uniform in [0, n).
  std::uint64_t below(std::uint64_t n);
  // Uniform in [0, 1).
  double unit();

 private:
  std::mt19937_64 rng_;
};

// "00-<trace-id>-<span-id>-01" (version 00, sampled).
std::string make_traceparent(const std::string& trace_id, const std::string& span_id);

}  // namespace vantage
