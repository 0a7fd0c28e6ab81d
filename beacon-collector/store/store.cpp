#include "beacon-collector/store/store.hpp"

#include <algorithm>

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

bool Writer::submit(Upload&& upload) {
  const std::size_t n = records_of(upload);
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    const std::size_t depth = depth_.load(std::memory_order_relaxed);
    // An upload larger than the whole queue still goes in when the queue is empty.
    if (depth > 0 && depth + n > capacity_) return false;
    // Wake the writer only when it sleeps on an empty queue or a batch just filled up: a wake-up
    // per upload would cost a context switch per request on a busy core.
    wake = queue_.empty() || (depth < batch_records_ && depth + n >= batch_records_);
    queue_.push_back(std::move(upload));
    depth_.store(depth + n, std::memory_order_relaxed);
  }
  if (wake) wake_.notify_one();
  return true;
}

void Writer::stop(std::chrono::milliseconds give_up_after) {
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

}  // namespace vantage::collector::store
