#include "common/ids.hpp"

#include <cstdio>

namespace vantage {
namespace {

std::string hex(std::uint64_t v, int digits) {
  static const char* kHex = "0123456789abcdef";
  std::string out(static_cast<std::size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kHex[v & 0xF];
    v >>= 4;
  }
  return out;
}

}  // namespace

IdGenerator::IdGenerator()
    : rng_(std::random_device{}() ^ (std::uint64_t{std::random_device{}()} << 32)) {}
IdGenerator::IdGenerator(std::uint64_t seed) : rng_(seed) {}

std::string IdGenerator::uuid_v7(UtcTime now) {
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  const std::uint64_t r1 = rng_();
  const std::uint64_t r2 = rng_();
  const std::uint64_t hi = (ms & 0xFFFFFFFFFFFFULL) << 16 | 0x7000 | (r1 & 0x0FFF);
  const std::uint64_t lo = (r2 & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
  const std::string h = hex(hi, 16), l = hex(lo, 16);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + l.substr(0, 4) +
         "-" + l.substr(4);
}

std::string IdGenerator::trace_id() {
  std::uint64_t a = rng_(), b = rng_();
  if (a == 0 && b == 0) b = 1;
  return hex(a, 16) + hex(b, 16);
}

std::string IdGenerator::span_id() {
  std::uint64_t a = rng_();
  if (a == 0) a = 1;
  return hex(a, 16);
}

std::uint64_t IdGenerator::below(std::uint64_t n) {
  if (n <= 1) return 0;
  return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng_);
}

double IdGenerator::unit() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

std::string make_traceparent(const std::string& trace_id, const std::string& span_id) {
  return "00-" + trace_id + "-" + span_id + "-01";
}

}  // namespace vantage
