// Where results go. publish() is called on the probe's event loop and must never block it:
// sinks hand slow work (disk, network, a full pipe) to their own thread or drop and count.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/observation.hpp"

namespace vantage::probe::sinks {

// How a result was produced, for sinks that aggregate (metrics).
struct PublishInfo {
  bool multi_target = false;  // the run produced several results (every address / resolver)
  std::chrono::nanoseconds interval{0};  // the check's interval (0 = unknown)
};

class Sink {
 public:
  virtual ~Sink() = default;
  virtual std::string name() const = 0;
  virtual void publish(const CheckResult& result, const PublishInfo& info) = 0;
  // Another record kind (`route_event`, `bgp_alert`): `line` is its NDJSON line without the
  // newline. Sinks that forward lines forward it; the default ignores it.
  virtual void publish_record(std::string_view /*kind*/, const std::string& /*line*/) {}
  // Flushes what can be flushed within `budget` at shutdown (spool to disk, buffered lines).
  virtual boost::asio::awaitable<void> close(std::chrono::milliseconds budget) = 0;
};

class Fanout {
 public:
  void add(std::shared_ptr<Sink> sink) { sinks_.push_back(std::move(sink)); }
  void publish(const CheckResult& result, const PublishInfo& info) {
    for (auto& s : sinks_) s->publish(result, info);
  }
  void publish_record(std::string_view kind, const std::string& line) {
    for (auto& s : sinks_) s->publish_record(kind, line);
  }
  boost::asio::awaitable<void> close(std::chrono::milliseconds budget) {
    for (auto& s : sinks_) co_await s->close(budget);
  }
  const std::vector<std::shared_ptr<Sink>>& sinks() const noexcept { return sinks_; }

 private:
  std::vector<std::shared_ptr<Sink>> sinks_;
};

}  // namespace vantage::probe::sinks
