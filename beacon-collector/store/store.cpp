#include "beacon-collector/store/store.hpp"

#include <algorithm>

#include "beacon-collector/store/record_codec.hpp"
#include "common/log.hpp"

namespace vantage::collector::store {
namespace {
std::size_t records_of(const Upload& u) {
  return u.reports.size() + u.results.size() + u.heartbeats.size();
}
}  // namespace

Writer::Writer(Store& store, std::size_t capacity_records, std::size_t batch_records,
               std::chrono::microseconds commit_interval, Housekeeping* housekeeping)
    : store_(store),
      capacity_(std::max<std::size_t>(1, capacity_records)),
      batch_records_(std::max<std::size_t>(1, batch_records)),
      commit_interval_(commit_interval),
      housekeeping_(housekeeping),
      thread_([this] { run(); }) {}

Writer::~Writer() { stop(); }

bool Writer::submit(Upload&& upload) { return push(std::move(upload), false); }

bool Writer::push(Upload&& upload, bool over_capacity) {
  const std::size_t n = records_of(upload);
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    const std::size_t depth = depth_.load(std::memory_order_relaxed);
    // An upload larger than the whole queue still goes in when the queue is empty.
    if (!over_capacity && depth > 0 && depth + n > capacity_) return false;
    // Wake the writer only when it sleeps on an empty queue or a batch just filled up: a wake-up
    // per upload would cost a context switch per request on a busy core.
    wake = queue_.empty() || (depth < batch_records_ && depth + n >= batch_records_);
    queue_.push_back(std::move(upload));
    depth_.store(depth + n, std::memory_order_relaxed);
  }
  if (wake) wake_.notify_one();
  return true;
}

bool Writer::submit_durable(Upload&& upload, std::function<void(std::error_code)> durable) {
  if (!log_) {
    if (!submit(std::move(upload))) return false;
    durable({});
    return true;
  }
  const std::size_t n = records_of(upload);
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
  }
  const std::size_t waiting = depth_.load(std::memory_order_relaxed) + logging_.load();
  if (waiting > 0 && waiting + n > capacity_) return false;
  std::string payload;
  payload.reserve(256 + upload.reports.size() * 1024);
  encode_reports(upload.reports, payload);
  logging_.fetch_add(n);
  // std::function needs a copyable callable: the upload rides in a shared_ptr.
  auto held = std::make_shared<Upload>(std::move(upload));
  const std::uint64_t seq = log_->append(
      payload, [this, held, n, durable = std::move(durable)](std::uint64_t s, std::error_code ec) {
        if (!ec) {
          held->log_seq = s;
          // On disk already: queued even over capacity (the bound is checked above). A
          // stopping writer leaves it to the replay at the next start.
          push(std::move(*held), true);
        }
        logging_.fetch_sub(n);
        durable(ec);
      });
  if (seq == 0) {
    logging_.fetch_sub(n);
    return false;
  }
  return true;
}

void Writer::stop(std::chrono::milliseconds give_up_after) {
  if (log_) log_->stop();  // its last frames are queued here before the writer drains
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return;
    if (!stopping_) {
      stopping_ = true;
      give_up_at_ = std::chrono::steady_clock::now() + give_up_after;
    }
  }
  wake_.notify_one();
  thread_.join();
}

double Writer::commit_seconds_total() const noexcept {
  return static_cast<double>(commit_nanos_.load(std::memory_order_relaxed)) / 1e9;
}

