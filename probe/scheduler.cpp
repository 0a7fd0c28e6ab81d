#include "probe/scheduler.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

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

Scheduler::Scheduler(Services& services, std::vector<CheckPtr>& checks, Vantage vantage,
                     sinks::Fanout& sinks, SchedulerOptions options)
    : services_(services),
      checks_(checks),
      vantage_(std::move(vantage)),
      sinks_(sinks),
      options_(options),
      slots_(services.io, options.max_concurrency),
      watchdog_timer_(services.io),
      all_done_(services.io),
      grace_(services.io) {}

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

asio::awaitable<void> Scheduler::run() {
  const std::size_t n = checks_.size();
  sleepers_.clear();
  cancel_.clear();
  for (std::size_t i = 0; i < n; ++i) {
    sleepers_.push_back(std::make_unique<asio::steady_timer>(services_.io));
    cancel_.push_back(std::make_unique<asio::cancellation_signal>());
  }
  loops_.assign(n, LoopState{});
  loops_running_ = static_cast<int>(n);
  asio::co_spawn(services_.io, watchdog(), log::LogException{"scheduler.watchdog_failed"});
  for (std::size_t i = 0; i < n; ++i) {
    asio::co_spawn(
        services_.io, check_loop(i),
        asio::bind_cancellation_slot(cancel_[i]->slot(), [this, i](std::exception_ptr e) {
          if (e) {
            try {
              std::rethrow_exception(e);
            } catch (const boost::system::system_error& ex) {
              if (ex.code() == asio::error::operation_aborted) {
                log::debug("scheduler.run_cancelled", {{"check", checks_[i]->id()}});
              } else {
                log::error("scheduler.loop_failed",
                           {{"check", checks_[i]->id()}, {"error", ex.what()}});
              }
            } catch (const std::exception& ex) {
              log::error("scheduler.loop_failed",
                         {{"check", checks_[i]->id()}, {"error", ex.what()}});
            }
          }
          --loops_running_;
          all_done_.cancel();
        }));
  }
  while (loops_running_ > 0) {
    all_done_.expires_at(steady_clock::time_point::max());
    co_await all_done_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  grace_.cancel();
  watchdog_timer_.cancel();
}

// One timer for every run's backstop, instead of a timer per run: a check that has not finished
// kBackstop after its own deadline (a bug, or a C library that ignored its timeout) is cancelled
// and recorded as a timeout.
asio::awaitable<void> Scheduler::watchdog() {
  while (loops_running_ > 0) {
    watchdog_timer_.expires_after(std::chrono::milliseconds(250));
    auto [ec] = co_await watchdog_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) break;
    const auto now = steady_clock::now();
    for (std::size_t i = 0; i < loops_.size(); ++i) {
      if (loops_[i].backstop < now && !loops_[i].overran) {
        loops_[i].overran = true;
        cancel_[i]->emit(asio::cancellation_type::terminal);
      }
    }
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
  for (auto& s : sleepers_) s->cancel();
  slots_.cancel_waiters();
  grace_.expires_after(options_.shutdown_grace);
  grace_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    if (loops_running_ > 0)
      log::warn("scheduler.cancelling_in_flight", {{"in_flight", stats_.in_flight}});
    for (auto& c : cancel_) c->emit(asio::cancellation_type::terminal);
  });
}

asio::awaitable<void> Scheduler::check_loop(std::size_t index) {
  Check& check = *checks_[index];
  const auto interval = check.common().interval;
  SteadyTime next = steady_clock::now() + first_offset(interval, services_.ids, options_.once);
  for (;;) {
    if (stopping_) break;
    sleepers_[index]->expires_at(next);
    co_await sleepers_[index]->async_wait(asio::as_tuple(asio::use_awaitable));
    if (stopping_) break;
    if (!co_await slots_.acquire()) break;
    ++stats_.in_flight;
    std::vector<CheckResult> results;
    try {
      results = co_await run_with_retries(check, index);
    } catch (...) {
      --stats_.in_flight;
      slots_.release();
      throw;  // cancelled at shutdown
    }
    --stats_.in_flight;
    slots_.release();
    publish(check, results);
    if (options_.once) break;
    next = next_start(next, interval, steady_clock::now(), stats_.skipped_runs);
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

asio::awaitable<std::vector<CheckResult>> Scheduler::run_attempt(Check& check, std::size_t index) {
  ++stats_.runs;
  RunContext ctx{services_, steady_clock::now() + check.common().timeout, services_.clock.utc_now(),
                 services_.ids.trace_id(), check.id()};
  LoopState& loop = loops_[index];
  loop.backstop = ctx.deadline + check.extra_time() + kBackstop;
  std::vector<CheckResult> results;
  try {
    results = co_await guarded_run(check, ctx);
  } catch (const boost::system::system_error& e) {
    loop.backstop = SteadyTime::max();
    if (e.code() != asio::error::operation_aborted || !loop.overran || stopping_) throw;
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

asio::awaitable<std::vector<CheckResult>> Scheduler::run_with_retries(Check& check,
                                                                      std::size_t index) {
  const int max_attempts = 1 + check.common().retries;
  std::vector<Outcome> failed;
  std::optional<UtcTime> run_started;
  for (int attempt = 1;; ++attempt) {
    std::vector<CheckResult> results = co_await run_attempt(check, index);
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
