#include "probe/scheduler.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <map>

#include "common/ids.hpp"
#include "probe/checks/registry.hpp"
#include "tests/support/run.hpp"

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

// --- Checks added and removed while the scheduler runs (configuration reloads) -------------
//
// These run the real scheduler on an io_context for well under a second: its timers are asio
// steady timers, so there is no clock to fake; the assertions are about order and presence, not
// exact times.

namespace {

struct Record {
  std::map<std::string, std::vector<steady_clock::time_point>> results;  // by check id
  std::map<std::string, int> runs, cancelled;
};

class FakeCheck final : public Check {
 public:
  FakeCheck(std::string id, milliseconds interval, milliseconds run_time, Record& record)
      : Check(common_for(std::move(id), interval)), run_time_(run_time), record_(record) {}

  asio::awaitable<std::vector<CheckResult>> run(RunContext& ctx) override {
    ++record_.runs[id()];
    if (on_run) on_run();
    if (run_time_.count() > 0) {
      asio::steady_timer t(ctx.services.io, run_time_);
      try {
        co_await t.async_wait(asio::use_awaitable);
      } catch (...) {
        ++record_.cancelled[id()];
        throw;
      }
    }
    CheckResult r;
    r.target.host = id();
    co_return std::vector<CheckResult>{std::move(r)};
  }
  std::string describe() const override { return "fake " + id(); }
  void shutdown() override { ++shutdowns; }

  std::function<void()> on_run;
  int shutdowns = 0;

 private:
  static CheckCommon common_for(std::string id, milliseconds interval) {
    CheckCommon c;
    c.id = std::move(id);
    c.kind = "fake";
    c.interval = interval;
    c.timeout = interval;
    return c;
  }
  milliseconds run_time_;
  Record& record_;
};

class RecordingSink final : public sinks::Sink {
 public:
  explicit RecordingSink(Record& record) : record_(record) {}
  std::string name() const override { return "record"; }
  void publish(const CheckResult& r, const sinks::PublishInfo&) override {
    record_.results[r.check_id].push_back(steady_clock::now());
  }
  asio::awaitable<void> close(milliseconds) override { co_return; }

 private:
  Record& record_;
};

struct Rig {
  vantage::testing::ProbeServices s;
  Record record;
  sinks::Fanout fanout;
  Scheduler scheduler;
  explicit Rig(SchedulerOptions opts = {})
      : scheduler(s.services, Vantage{},
                  (fanout.add(std::make_shared<RecordingSink>(record)), fanout), opts) {}
  std::shared_ptr<FakeCheck> check(const std::string& id, milliseconds interval,
                                   milliseconds run_time = milliseconds(0)) {
    return std::make_shared<FakeCheck>(id, interval, run_time, record);
  }
  // Calls `f` after `d` on the event loop.
  void at(milliseconds d, std::function<void()> f) {
    auto t = std::make_shared<asio::steady_timer>(s.io, d);
    t->async_wait([t, f = std::move(f)](const boost::system::error_code&) { f(); });
  }
  // Runs the scheduler until stop() (called by the test's timers); true if run() finished.
  bool run() {
    bool done = false;
    asio::co_spawn(
        s.io,
        [&]() -> asio::awaitable<void> {
          co_await scheduler.run();
          done = true;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);  // out of io.run(): the test fails with it
        });
    s.io.run();
    return done;
  }
};

}  // namespace

