#include "probe/scheduler.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <stdexcept>

#include "common/ids.hpp"
#include "common/log.hpp"

namespace vantage::probe {

namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;
using std::chrono::steady_clock;

// Extra time a check gets past its own deadline before the scheduler gives up on it.
constexpr auto kBackstop = std::chrono::seconds(2);

// --- AsyncSemaphore -------------------------------------------------------------------------

struct AsyncSemaphore::Waiter {
  explicit Waiter(asio::io_context& io) : timer(io, steady_clock::time_point::max()) {}
  asio::steady_timer timer;
  bool granted = false;
};

AsyncSemaphore::AsyncSemaphore(asio::io_context& io, int permits) : io_(io), available_(permits) {}

asio::awaitable<bool> AsyncSemaphore::acquire() {
  if (available_ > 0 && waiters_.empty()) {
    --available_;
    co_return true;
  }
  auto w = std::make_shared<Waiter>(io_);
  waiters_.push_back(w);
  co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (!w->granted) {
    auto it = std::find(waiters_.begin(), waiters_.end(), w);
    if (it != waiters_.end()) waiters_.erase(it);
  }
  co_return w->granted;
}

void AsyncSemaphore::release() {
  if (!waiters_.empty()) {
    auto w = waiters_.front();
    waiters_.pop_front();
    w->granted = true;  // the permit passes straight to the first waiter
    w->timer.cancel();
    return;
  }
  ++available_;
}

void AsyncSemaphore::cancel_waiters() {
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& w : waiters) w->timer.cancel();
}

// --- Scheduler ------------------------------------------------------------------------------

struct Scheduler::Loop {
  Loop(asio::io_context& io, std::shared_ptr<Check> c) : check(std::move(c)), sleeper(io) {}
  std::shared_ptr<Check> check;
  asio::steady_timer sleeper;
  asio::cancellation_signal cancel;
  SteadyTime backstop = SteadyTime::max();
  bool overran = false;
  bool spawned = false;
  bool removed = false;
  bool in_run = false;  // between acquiring a slot and publishing
  bool ended = false;   // its coroutine has returned (removed, stopped, or failed)
  StoppedFunction stopped;
};

Scheduler::Scheduler(Services& services, Vantage vantage, sinks::Fanout& sinks,
                     SchedulerOptions options)
    : services_(services),
      vantage_(std::move(vantage)),
      sinks_(sinks),
      options_(options),
      slots_(services.io, options.max_concurrency),
      watchdog_timer_(services.io),
      all_done_(services.io),
      grace_(services.io) {}

Scheduler::Scheduler(Services& services, std::vector<CheckPtr>& checks, Vantage vantage,
                     sinks::Fanout& sinks, SchedulerOptions options)
    : Scheduler(services, std::move(vantage), sinks, options) {
  // Not owned: an aliasing pointer with no control block of its own.
  for (auto& c : checks) add(std::shared_ptr<Check>(std::shared_ptr<Check>(), c.get()));
}

Scheduler::~Scheduler() = default;

SteadyTime Scheduler::now() const { return services_.clock.steady_now(); }

