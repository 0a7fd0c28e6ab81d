// Churn: thousands of check runs with random deadlines and random cancellations on one event
// loop. Run under ASan+UBSan in CI; asserts that every run ends, nothing leaks in the adapters,
// and the scheduler shuts down within its bound with runs still in flight.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <random>

#include "probe/scheduler.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_servers.hpp"

using namespace vantage;
using namespace vantage::probe;
using namespace vantage::testing;
namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;
using namespace std::chrono;

namespace {

class CountingSink final : public sinks::Sink {
 public:
  std::string name() const override { return "count"; }
  void publish(const CheckResult& r, const sinks::PublishInfo&) override {
    ++results;
    if (!r.ok()) ++failures;
  }
  asio::awaitable<void> close(milliseconds) override { co_return; }
  int results = 0;
  int failures = 0;
};

}  // namespace

TEST_CASE("thousands of runs with random deadlines and cancellations all end cleanly",
          "[probe][churn]") {
  TestHttpServer http;
  TestDnsServer dns;
  BlackholeListener hole;
  ProbeServices s;
  std::mt19937 rng(20261122);
  const std::string dns_addr = dns.address();
  const std::vector<std::string> yamls = {
      "id: a\nkind: http\nurl: " + http.url("/ok") + "\n",
      "id: b\nkind: http\nurl: " + http.url("/slow/150") + "\n",
      "id: c\nkind: http\nurl: " + http.url("/status/500") + "\n",
      "id: d\nkind: http\nurl: http://127.0.0.1:" + std::to_string(hole.port()) + "/\n",
      "id: e\nkind: http\nurl: http://local.test:" + std::to_string(http.port()) +
          "/ok\nresolvers: ['" + dns_addr + "']\n",
      "id: f\nkind: dns\nname: slow.test\nresolvers: ['" + dns_addr + "']\n",
      "id: g\nkind: dns\nname: drop.test\nresolvers: ['" + dns_addr + "']\n",
      "id: h\nkind: tcp\nhost: 127.0.0.1\nport: " + std::to_string(http.port()) + "\n",
  };
  constexpr int kRuns = 3000;
  int finished = 0, cancelled = 0;
  AsyncSemaphore slots(s.io, 150);
  for (int i = 0; i < kRuns; ++i) {
    const auto timeout = milliseconds(20 + static_cast<int>(rng() % 400));
    const auto cancel_after = milliseconds(static_cast<int>(rng() % 600));
    auto check = std::shared_ptr<Check>(s.check(yamls[rng() % yamls.size()], timeout).release());
    asio::co_spawn(
        s.io,
        [&, check, cancel_after]() -> asio::awaitable<void> {
          co_await slots.acquire();
          RunContext ctx{s.services, steady_clock::now() + check->common().timeout,
                         SystemClock::instance().utc_now(), s.ids.trace_id(), check->id()};
          asio::steady_timer cancel(s.io, cancel_after);
          try {
            auto r = co_await (check->run(ctx) || cancel.async_wait(asio::use_awaitable));
            if (r.index() == 1) ++cancelled;
          } catch (const std::exception&) {
            ++cancelled;
          }
          ++finished;
          slots.release();
        },
        asio::detached);
  }
  s.io.run();
  CHECK(finished == kRuns);
  CHECK(cancelled > 100);
  CHECK(cancelled < kRuns);
  CHECK(s.curl.in_flight() == 0);
}

TEST_CASE("the scheduler stops within its grace period with runs in flight",
          "[probe][churn][scheduler]") {
  TestHttpServer http;
  ProbeServices s;
  std::vector<CheckPtr> checks;
  for (int i = 0; i < 300; ++i) {
    const std::string path = i % 3 == 0 ? "/slow/5000" : "/ok";
    auto c = s.check("id: c" + std::to_string(i) + "\nkind: http\nurl: " + http.url(path) + "\n",
                     milliseconds(900));
    checks.push_back(std::move(c));
  }
  for (auto& c : checks) const_cast<CheckCommon&>(c->common()).interval = milliseconds(1000);
  sinks::Fanout fanout;
  auto sink = std::make_shared<CountingSink>();
  fanout.add(sink);
  SchedulerOptions opts;
  opts.max_concurrency = 64;
  opts.shutdown_grace = milliseconds(200);
  Scheduler scheduler(s.services, checks, Vantage{}, fanout, opts);
  asio::steady_timer stop_at(s.io, milliseconds(2500));
  stop_at.async_wait([&](auto) { scheduler.stop(); });
  const auto t0 = steady_clock::now();
  bool done = false;
  asio::co_spawn(
      s.io,
      [&]() -> asio::awaitable<void> {
        co_await scheduler.run();
        done = true;
      },
      asio::detached);
  s.io.run();
  CHECK(done);
  CHECK(steady_clock::now() - t0 < milliseconds(2500 + 200 + 1500));
  CHECK(sink->results > 300);
  CHECK(scheduler.stats().in_flight == 0);
  CHECK(s.curl.in_flight() == 0);
}