TEST_CASE("a check added and one removed at runtime leave the other check's schedule alone",
          "[probe][scheduler][reload]") {
  Rig rig;
  const auto interval = milliseconds(100);
  REQUIRE(rig.scheduler.add(rig.check("steady", interval)));
  REQUIRE(rig.scheduler.add(rig.check("old", interval)));
  std::shared_ptr<Check> stopped;
  int stopped_calls = 0;
  steady_clock::time_point reload_at{};
  rig.at(milliseconds(500), [&] {
    reload_at = steady_clock::now();
    CHECK(rig.scheduler.remove("old", [&](std::shared_ptr<Check> c) {
      stopped = std::move(c);
      ++stopped_calls;
    }));
    CHECK(rig.scheduler.add(rig.check("new", interval)));
    CHECK_FALSE(rig.scheduler.remove("no-such-check"));
  });
  rig.at(milliseconds(1100), [&] { rig.scheduler.stop(); });
  REQUIRE(rig.run());

  CHECK(stopped_calls == 1);
  REQUIRE(stopped);
  CHECK(stopped->id() == "old");
  CHECK(rig.scheduler.check_ids() == std::vector<std::string>{"new", "steady"});
  // The removed check published nothing after its removal; the new one did, only after it.
  const auto& old = rig.record.results["old"];
  REQUIRE_FALSE(old.empty());
  CHECK(old.back() <= reload_at);
  const auto& added = rig.record.results["new"];
  REQUIRE_FALSE(added.empty());
  CHECK(added.front() > reload_at);
  // The untouched check ran through the reload: results before and after it, and no interval
  // missing (a missing one would leave a gap of two intervals; 70 ms of scheduling slack on a
  // loaded machine).
  const auto& steady = rig.record.results["steady"];
  REQUIRE(steady.size() >= 6);
  CHECK(steady.front() < reload_at);
  CHECK(steady.back() > reload_at);
  milliseconds widest{0};
  for (std::size_t i = 1; i < steady.size(); ++i) {
    widest = std::max(widest, duration_cast<milliseconds>(steady[i] - steady[i - 1]));
  }
  CHECK(widest < interval + milliseconds(70));
  CHECK(rig.scheduler.stats().in_flight == 0);
}

TEST_CASE("removing a check cancels its run in flight, then reports the loop stopped",
          "[probe][scheduler][reload]") {
  Rig rig;
  // Its first run starts within its interval; the run would take 1.5 s (the scheduler's backstop
  // is 2 s past the deadline, so only remove() cancels it).
  auto slow = rig.check("slow", milliseconds(400), milliseconds(1500));
  auto other = rig.check("other", milliseconds(50));
  bool stopped = false;
  int in_flight_at_stop = -1;
  slow->on_run = [&] {
    // Removed while its run waits: the run is cancelled, its result never published.
    asio::post(rig.s.io, [&] {
      CHECK(rig.scheduler.stats().in_flight >= 1);
      rig.scheduler.remove("slow", [&](std::shared_ptr<Check> c) {
        stopped = true;
        in_flight_at_stop = rig.scheduler.stats().in_flight;
        CHECK(c.get() == slow.get());
        CHECK(rig.record.cancelled["slow"] == 1);
        CHECK_FALSE(rig.scheduler.retiring("slow"));
      });
      CHECK(rig.scheduler.retiring("slow"));
      CHECK_FALSE(rig.scheduler.contains("slow"));
    });
  };
  REQUIRE(rig.scheduler.add(slow));
  REQUIRE(rig.scheduler.add(other));
  rig.at(milliseconds(1000), [&] { rig.scheduler.stop(); });
  REQUIRE(rig.run());
  CHECK(stopped);
  CHECK(rig.record.runs["slow"] == 1);
  CHECK(rig.record.cancelled["slow"] == 1);
  CHECK(rig.record.results.count("slow") == 0);
  CHECK(in_flight_at_stop == 0);
  CHECK(rig.scheduler.stats().in_flight == 0);
  CHECK(rig.record.results["other"].size() > 10);
}