std::chrono::nanoseconds Scheduler::first_offset(std::chrono::nanoseconds interval,
                                                 IdGenerator& ids, bool once) {
  if (once || interval.count() <= 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(
      static_cast<std::int64_t>(ids.below(static_cast<std::uint64_t>(interval.count()))));
}

SteadyTime Scheduler::next_start(SteadyTime previous, std::chrono::nanoseconds interval,
                                 SteadyTime now, std::uint64_t& skipped) {
  SteadyTime next = previous + interval;
  if (next <= now) {
    // Overran: keep the grid, skip the starts already in the past.
    const auto behind = now - next;
    const auto missed = behind / interval + 1;
    skipped += static_cast<std::uint64_t>(missed);
    next += interval * missed;
  }
  return next;
}

bool Scheduler::add(std::shared_ptr<Check> check) {
  if (stopping_) return false;
  const std::string id = check->id();
  if (loops_.count(id) != 0 || retiring(id)) {
    throw std::invalid_argument("check \"" + id + "\" is already scheduled");
  }
  auto loop = std::make_shared<Loop>(services_.io, std::move(check));
  loops_.emplace(id, loop);
  if (running_) spawn(loop);
  return true;
}

bool Scheduler::remove(const std::string& id, StoppedFunction stopped) {
  auto it = loops_.find(id);
  if (it == loops_.end()) return false;
  std::shared_ptr<Loop> loop = std::move(it->second);
  loops_.erase(it);
  loop->removed = true;
  loop->stopped = std::move(stopped);
  if (!loop->spawned || loop->ended) {
    // Never started, or already ended (its loop failed: scheduler.loop_failed): nothing to
    // wait for.
    if (loop->stopped) {
      asio::post(services_.io, [loop] { loop->stopped(loop->check); });
    }
    return true;
  }
  retiring_.push_back(loop);
  loop->sleeper.cancel();
  // Only a run in progress is cancelled: a loop waiting for a slot sees `removed` once it has
  // one, and one between runs ends when its timer's cancellation resumes it.
  if (loop->in_run) loop->cancel.emit(asio::cancellation_type::terminal);
  return true;
}

bool Scheduler::retiring(const std::string& id) const {
  return std::any_of(retiring_.begin(), retiring_.end(),
                     [&](const auto& l) { return l->check->id() == id; });
}

std::vector<std::string> Scheduler::check_ids() const {
  std::vector<std::string> ids;
  ids.reserve(loops_.size());
  for (const auto& [id, loop] : loops_) ids.push_back(id);
  return ids;
}

void Scheduler::spawn(const std::shared_ptr<Loop>& loop) {
  loop->spawned = true;
  ++loops_running_;
  log::debug("scheduler.loop_started", {{"check", loop->check->id()}});
  asio::co_spawn(
      services_.io, check_loop(loop),
      asio::bind_cancellation_slot(loop->cancel.slot(), [this, loop](std::exception_ptr e) {
        if (e) {
          try {
            std::rethrow_exception(e);
          } catch (const boost::system::system_error& ex) {
            if (ex.code() == asio::error::operation_aborted) {
              log::debug("scheduler.run_cancelled", {{"check", loop->check->id()}});
            } else {
              log::error("scheduler.loop_failed",
                         {{"check", loop->check->id()}, {"error", ex.what()}});
            }
          } catch (const std::exception& ex) {
            log::error("scheduler.loop_failed",
                       {{"check", loop->check->id()}, {"error", ex.what()}});
          }
        }
        --loops_running_;
        loop->ended = true;
        if (loop->removed) {
          std::erase(retiring_, loop);
          if (loop->stopped) loop->stopped(loop->check);
        }
        all_done_.cancel();
      }));
}

asio::awaitable<void> Scheduler::run() {
  running_ = true;
  asio::co_spawn(services_.io, watchdog(), log::LogException{"scheduler.watchdog_failed"});
  // Copied: a loop's first steps may not change the map under this iteration, but be safe.
  std::vector<std::shared_ptr<Loop>> loops;
  for (const auto& [id, loop] : loops_) loops.push_back(loop);
  for (const auto& loop : loops) {
    if (!loop->spawned && !loop->removed) spawn(loop);
  }
  // Without `once`, only stop() ends the scheduler: a reload may leave it no checks for a while.
  while (loops_running_ > 0 || (!options_.once && !stopping_)) {
    all_done_.expires_at(steady_clock::time_point::max());
    co_await all_done_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  finished_ = true;
  grace_.cancel();
  watchdog_timer_.cancel();
}

// One timer for every run's backstop, instead of a timer per run: a check that has not finished
// kBackstop after its own deadline (a bug, or a C library that ignored its timeout) is cancelled
// and recorded as a timeout.
asio::awaitable<void> Scheduler::watchdog() {
  while (!finished_) {
    watchdog_timer_.expires_after(std::chrono::milliseconds(250));
    auto [ec] = co_await watchdog_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || finished_) break;
    const auto t = now();
    auto check = [t](Loop& loop) {
      if (loop.backstop < t && !loop.overran) {
        loop.overran = true;
        loop.cancel.emit(asio::cancellation_type::terminal);
      }
    };
    // Emitting may not end a loop synchronously (completions are posted), so iterating is safe.
    for (auto& [id, loop] : loops_) check(*loop);
    for (auto& loop : retiring_) check(*loop);
  }
}

void Scheduler::stop() {
  if (stopping_) return;
  stopping_ = true;
  log::info(
      "scheduler.stopping",
      {{"in_flight", stats_.in_flight},
       {"grace_ms", static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                  options_.shutdown_grace)
                                                  .count())}});
  for (auto& [id, loop] : loops_) loop->sleeper.cancel();
  for (auto& loop : retiring_) loop->sleeper.cancel();
  slots_.cancel_waiters();
  all_done_.cancel();  // with no loop at all, run() ends now
  grace_.expires_after(options_.shutdown_grace);
  grace_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    if (loops_running_ > 0)
      log::warn("scheduler.cancelling_in_flight", {{"in_flight", stats_.in_flight}});
    for (auto& [id, loop] : loops_) loop->cancel.emit(asio::cancellation_type::terminal);
    for (auto& loop : retiring_) loop->cancel.emit(asio::cancellation_type::terminal);
  });
}

