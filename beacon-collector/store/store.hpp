// Durable storage of what the collector ingests (DESIGN §5, §9).
//
// Store is the backend interface: SQLite (WAL) is the embedded default (sqlite_store.hpp); a
// ClickHouse backend implements the same write(). Writer sits in front of it: a bounded queue
// that ingest threads submit uploads to, and one thread that group-commits them (one
// transaction per batch) and only then reports each upload as committed. Browser uploads go
// through the segment log first (segment_log.hpp, submit_durable()): durable on disk before
// their 204, then queued for the store like the rest.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "beacon-collector/store/record.hpp"
#include "beacon-collector/store/segment_log.hpp"

namespace vantage::collector::store {

struct Batch {
  std::vector<const BrowserRecord*> reports;
  // Probe results; each also refreshes vantage_points.last_seen_ns of its probe.
  std::vector<const ResultRecord*> results;
  // Heartbeats: a `heartbeats` row each and an upsert of the probe's `vantage_points` row.
  std::vector<const HeartbeatRecord*> heartbeats;
  // The highest segment log sequence number among the batch's uploads (0: none came through
  // the log). The store keeps it in the same transaction (log_checkpoint()).
  std::uint64_t log_seq = 0;
};

struct WriteOutcome {
  std::error_code error;  // set: nothing of the batch was written (the transaction rolled back)
  // For each of batch.results, in order: true when new, false when its id was already stored.
  std::vector<bool> result_inserted;
};

class Store {
 public:
  virtual ~Store() = default;
  // Writes the whole batch atomically and durably (fsync before returning success).
  virtual WriteOutcome write(const Batch& batch) = 0;
  virtual std::string describe() const = 0;  // for logs: "sqlite:/var/lib/vantage/collector.db"
  // The highest Batch::log_seq committed so far (0: none): frames of the segment log at or
  // below it are stored. A store that does not keep it (0 always) gets the log replayed whole
  // at each start.
  virtual std::uint64_t log_checkpoint() { return 0; }
};

// Work the Writer does on its own thread between commits (data retention:
// store/retention.hpp). run() gets the records committed since its last call and the queue's
// depth (records waiting, updated by the ingest threads while it runs); it must do a bounded
// amount of work (short transactions, checking the queue between them) and return true when it
// has more to do, so that the Writer calls it again as soon as no upload is waiting (else
// after the next commit or, when idle, within a second).
class Housekeeping {
 public:
  virtual ~Housekeeping() = default;
  virtual bool run(std::size_t committed_records,
                   const std::atomic<std::size_t>& queued_records) = 0;
};

// What happened to one submitted upload, reported once its batch committed (or failed for good).
struct UploadOutcome {
  bool committed = false;
  int inserted = 0;    // probe results newly stored
  int duplicates = 0;  // probe results whose id was already stored (dropped)
  std::string error;   // when !committed
};

struct Upload {
  std::vector<BrowserRecord> reports;
  std::vector<ResultRecord> results;
  std::vector<HeartbeatRecord> heartbeats;
  // Called on the writer thread after the commit; empty for browser uploads.
  std::function<void(const UploadOutcome&)> done;
  std::uint64_t log_seq = 0;  // its frame in the segment log (0: not logged)
};

class Writer {
 public:
  // `capacity_records`: most records waiting (reports + results); `batch_records`: most records
  // per transaction. Starts the writer thread.
  // `commit_interval`: after the first record arrives, the writer waits this long (or until a
  // full batch is queued) before writing, so that one transaction and one fsync carry many
  // uploads. Probe uploads wait at most about this plus the commit for their answer.
  // `housekeeping` (optional, outlives the Writer): run between commits, never while stopping.
  Writer(Store& store, std::size_t capacity_records, std::size_t batch_records,
         std::chrono::microseconds commit_interval = std::chrono::milliseconds(5),
         Housekeeping* housekeeping = nullptr);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Queues the upload; false (nothing queued, `done` not called) when it would overflow the
  // queue or the writer is stopping. Thread-safe.
  bool submit(Upload&& upload);
  // Browser uploads (reports only, no `done`): with a log attached, appends the upload to it
  // and calls `durable` on the log's thread once its frame is synced (no error) or failed to be
  // written (the error: the upload is dropped and the client must retry); a durable upload is
  // then queued for the store (over capacity if need be: it is on disk already). Without a
  // log: submit(), then `durable` at once. False (nothing queued, `durable` not called) when
  // the queue plus what waits for the log is full or the writer is stopping. Thread-safe.
  bool submit_durable(Upload&& upload, std::function<void(std::error_code)> durable);
  // Before the first submit: browser uploads go through `log` (not owned, started, outlives
  // the Writer), which learns of each commit (SegmentLog::committed) and is stopped by stop().
  void attach_log(SegmentLog* log) noexcept { log_ = log; }
  // Stops the attached log (its frames written and queued), then stops taking uploads, commits
  // everything queued, joins the thread. A batch that keeps
  // failing is retried until `give_up_after` has passed since stop() was called, then its
  // uploads are reported as not committed.
  void stop(std::chrono::milliseconds give_up_after = std::chrono::milliseconds(5000));

  std::size_t depth() const noexcept { return depth_.load(std::memory_order_relaxed); }
  std::size_t capacity() const noexcept { return capacity_; }
  std::uint64_t commits() const noexcept { return commits_.load(std::memory_order_relaxed); }
  std::uint64_t committed_records() const noexcept {
    return committed_records_.load(std::memory_order_relaxed);
  }
  std::uint64_t write_errors() const noexcept {
    return write_errors_.load(std::memory_order_relaxed);
  }
  std::uint64_t duplicates() const noexcept { return duplicates_.load(std::memory_order_relaxed); }
  // Records of browser uploads waiting for the log's sync.
  std::size_t logging() const noexcept { return logging_.load(std::memory_order_relaxed); }
  double commit_seconds_total() const noexcept;

 private:
  void run();
  bool push(Upload&& upload, bool over_capacity);

  Store& store_;
  SegmentLog* log_ = nullptr;
  std::atomic<std::size_t> logging_{0};
  const std::size_t capacity_;
  const std::size_t batch_records_;
  const std::chrono::microseconds commit_interval_;
  Housekeeping* const housekeeping_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Upload> queue_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point give_up_at_{};
  std::atomic<std::size_t> depth_{0};
  std::atomic<std::uint64_t> commits_{0}, committed_records_{0}, write_errors_{0}, duplicates_{0};
  std::atomic<std::uint64_t> commit_nanos_{0};
  std::thread thread_;
};

// Start-up, before the Writer takes uploads: stores every frame of `log` above
// store.log_checkpoint() (transactions of at most `batch_records` records), then start()s the
// log. A frame that does not decode is logged and skipped. Throws std::system_error when a
// transaction fails (the store cannot take what was acknowledged: do not start).
ReplayStats recover_log(SegmentLog& log, Store& store, std::size_t batch_records);

}  // namespace vantage::collector::store
