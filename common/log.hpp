// Structured logging: one JSON object per line on stderr (or a file), for example
//   {"ts":"2026-11-22T10:00:00.123456789Z","level":"warn","component":"probe",
//    "event":"collector.upload_failed","status":503,"retry_in_ms":2000}
// spdlog does the thread-safe writing and level filtering; this layer only shapes the line.
// Never pass secrets (tokens, ${env:…} values) as fields.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <variant>

namespace vantage::log {

enum class Level { debug, info, warn, error, off };

// Parses "debug" | "info" | "warn" | "error" | "off".
bool parse_level(std::string_view text, Level& out) noexcept;

// One key/value of a log line.
struct Field {
  using Value = std::variant<std::string_view, std::string, std::int64_t, double, bool>;
  std::string_view key;
  Value value;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view{v}) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view{v}) {}
  Field(std::string_view k, std::string&& v) : key(k), value(std::move(v)) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  template <typename I>
  requires std::is_integral_v<I> Field(std::string_view k, I v)
      : key(k), value(static_cast<std::int64_t>(v)) {}
};

// Configures the process-wide logger: minimum level, the `component` field of every line, and
// the destination (empty path = stderr). Safe to call again (replaces the logger).
void init(Level level, std::string_view component, const std::string& path = {});

void set_level(Level level);
bool enabled(Level level) noexcept;

// Writes one line. `event` is a dotted name ("check.failed"); fields are appended in order.
void write(Level level, std::string_view event, std::initializer_list<Field> fields = {});

inline void debug(std::string_view event, std::initializer_list<Field> fields = {}) {
  if (enabled(Level::debug)) write(Level::debug, event, fields);
}
inline void info(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::info, event, fields);
}
inline void warn(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::warn, event, fields);
}
inline void error(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::error, event, fields);
}

// A completion handler for asio::co_spawn in place of asio::detached, which swallows the
// exception that ended the coroutine (asio#1111): logs it as an error line `event` with its
// what(). For coroutines that must not end on an exception, a handler that also restarts them.
struct LogException {
  std::string_view event;
  void operator()(std::exception_ptr e) const;
};

// For an error that can repeat at line rate (accept failing with EMFILE, an unreachable
// collector, a full disk): the first occurrence is written at once; later ones within `interval`
// are only counted, and the first one written after the interval carries `"suppressed": N`, the
// number of lines left out since the last one written. So a flood costs at most one line per
// interval, and the count says how big it was. Thread-safe. Time comes from the caller
// (steady clock, injected: tests pass their own).
class RateLimited {
 public:
  explicit RateLimited(std::chrono::nanoseconds interval = std::chrono::seconds(10))
      : interval_(interval) {}
  // Writes the line now if `interval` has passed since the last line this object wrote (or it
  // wrote none), otherwise counts it. Returns true when written.
  bool write(Level level, std::string_view event, std::initializer_list<Field> fields,
             std::chrono::steady_clock::time_point now);
  bool write(Level level, std::string_view event, std::initializer_list<Field> fields = {});
  // Lines counted and not written since the last line written.
  std::uint64_t suppressed() const;

 private:
  std::chrono::nanoseconds interval_;
  mutable std::mutex mutex_;
  bool written_ = false;
  std::chrono::steady_clock::time_point last_{};
  std::uint64_t suppressed_ = 0;
};

}  // namespace vantage::log
