#include "probe/scheduler.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "common/ids.hpp"

using namespace vantage;
using namespace vantage::probe;
using namespace std::chrono;
namespace asio = boost::asio;

TEST_CASE("first runs are spread over the interval", "[probe][scheduler]") {
  IdGenerator ids(1);
  const nanoseconds interval = seconds(60);
  nanoseconds lo = interval, hi{0};
  for (int i = 0; i < 2000; ++i) {
    const auto off = Scheduler::first_offset(interval, ids, false);
    REQUIRE(off >= nanoseconds(0));
    REQUIRE(off < interval);
    lo = std::min(lo, off);
    hi = std::max(hi, off);
  }
  CHECK(lo < seconds(1));
  CHECK(hi > seconds(59));
  CHECK(Scheduler::first_offset(interval, ids, true) == nanoseconds(0));
}

TEST_CASE("the schedule keeps its grid and counts skipped runs", "[probe][scheduler]") {
  const SteadyTime t0{};
  std::uint64_t skipped = 0;
  CHECK(Scheduler::next_start(t0, seconds(10), t0 + seconds(3), skipped) == t0 + seconds(10));
  CHECK(skipped == 0);
  // The run took 25 s: the starts at 10 s and 20 s are gone, the next is at 30 s.
  CHECK(Scheduler::next_start(t0, seconds(10), t0 + seconds(25), skipped) == t0 + seconds(30));
  CHECK(skipped == 2);
}

TEST_CASE("the semaphore bounds concurrency and hands permits over in order",
          "[probe][scheduler]") {
  asio::io_context io;
  AsyncSemaphore sem(io, 2);
  int running = 0, peak = 0, done = 0, granted = 0;
  std::vector<int> order;
  // (No Catch assertions inside coroutines: Catch's assertion state cannot span a co_await.)
  for (int i = 0; i < 6; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          if (co_await sem.acquire()) ++granted;
          order.push_back(i);
          peak = std::max(peak, ++running);
          asio::steady_timer t(io, milliseconds(5));
          co_await t.async_wait(asio::use_awaitable);
          --running;
          ++done;
          sem.release();
        },
        asio::detached);
  }
  io.run();
  CHECK(granted == 6);
  CHECK(done == 6);
  CHECK(peak == 2);
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5});
  CHECK(sem.available() == 2);
}

TEST_CASE("cancelled waiters give up without losing permits", "[probe][scheduler]") {
  asio::io_context io;
  AsyncSemaphore sem(io, 1);
  bool second = true;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await sem.acquire();
        asio::steady_timer t(io, milliseconds(5));
        co_await t.async_wait(asio::use_awaitable);
        sem.cancel_waiters();
        sem.release();
      },
      asio::detached);
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { second = co_await sem.acquire(); }, asio::detached);
  io.run();
  CHECK_FALSE(second);
  CHECK(sem.available() == 1);
}
