// JSON lines (one CheckResult per line) to stdout or a file, written by a dedicated thread so a
// slow reader can never stall the probe; when its bounded queue is full, lines are dropped and
// counted (vantage_probe_output_dropped_total). Lines are written in batches at least every
// 100 ms (sooner once 256 are waiting), and everything is flushed at shutdown.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "probe/sinks/sink.hpp"

namespace vantage::probe::sinks {

class JsonLinesSink final : public Sink {
 public:
  // `path` "-" = stdout. Throws std::runtime_error if the file cannot be opened (start-up).
  explicit JsonLinesSink(const std::string& path, std::size_t max_queued_lines = 100000);
  ~JsonLinesSink() override;

  std::string name() const override { return "jsonl"; }
  void publish(const CheckResult& result, const PublishInfo& info) override;
  void publish_record(std::string_view kind, const std::string& line) override;
  boost::asio::awaitable<void> close(std::chrono::milliseconds budget) override;

  static constexpr std::chrono::milliseconds kFlushInterval{100};
  static constexpr std::size_t kWakeBatch = 256;

  std::uint64_t dropped() const noexcept { return dropped_.load(); }
  std::uint64_t written() const noexcept { return written_.load(); }

 private:
  void enqueue(std::string line);
  void writer_loop();
  void stop_writer(std::chrono::milliseconds budget);

  std::FILE* out_ = nullptr;
  bool owns_file_ = false;
  std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::condition_variable drained_;
  std::deque<std::string> queue_;
  bool stopping_ = false;
  bool writing_ = false;
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> written_{0};
  std::thread thread_;
};

}  // namespace vantage::probe::sinks