void Writer::run() {
  std::vector<Upload> taken;
  bool housekeeping_more = false;  // the housekeeping task has work left
  for (;;) {
    taken.clear();
    bool stopping = false;
    {
      std::unique_lock lock(mutex_);
      if (housekeeping_) {
        // Idle: housekeeping at least every second, back to back while it has work left, but a
        // waiting upload always goes first.
        wake_.wait_for(lock, housekeeping_more ? std::chrono::seconds(0) : std::chrono::seconds(1),
                       [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty() && !stopping_) {
          lock.unlock();
          housekeeping_more = housekeeping_->run(0, depth_);
          continue;
        }
      } else {
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      }
      if (queue_.empty()) return;  // stopping and drained
      stopping = stopping_;
      // Group commit: let more uploads join this transaction.
      wake_.wait_for(lock, commit_interval_, [&] {
        return stopping_ || depth_.load(std::memory_order_relaxed) >= batch_records_;
      });
      std::size_t n = 0;
      while (!queue_.empty() &&
             (taken.empty() || n + records_of(queue_.front()) <= batch_records_)) {
        n += records_of(queue_.front());
        taken.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    Batch batch;
    for (const auto& u : taken) {
      for (const auto& r : u.reports) batch.reports.push_back(&r);
      for (const auto& r : u.results) batch.results.push_back(&r);
      for (const auto& h : u.heartbeats) batch.heartbeats.push_back(&h);
      batch.log_seq = std::max(batch.log_seq, u.log_seq);
    }
    const std::size_t n = batch.reports.size() + batch.results.size() + batch.heartbeats.size();
    // Retry a failing batch (SQLITE_BUSY from another writer, a full disk) with back-off: the
    // uploads stay unacknowledged meanwhile, and the queue filling up turns into 503s upstream.
    WriteOutcome outcome;
    auto backoff = std::chrono::milliseconds(10);
    for (;;) {
      const auto t0 = std::chrono::steady_clock::now();
      outcome = store_.write(batch);
      if (!outcome.error) {
        commit_nanos_.fetch_add(
            static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::steady_clock::now() - t0)
                                           .count()),
            std::memory_order_relaxed);
        break;
      }
      write_errors_.fetch_add(1, std::memory_order_relaxed);
      log::warn("store.write_failed", {{"store", store_.describe()},
                                       {"error", outcome.error.message()},
                                       {"records", static_cast<std::int64_t>(n)}});
      {
        std::unique_lock lock(mutex_);
        if (stopping_ && std::chrono::steady_clock::now() >= give_up_at_) break;
        wake_.wait_for(lock, backoff, [&] { return false; });
      }
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
    }
    depth_.fetch_sub(n, std::memory_order_relaxed);
    if (!outcome.error) {
      commits_.fetch_add(1, std::memory_order_relaxed);
      committed_records_.fetch_add(n, std::memory_order_relaxed);
      if (log_ && batch.log_seq) log_->committed(batch.log_seq);
    } else {
      log::error("store.batch_lost", {{"store", store_.describe()},
                                      {"error", outcome.error.message()},
                                      {"records", static_cast<std::int64_t>(n)}});
    }
    std::size_t result_index = 0;
    for (auto& u : taken) {
      UploadOutcome o;
      o.committed = !outcome.error;
      if (o.committed) {
        for (std::size_t i = 0; i < u.results.size(); ++i) {
          (outcome.result_inserted[result_index + i] ? o.inserted : o.duplicates)++;
        }
        duplicates_.fetch_add(static_cast<std::uint64_t>(o.duplicates), std::memory_order_relaxed);
      } else {
        o.error = outcome.error.message();
      }
      result_index += u.results.size();
      if (u.done) u.done(o);
    }
    if (housekeeping_ && !stopping && !outcome.error) {
      housekeeping_more = housekeeping_->run(n, depth_);
    }
  }
}

ReplayStats recover_log(SegmentLog& log, Store& store, std::size_t batch_records) {
  const std::uint64_t checkpoint = store.log_checkpoint();
  std::vector<BrowserRecord> pending;
  std::uint64_t pending_seq = 0, undecodable = 0;
  auto flush = [&] {
    if (pending_seq == 0) return;
    Batch batch;
    for (const auto& r : pending) batch.reports.push_back(&r);
    batch.log_seq = pending_seq;
    if (auto outcome = store.write(batch); outcome.error) {
      throw std::system_error(outcome.error, "segment log \"" + log.dir() +
                                                 "\": cannot store the replayed reports in " +
                                                 store.describe());
    }
    pending.clear();
    pending_seq = 0;
  };
  std::vector<BrowserRecord> records;
  const ReplayStats stats = log.replay(checkpoint, [&](std::uint64_t seq, std::string_view bytes) {
    if (!decode_reports(bytes, records)) {
      ++undecodable;
      log::error("store.log_frame_undecodable",
                 {{"dir", log.dir()}, {"seq", static_cast<std::int64_t>(seq)}});
      return;
    }
    for (auto& r : records) pending.push_back(std::move(r));
    pending_seq = seq;
    if (pending.size() >= batch_records) flush();
  });
  flush();
  const std::uint64_t stored = std::max(checkpoint, store.log_checkpoint());
  log::info("store.log_replayed", {{"dir", log.dir()},
                                   {"segments", static_cast<std::int64_t>(stats.segments)},
                                   {"frames", static_cast<std::int64_t>(stats.frames)},
                                   {"replayed", static_cast<std::int64_t>(stats.replayed)},
                                   {"undecodable", static_cast<std::int64_t>(undecodable)},
                                   {"torn_bytes", static_cast<std::int64_t>(stats.torn_bytes)},
                                   {"checkpoint", static_cast<std::int64_t>(stored)}});
  // Frames past the checkpoint that could not be stored (undecodable) are not kept either:
  // start() numbers on above them and drops their segments.
  log.start(std::max(stored, stats.last_seq));
  return stats;
}

}  // namespace vantage::collector::store
