// UTC time and duration helpers. All wall-clock times in Vantage are UTC with nanosecond
// resolution (UtcTime); all intervals on the wire are milliseconds (double) or seconds in metrics.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vantage {

using UtcTime = std::chrono::sys_time<std::chrono::nanoseconds>;
using SteadyTime = std::chrono::steady_clock::time_point;

// Formats as RFC 3339 with nanoseconds and a `Z` suffix: "2026-11-22T10:00:00.123456789Z".
std::string format_rfc3339(UtcTime t);

// Parses RFC 3339 (§5.6 date-time): "2026-11-22T10:00:00Z", fractional seconds of any length up
// to 9 digits, and numeric offsets ("+01:00"), which are converted to UTC. Returns nullopt if the
// text is not a valid date-time, or its year is outside 1678-2261 (what nanoseconds in 64 bits
// hold).
std::optional<UtcTime> parse_rfc3339(std::string_view text);

// UTC nanoseconds since the Unix epoch.
std::int64_t to_unix_nanos(UtcTime t) noexcept;
UtcTime from_unix_nanos(std::int64_t ns) noexcept;

// Parses a duration written as one or more <number><unit> pairs, units ns, us, ms, s, m, h, d
// ("500ms", "10s", "1m30s", "14d", "1.5s"). Returns nullopt for anything else, including a bare
// number, a negative value, or an empty string.
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text);

// Shortest exact spelling, e.g. 90s -> "1m30s", 1500ms -> "1.5s", 0 -> "0s".
std::string format_duration(std::chrono::nanoseconds d);

// Milliseconds as a double (microsecond precision kept), for phase timings.
constexpr double to_ms(std::chrono::nanoseconds d) noexcept {
  return static_cast<double>(d.count()) / 1e6;
}

// The clock every component reads, injected so tests control time.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual UtcTime utc_now() const = 0;
  virtual SteadyTime steady_now() const = 0;
};

// The real clocks (std::chrono::system_clock and steady_clock).
class SystemClock final : public Clock {
 public:
  UtcTime utc_now() const override;
  SteadyTime steady_now() const override;
  static const SystemClock& instance();
};

// A clock set by hand, for tests, benchmarks and replays: starts at `utc_unix_ns` (UTC
// nanoseconds since the Unix epoch); steady_now() is the UTC time elapsed since then, so both
// move together with set() and advance(). Thread-safe: a writer thread may read it while the test
// moves it (set time backwards only if the code under test tolerates a steady clock that does).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t utc_unix_ns = 0) noexcept
      : ns_(utc_unix_ns), start_ns_(utc_unix_ns) {}
  UtcTime utc_now() const override { return from_unix_nanos(ns_.load()); }
  SteadyTime steady_now() const override {
    return SteadyTime(std::chrono::nanoseconds(ns_.load() - start_ns_));
  }
  // The UTC time now, in Unix nanoseconds.
  std::int64_t unix_ns() const noexcept { return ns_.load(); }
  void set(std::int64_t utc_unix_ns) noexcept { ns_.store(utc_unix_ns); }
  void advance(std::chrono::nanoseconds d) noexcept { ns_.fetch_add(d.count()); }

 private:
  std::atomic<std::int64_t> ns_;
  const std::int64_t start_ns_;
};

}  // namespace vantage