asio::awaitable<void> Scheduler::check_loop(std::shared_ptr<Loop> loop) {
  Check& check = *loop->check;
  const auto interval = check.common().interval;
  SteadyTime next = now() + first_offset(interval, services_.ids, options_.once);
  for (;;) {
    if (stopping_ || loop->removed) break;
    loop->sleeper.expires_at(next);
    co_await loop->sleeper.async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopping_ || loop->removed) break;
    if (!co_await slots_.acquire()) break;
    if (stopping_ || loop->removed) {
      slots_.release();
      break;
    }
    ++stats_.in_flight;
    loop->in_run = true;
    std::vector<CheckResult> results;
    try {
      results = co_await run_with_retries(*loop);
    } catch (...) {
      loop->in_run = false;
      --stats_.in_flight;
      slots_.release();
      throw;  // cancelled at shutdown or by remove()
    }
    loop->in_run = false;
    --stats_.in_flight;
    slots_.release();
    publish(check, results);
    if (options_.once) break;
    next = next_start(next, interval, now(), stats_.skipped_runs);
  }
}

namespace {

std::vector<CheckResult> internal_failure(FailureType type, std::string detail) {
  CheckResult r;
  r.outcome.type = type;
  r.outcome.detail = std::move(detail);
  return {std::move(r)};
}

asio::awaitable<std::vector<CheckResult>> guarded_run(Check& check, RunContext& ctx) {
  try {
    co_return co_await check.run(ctx);
  } catch (const boost::system::system_error& e) {
    if (e.code() == asio::error::operation_aborted) throw;
    log::error("check.internal_error", {{"check", check.id()}, {"error", e.what()}});
    co_return internal_failure(FailureType::unknown, std::string("internal error: ") + e.what());
  } catch (const std::exception& e) {
    log::error("check.internal_error", {{"check", check.id()}, {"error", e.what()}});
    co_return internal_failure(FailureType::unknown, std::string("internal error: ") + e.what());
  }
}

}  // namespace

asio::awaitable<std::vector<CheckResult>> Scheduler::run_attempt(Loop& loop) {
  Check& check = *loop.check;
  ++stats_.runs;
  RunContext ctx{services_, now() + check.common().timeout, services_.clock.utc_now(),
                 services_.ids.trace_id(), check.id()};
  loop.backstop = ctx.deadline + check.extra_time() + kBackstop;
  std::vector<CheckResult> results;
  try {
    results = co_await guarded_run(check, ctx);
  } catch (const boost::system::system_error& e) {
    loop.backstop = SteadyTime::max();
    if (e.code() != asio::error::operation_aborted || !loop.overran || stopping_ || loop.removed)
      throw;
    // Cancelled by the watchdog, not by shutdown: record the overrun and keep the loop going
    // (the cancellation state is reset below: no co_await inside a handler).
    ++stats_.backstop_timeouts;
    log::error("check.overran_deadline", {{"check", check.id()}});
    results = internal_failure(FailureType::timeout, "the check did not finish within its timeout");
    results.front().phases.total = to_ms(check.common().timeout + kBackstop);
  }
  loop.backstop = SteadyTime::max();
  if (loop.overran) {
    // The watchdog cancelled this run (or fired just as it finished): the coroutine's cancellation
    // state is set; clear it so the loop's next wait is not aborted.
    loop.overran = false;
    co_await asio::this_coro::reset_cancellation_state();
  }
  for (auto& r : results) r.time = ctx.started;
  co_return results;
}

asio::awaitable<std::vector<CheckResult>> Scheduler::run_with_retries(Loop& loop) {
  Check& check = *loop.check;
  const int max_attempts = 1 + check.common().retries;
  std::vector<Outcome> failed;
  std::optional<UtcTime> run_started;
  for (int attempt = 1;; ++attempt) {
    std::vector<CheckResult> results = co_await run_attempt(loop);
    if (!run_started && !results.empty()) run_started = results.front().time;
    const bool all_ok =
        std::all_of(results.begin(), results.end(), [](const CheckResult& r) { return r.ok(); });
    if (all_ok || attempt >= max_attempts || stopping_) {
      for (auto& r : results) {
        r.time = run_started.value_or(r.time);  // the run started with its first attempt
        r.attempts = attempt;
        r.failed_attempts = failed;
        r.flaky = r.ok() && !failed.empty();
      }
      co_return results;
    }
    for (const auto& r : results) {
      if (!r.ok()) failed.push_back(r.outcome);
    }
    log::debug("check.retrying", {{"check", check.id()}, {"attempt", attempt}});
    asio::steady_timer pause(services_.io);
    pause.expires_after(check.common().retry_backoff);
    co_await pause.async_wait(asio::use_awaitable);
  }
}

void Scheduler::publish(Check& check, std::vector<CheckResult>& results) {
  const sinks::PublishInfo info{results.size() > 1, check.common().interval};
  for (auto& r : results) {
    r.id = services_.ids.uuid_v7(r.time);
    r.check_id = check.id();
    r.check_kind = check.common().kind;
    r.vantage = vantage_;
    ++stats_.results;
    if (!r.ok()) {
      ++stats_.failed_results;
      log::debug("check.failed", {{"check", r.check_id},
                                  {"type", std::string(to_string(r.outcome.type))},
                                  {"detail", r.outcome.detail}});
    }
    sinks_.publish(r, info);
  }
}

}  // namespace vantage::probe
