// Runs checks on time (after Cloudprober's scheduler): per-check interval and timeout, first runs
// spread uniformly over the interval (jitter) so a probe with many checks does not burst,
// bounded concurrency, a per-attempt deadline enforced here (the check's own deadline plus a
// backstop), visible retries (a run that passes only after a retry is `flaky`), and a two-stage
// shutdown: stop starting runs, let in-flight runs finish for a grace period, then cancel them.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "common/observation.hpp"
#include "probe/check.hpp"
#include "probe/sinks/sink.hpp"

namespace vantage::probe {

// A counting semaphore for coroutines on one io_context.
class AsyncSemaphore {
 public:
  AsyncSemaphore(boost::asio::io_context& io, int permits);
  // Waits for a permit; returns false if cancel_waiters() was called while waiting.
  boost::asio::awaitable<bool> acquire();
  void release();
  void cancel_waiters();
  int available() const noexcept { return available_; }
  std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  struct Waiter;
  boost::asio::io_context& io_;
  int available_;
  std::deque<std::shared_ptr<Waiter>> waiters_;
};

struct SchedulerOptions {
  int max_concurrency = 256;
  std::chrono::nanoseconds shutdown_grace{std::chrono::seconds(5)};
  bool once = false;  // run every check once, immediately, then finish
};

struct SchedulerStats {
  std::uint64_t runs = 0;     // attempts started
  std::uint64_t results = 0;  // results published
  std::uint64_t failed_results = 0;
  std::uint64_t skipped_runs = 0;       // scheduled runs missed because the previous one overran
  std::uint64_t backstop_timeouts = 0;  // checks that overran their deadline (a bug or a hang)
  int in_flight = 0;
};

class Scheduler {
 public:
  Scheduler(Services& services, std::vector<CheckPtr>& checks, Vantage vantage,
            sinks::Fanout& sinks, SchedulerOptions options);

  // Runs until stop() (or, with options.once, until every check ran once).
  boost::asio::awaitable<void> run();
  // Begins the graceful shutdown. Safe to call from any handler on the io_context.
  void stop();

  const SchedulerStats& stats() const noexcept { return stats_; }

  // The first-run offset for a check: uniform in [0, interval) (0 with `once`).
  static std::chrono::nanoseconds first_offset(std::chrono::nanoseconds interval, IdGenerator& ids,
                                               bool once);
  // The next start time after `previous` that is not in the past; `skipped` counts missed ones.
  static SteadyTime next_start(SteadyTime previous, std::chrono::nanoseconds interval,
                               SteadyTime now, std::uint64_t& skipped);

 private:
  // Per check loop: the current attempt's backstop deadline, checked by the watchdog.
  struct LoopState {
    SteadyTime backstop = SteadyTime::max();
    bool overran = false;
  };

  boost::asio::awaitable<void> check_loop(std::size_t index);
  boost::asio::awaitable<std::vector<CheckResult>> run_attempt(Check& check, std::size_t index);
  boost::asio::awaitable<std::vector<CheckResult>> run_with_retries(Check& check,
                                                                    std::size_t index);
  boost::asio::awaitable<void> watchdog();
  void publish(Check& check, std::vector<CheckResult>& results);

  Services& services_;
  std::vector<CheckPtr>& checks_;
  Vantage vantage_;
  sinks::Fanout& sinks_;
  SchedulerOptions options_;
  SchedulerStats stats_;
  AsyncSemaphore slots_;
  bool stopping_ = false;
  int loops_running_ = 0;
  std::vector<std::unique_ptr<boost::asio::steady_timer>> sleepers_;
  std::vector<std::unique_ptr<boost::asio::cancellation_signal>> cancel_;
  std::vector<LoopState> loops_;
  boost::asio::steady_timer watchdog_timer_;
  boost::asio::steady_timer all_done_;
  boost::asio::steady_timer grace_;
};

}  // namespace vantage::probe
