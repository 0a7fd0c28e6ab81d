#include "probe/sinks/jsonl_sink.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/log.hpp"

namespace vantage::probe::sinks {

JsonLinesSink::JsonLinesSink(const std::string& path, std::size_t max_queued_lines)
    : max_queued_(max_queued_lines) {
  if (path == "-") {
    out_ = stdout;
  } else {
    out_ = std::fopen(path.c_str(), "a");
    if (!out_)
      throw std::runtime_error("cannot open output file " + path + ": " + std::strerror(errno));
    owns_file_ = true;
  }
  thread_ = std::thread([this] { writer_loop(); });
}

JsonLinesSink::~JsonLinesSink() {
  stop_writer(std::chrono::milliseconds(1000));
  if (owns_file_ && out_) std::fclose(out_);
}

void JsonLinesSink::publish(const CheckResult& result, const PublishInfo&) {
  enqueue(to_ndjson_line(result));
}

void JsonLinesSink::publish_record(std::string_view, const std::string& line) { enqueue(line); }

void JsonLinesSink::enqueue(std::string line) {
  line += '\n';
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    if (queue_.size() >= max_queued_) {
      ++dropped_;
      return;
    }
    queue_.push_back(std::move(line));
    // The writer wakes every kFlushInterval by itself; waking it per line would cost a futex call
    // and a context switch per result. Wake it early only when a batch is worth writing.
    wake = queue_.size() == kWakeBatch;
  }
  if (wake) cv_.notify_one();
}

void JsonLinesSink::writer_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait_for(lock, kFlushInterval, [&] { return stopping_ || queue_.size() >= kWakeBatch; });
    if (queue_.empty()) {
      if (stopping_) break;
      continue;
    }
    std::deque<std::string> batch;
    batch.swap(queue_);
    writing_ = true;
    lock.unlock();
    for (const auto& line : batch) {
      if (std::fwrite(line.data(), 1, line.size(), out_) != line.size()) {
        log::warn("output.write_failed", {{"error", std::strerror(errno)}});
        ++dropped_;
      } else {
        ++written_;
      }
    }
    std::fflush(out_);
    lock.lock();
    writing_ = false;
    drained_.notify_all();
  }
  drained_.notify_all();
}

void JsonLinesSink::stop_writer(std::chrono::milliseconds budget) {
  {
    std::unique_lock lock(mutex_);
    if (!thread_.joinable()) return;
    drained_.wait_for(lock, budget, [&] { return queue_.empty() && !writing_; });
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

boost::asio::awaitable<void> JsonLinesSink::close(std::chrono::milliseconds budget) {
  // Waiting here blocks the loop at most `budget`, and only at shutdown when nothing else runs.
  stop_writer(budget);
  co_return;
}

}  // namespace vantage::probe::sinks
