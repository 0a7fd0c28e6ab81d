// Runs checks on time (after Cloudprober's scheduler): per-check interval and timeout, first runs
// spread uniformly over the interval (jitter) so a probe with many checks does not burst,
// bounded concurrency, a per-attempt deadline enforced here (the check's own deadline plus a
// backstop), visible retries (a run that passes only after a retry is `flaky`), and a two-stage
// shutdown: stop starting runs, let in-flight runs finish for a grace period, then cancel them.
//
// Loops are keyed by check id, so a configuration reload can add and remove checks while the
// others keep their schedule and their in-flight runs (add(), remove()).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
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
  // Called on the event loop once a removed check's loop has ended (its in-flight run, if any,
  // cancelled): the scheduler no longer uses the check after that.
  using StoppedFunction = std::function<void(std::shared_ptr<Check>)>;

  // An empty scheduler: add() the checks. Times are read from services.clock.
  Scheduler(Services& services, Vantage vantage, sinks::Fanout& sinks, SchedulerOptions options);
  // A scheduler running `checks` (not owned: they must outlive the scheduler).
  Scheduler(Services& services, std::vector<CheckPtr>& checks, Vantage vantage,
            sinks::Fanout& sinks, SchedulerOptions options);
  ~Scheduler();

  // Runs until stop() (or, with options.once, until every check ran once). Checks may be added
  // and removed while it runs; with no checks at all it waits for stop().
  boost::asio::awaitable<void> run();
  // Begins the graceful shutdown. Safe to call from any handler on the io_context.
  void stop();

  // Schedules `check` (its start() must have been called by the owner). Before run(), its loop
  // starts with run(); while running, at once, with the usual first-run offset (jitter). Returns
  // false (and does nothing) once stop() was called. Throws std::invalid_argument when a check
  // with the same id is scheduled (or still being removed: see retiring()).
  bool add(std::shared_ptr<Check> check);
  // Stops the loop of check `id`: its wait for the next run ends; an in-flight run is cancelled
  // (no result is published for it). `stopped` is called on the event loop when the loop has
  // ended (at once, posted, if run() has not started it). Returns false if `id` is not
  // scheduled. The other checks' loops are not touched.
  bool remove(const std::string& id, StoppedFunction stopped = {});
  // True while `id`'s check is scheduled (not removed).
  bool contains(const std::string& id) const { return loops_.count(id) != 0; }
  // True while a removed loop for `id` has not ended yet.
  bool retiring(const std::string& id) const;
  // Ids of the scheduled checks, sorted.
  std::vector<std::string> check_ids() const;
  std::size_t size() const noexcept { return loops_.size(); }
  bool stopping() const noexcept { return stopping_; }

  const SchedulerStats& stats() const noexcept { return stats_; }

  // The first-run offset for a check: uniform in [0, interval) (0 with `once`).
  static std::chrono::nanoseconds first_offset(std::chrono::nanoseconds interval, IdGenerator& ids,
                                               bool once);
  // The next start time after `previous` that is not in the past; `skipped` counts missed ones.
  static SteadyTime next_start(SteadyTime previous, std::chrono::nanoseconds interval,
                               SteadyTime now, std::uint64_t& skipped);

 private:
  // One check's loop: its timer, its cancellation, the current attempt's backstop deadline
  // (checked by the watchdog).
  struct Loop;

  void spawn(const std::shared_ptr<Loop>& loop);
  boost::asio::awaitable<void> check_loop(std::shared_ptr<Loop> loop);
  boost::asio::awaitable<std::vector<CheckResult>> run_attempt(Loop& loop);
  boost::asio::awaitable<std::vector<CheckResult>> run_with_retries(Loop& loop);
  boost::asio::awaitable<void> watchdog();
  void publish(Check& check, std::vector<CheckResult>& results);
  SteadyTime now() const;

  Services& services_;
  Vantage vantage_;
  sinks::Fanout& sinks_;
  SchedulerOptions options_;
  SchedulerStats stats_;
  AsyncSemaphore slots_;
  bool running_ = false;
  bool finished_ = false;
  bool stopping_ = false;
  int loops_running_ = 0;
  std::map<std::string, std::shared_ptr<Loop>> loops_;  // scheduled, by check id
  std::vector<std::shared_ptr<Loop>> retiring_;         // removed, loop not ended yet
  boost::asio::steady_timer watchdog_timer_;
  boost::asio::steady_timer all_done_;
  boost::asio::steady_timer grace_;
};

}  // namespace vantage::probe