TEST_CASE("a changed check replaces the old one once its loop has ended",
          "[probe][scheduler][reload]") {
  Rig rig;
  auto v1 = rig.check("c", milliseconds(30));
  REQUIRE(rig.scheduler.add(v1));
  auto v2 = rig.check("c", milliseconds(30));
  bool threw_while_retiring = false;
  rig.at(milliseconds(200), [&] {
    REQUIRE(rig.scheduler.remove("c", [&](std::shared_ptr<Check> old) {
      CHECK(old == v1);
      CHECK(rig.scheduler.add(v2));
    }));
    try {
      rig.scheduler.add(v2);  // the old loop has not ended yet
    } catch (const std::invalid_argument&) {
      threw_while_retiring = true;
    }
  });
  rig.at(milliseconds(500), [&] { rig.scheduler.stop(); });
  REQUIRE(rig.run());
  CHECK(threw_while_retiring);
  CHECK(rig.scheduler.check_ids() == std::vector<std::string>{"c"});
  CHECK(rig.record.runs["c"] >= 8);                                     // both versions ran
  CHECK_FALSE(rig.scheduler.add(rig.check("late", milliseconds(30))));  // stopping: refused
}

TEST_CASE("a running scheduler left without checks waits for stop()",
          "[probe][scheduler][reload]") {
  Rig rig;
  REQUIRE(rig.scheduler.add(rig.check("only", milliseconds(20))));
  bool stopped_early = false;
  rig.at(milliseconds(100), [&] { rig.scheduler.remove("only"); });
  rig.at(milliseconds(250), [&] {
    stopped_early = rig.scheduler.stopping();
    CHECK(rig.scheduler.size() == 0);
    REQUIRE(rig.scheduler.add(rig.check("again", milliseconds(20))));
  });
  rig.at(milliseconds(450), [&] { rig.scheduler.stop(); });
  REQUIRE(rig.run());
  CHECK_FALSE(stopped_early);
  CHECK(rig.record.results["again"].size() >= 3);
}

TEST_CASE("fingerprints ignore layout and see every effective change",
          "[probe][scheduler][reload]") {
  auto fp = [](const std::string& yaml, milliseconds interval = milliseconds(30000)) {
    const ConfigNode node = ConfigNode::load_string(yaml, "t.yaml");
    CheckCommon c;
    c.id = "a";
    c.kind = "http";
    c.interval = interval;
    return checks::fingerprint(c, node);
  };
  const std::string base =
      "id: a\nkind: http\nurl: https://example.com/\nexpect: {status: [200]}\n";
  CHECK(fp(base) ==
        fp("kind: http   # comment\nexpect:\n  status: [200]\nurl: https://example.com/\nid: a\n"));
  CHECK(fp(base) != fp("id: a\nkind: http\nurl: https://example.com/x\nexpect: {status: [200]}\n"));
  CHECK(fp(base) !=
        fp("id: a\nkind: http\nurl: https://example.com/\nexpect: {status: ['200']}\n"));
  CHECK(fp(base) != fp(base, milliseconds(10000)));  // a changed default
}

TEST_CASE("a check whose loop failed can still be removed, and its id scheduled again",
          "[probe][scheduler][reload]") {
  // A sink that throws ends the check's loop (scheduler.loop_failed). A reload that then changes
  // or removes the check must not wait for a loop that already ended.
  class ThrowingSink final : public sinks::Sink {
   public:
    std::string name() const override { return "throwing"; }
    void publish(const CheckResult&, const sinks::PublishInfo&) override {
      throw std::runtime_error("sink broke");
    }
    asio::awaitable<void> close(milliseconds) override { co_return; }
  };
  Rig rig;
  rig.fanout.add(std::make_shared<ThrowingSink>());
  rig.scheduler.add(rig.check("x", milliseconds(50)));
  bool stopped = false, removed = false, readded = false, retiring_after = true;
  rig.at(milliseconds(300), [&] {
    removed = rig.scheduler.remove("x", [&](std::shared_ptr<Check>) { stopped = true; });
  });
  rig.at(milliseconds(400), [&] {
    retiring_after = rig.scheduler.retiring("x");
    if (!retiring_after) readded = rig.scheduler.add(rig.check("x", milliseconds(50)));
    rig.scheduler.stop();
  });
  CHECK(rig.run());
  CHECK(rig.record.runs["x"] >= 1);  // it ran, and its result's publication failed
  CHECK(removed);
  CHECK(stopped);
  CHECK_FALSE(retiring_after);
  CHECK(readded);
}
