// Ships results to vantage-collector: batched NDJSON `POST <url>` with `Authorization: Bearer`,
// through the on-disk Spool (every result is spooled before it is sent, so a restart or a
// collector outage loses nothing), with exponential backoff and full jitter between failed
// attempts, honouring Retry-After on 429/503. Each result carries its UUIDv7 id, so the
// collector drops duplicates when a batch is re-sent after a lost acknowledgement.
//
// Runs on its own thread (own io_context and CurlMulti): disk and network never touch the
// probe's event loop. publish() only copies a line into a bounded in-memory queue.
//
// Nothing stops the sender for good but shutdown: a disk error is data (results that cannot be
// spooled are counted as dropped, acknowledgements that cannot be persisted are sent again after
// a restart; see Spool), and an exception escaping the send or sync loop is logged
// (collector.sender_failed), counted (Stats::send_loop_failures, sync_loop_failures) and the loop
// started again after a back-off. A batch the collector refuses with 413 is halved until it
// holds one result; only a single result too large for the collector is set aside in
// rejected/. After kGrowAfterSuccesses deliveries at a lowered batch limit it doubles again, up
// to batch_max_results.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "probe/config.hpp"
#include "probe/sinks/sink.hpp"
#include "probe/sinks/spool.hpp"

namespace vantage::probe::net {
struct HttpExchange;
}

namespace vantage::probe::sinks {

// Why an upload failed, for collector.upload_failed's `error`: the collector's own text (the
// `error` of its JSON answer, e.g. "unknown token"), else libcurl's error, else the start of the
// answer, else "HTTP <status> with an empty body" / "no response". Never empty.
std::string upload_error_text(const net::HttpExchange& exchange);

class CollectorSink final : public Sink {
 public:
  // Deliveries at a batch limit lowered by 413 after which it doubles again.
  static constexpr int kGrowAfterSuccesses = 4;

  // Opens the spool (throws std::system_error when its directory cannot be created or listed)
  // and starts the sender thread. `spool_write` is a test seam for disk faults (see
  // SpoolOptions::write); production code leaves it empty.
  explicit CollectorSink(CollectorConfig config, SpoolWriteFunction spool_write = {});
  ~CollectorSink() override;

  std::string name() const override { return "collector"; }
  void publish(const CheckResult& result, const PublishInfo& info) override;
  void publish_record(std::string_view kind, const std::string& line) override;
  // Writes everything queued to the spool, syncs it, and keeps sending for at most `budget`.
  boost::asio::awaitable<void> close(std::chrono::milliseconds budget) override;

  // A reloaded configuration (SIGHUP): hands the delivery settings to the sender thread without
  // touching the spool or anything queued (thread-safe; the next request uses them): url, token,
  // tls, request_timeout, flush_interval, backoff and batch_max_results. A sender backing off
  // after a failure tries again at once with the new settings. The spool's settings (spool_dir,
  // spool_max_bytes, segment_max_bytes) need a restart: their keys ("collector.spool_dir", …)
  // are returned when they differ, and the old values stay in use.
  std::vector<std::string> reconfigure(const CollectorConfig& config);

  struct Stats {
    std::atomic<std::uint64_t> uploaded{0};  // results acknowledged by the collector
    std::atomic<std::uint64_t> upload_requests{0};
    std::atomic<std::uint64_t> upload_errors{0};  // failed requests (network, 5xx, 429, auth)
    std::atomic<std::uint64_t> spool_bytes{0};
    std::atomic<std::uint64_t> spool_results{0};        // spooled, not yet acknowledged
    std::atomic<std::uint64_t> dropped_spool_full{0};   // evicted: spool over spool_max_bytes
    std::atomic<std::uint64_t> dropped_spool_error{0};  // the disk refused them (full, failing)
    std::atomic<std::uint64_t> dropped_queue_full{0};
    std::atomic<std::uint64_t> rejected{0};  // refused by the collector (kept in rejected/)
    // Spool writes that failed, by file: segments (appends and syncs), the cursor, rejected/.
    std::atomic<std::uint64_t> segment_write_errors{0};
    std::atomic<std::uint64_t> cursor_write_errors{0};
    std::atomic<std::uint64_t> rejected_write_errors{0};
    std::atomic<bool> spool_write_failing{false};  // the last segment or cursor write failed
    // Exceptions that ended the send or the sync loop (each was started again).
    std::atomic<std::uint64_t> send_loop_failures{0};
    std::atomic<std::uint64_t> sync_loop_failures{0};
    std::atomic<std::uint64_t> batch_limit{0};  // results per upload now (halved on 413)
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
