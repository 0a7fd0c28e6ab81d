// Ships results to vantage-collector: batched NDJSON `POST <url>` with `Authorization: Bearer`,
// through the on-disk Spool (every result is spooled before it is sent, so a restart or a
// collector outage loses nothing), with exponential backoff and full jitter between failed
// attempts, honouring Retry-After on 429/503. Each result carries its UUIDv7 id, so the
// collector drops duplicates when a batch is re-sent after a lost acknowledgement.
//
// Runs on its own thread (own io_context and CurlMulti): disk and network never touch the
// probe's event loop. publish() only copies a line into a bounded in-memory queue.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "probe/config.hpp"
#include "probe/sinks/sink.hpp"

namespace vantage::probe::sinks {

class CollectorSink final : public Sink {
 public:
  // Opens the spool (throws std::system_error on I/O errors) and starts the sender thread.
  explicit CollectorSink(CollectorConfig config);
  ~CollectorSink() override;

  std::string name() const override { return "collector"; }
  void publish(const CheckResult& result, const PublishInfo& info) override;
  void publish_record(std::string_view kind, const std::string& line) override;
  // Writes everything queued to the spool, syncs it, and keeps sending for at most `budget`.
  boost::asio::awaitable<void> close(std::chrono::milliseconds budget) override;

  struct Stats {
    std::atomic<std::uint64_t> uploaded{0};  // results acknowledged by the collector
    std::atomic<std::uint64_t> upload_requests{0};
    std::atomic<std::uint64_t> upload_errors{0};  // failed requests (network, 5xx, 429, auth)
    std::atomic<std::uint64_t> spool_bytes{0};
    std::atomic<std::uint64_t> spool_results{0};  // spooled, not yet acknowledged
    std::atomic<std::uint64_t> dropped_spool_full{0};
    std::atomic<std::uint64_t> dropped_queue_full{0};
    std::atomic<std::uint64_t> rejected{0};  // refused by the collector as malformed (kept)
  };
  const Stats& stats() const noexcept { return *stats_; }

 private:
  struct Worker;
  void enqueue(std::string line);
  CollectorConfig config_;
  std::shared_ptr<Stats> stats_;
  std::unique_ptr<Worker> worker_;
  std::thread thread_;
};

}  // namespace vantage::probe::sinks
