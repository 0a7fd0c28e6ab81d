#include "common/log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/time.hpp"

namespace vantage::log {
namespace {

std::mutex g_mutex;
std::shared_ptr<spdlog::logger> g_logger;
std::string g_component = "vantage";
std::atomic<int> g_level{static_cast<int>(Level::info)};

spdlog::level::level_enum to_spd(Level l) {
  switch (l) {
    case Level::debug:
      return spdlog::level::debug;
    case Level::info:
      return spdlog::level::info;
    case Level::warn:
      return spdlog::level::warn;
    case Level::error:
      return spdlog::level::err;
    case Level::off:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

std::string_view name(Level l) {
  switch (l) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
    case Level::off:
      return "off";
  }
  return "info";
}

std::shared_ptr<spdlog::logger> logger() {
  std::lock_guard lock(g_mutex);
  if (!g_logger) {
    g_logger = std::make_shared<spdlog::logger>("vantage",
                                                std::make_shared<spdlog::sinks::stderr_sink_mt>());
    g_logger->set_pattern("%v");
    g_logger->set_level(to_spd(static_cast<Level>(g_level.load())));
    g_logger->flush_on(spdlog::level::trace);
  }
  return g_logger;
}

}  // namespace

bool parse_level(std::string_view text, Level& out) noexcept {
  for (Level l : {Level::debug, Level::info, Level::warn, Level::error, Level::off}) {
    if (name(l) == text) {
      out = l;
      return true;
    }
  }
  return false;
}

void init(Level level, std::string_view component, const std::string& path) {
  std::shared_ptr<spdlog::sinks::sink> sink;
  if (path.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
  }
  auto l = std::make_shared<spdlog::logger>("vantage", std::move(sink));
  l->set_pattern("%v");
  l->set_level(to_spd(level));
  l->flush_on(spdlog::level::trace);
  std::lock_guard lock(g_mutex);
  g_logger = std::move(l);
  g_component = component;
  g_level = static_cast<int>(level);
}

void set_level(Level level) {
  g_level = static_cast<int>(level);
  logger()->set_level(to_spd(level));
}

bool enabled(Level level) noexcept { return static_cast<int>(level) >= g_level.load(); }

namespace {

void write_line(Level level, std::string_view event, std::initializer_list<Field> fields,
                std::uint64_t suppressed) {
  if (!enabled(level) || level == Level::off) return;
  nlohmann::ordered_json line;
  line["ts"] = format_rfc3339(SystemClock::instance().utc_now());
  line["level"] = name(level);
  {
    std::lock_guard lock(g_mutex);
    line["component"] = g_component;
  }
  line["event"] = event;
  for (const Field& f : fields) {
    std::visit([&](const auto& v) { line[std::string(f.key)] = v; }, f.value);
  }
  if (suppressed) line["suppressed"] = suppressed;
  logger()->log(to_spd(level), line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace

void write(Level level, std::string_view event, std::initializer_list<Field> fields) {
  write_line(level, event, fields, 0);
}

void LogException::operator()(std::exception_ptr e) const {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    write(Level::error, event, {{"error", ex.what()}});
  } catch (...) {
    write(Level::error, event, {{"error", "unknown exception"}});
  }
}

bool RateLimited::write(Level level, std::string_view event, std::initializer_list<Field> fields,
                        std::chrono::steady_clock::time_point now) {
  std::uint64_t suppressed = 0;
  {
    std::lock_guard lock(mutex_);
    if (written_ && now - last_ < interval_) {
      ++suppressed_;
      return false;
    }
    written_ = true;
    last_ = now;
    suppressed = std::exchange(suppressed_, 0);
  }
  write_line(level, event, fields, suppressed);
  return true;
}

bool RateLimited::write(Level level, std::string_view event, std::initializer_list<Field> fields) {
  return write(level, event, fields, SystemClock::instance().steady_now());
}

std::uint64_t RateLimited::suppressed() const {
  std::lock_guard lock(mutex_);
  return suppressed_;
}

}  // namespace vantage::log
