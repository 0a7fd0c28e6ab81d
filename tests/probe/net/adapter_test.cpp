// The libcurl and c-ares adapters on Asio, against in-process servers (hermetic).
#include <ares.h>
#include <curl/curl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include "probe/async_util.hpp"
#include "probe/net/ares_channel.hpp"
#include "probe/net/http_client.hpp"
#include "tests/support/run.hpp"
#include "tests/support/test_servers.hpp"

using namespace vantage;
using namespace vantage::probe;
using namespace vantage::testing;
namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;
using namespace std::chrono;

namespace {
// A coroutine takes its inputs as parameters: a lambda's captures would dangle once the
// (lazily started) coroutine outlives the lambda object.
asio::awaitable<int> fetch_status(net::CurlMulti& curl, std::string url) {
  net::HttpRequest req;
  req.url = std::move(url);
  const auto ex = co_await net::http_exchange(curl, req);
  co_return ex.completed() ? static_cast<int>(ex.status) : -ex.curl_code;
}
}  // namespace

TEST_CASE("many concurrent transfers complete on one event loop", "[probe][adapter][curl]") {
  TestHttpServer server;
  ProbeServices s;
  std::vector<asio::awaitable<int>> tasks;
  for (int i = 0; i < 200; ++i)
    tasks.push_back(fetch_status(s.curl, server.url(i % 2 ? "/ok" : "/status/503")));
  const auto statuses = s.run(gather(std::move(tasks)));
  for (int i = 0; i < 200; ++i) CHECK(statuses[static_cast<std::size_t>(i)] == (i % 2 ? 200 : 503));
  CHECK(s.curl.in_flight() == 0);
}

TEST_CASE("a cancelled transfer is removed at once", "[probe][adapter][curl]") {
  TestHttpServer server;
  ProbeServices s;
  const auto start = steady_clock::now();
  const int winner = s.run([&]() -> asio::awaitable<int> {
    net::HttpRequest req;
    req.url = server.url("/slow/3000");
    asio::steady_timer t(s.io, milliseconds(100));
    auto r = co_await (net::http_exchange(s.curl, req) || t.async_wait(asio::use_awaitable));
    co_return static_cast<int>(r.index());
  }());
  CHECK(winner == 1);
  CHECK(steady_clock::now() - start < milliseconds(1500));
  CHECK(s.curl.in_flight() == 0);
}

TEST_CASE("addresses resolve through c-ares against a chosen server", "[probe][adapter][ares]") {
  TestDnsServer dns;
  ProbeServices s;
  const auto deadline = [] { return steady_clock::now() + seconds(3); };
  auto ok = s.run(s.resolvers.resolve("ok.test", IpFamily::ip4, {dns.address()}, deadline()));
  REQUIRE_FALSE(ok.failure);
  CHECK(ok.addresses == std::vector<std::string>{"192.0.2.1", "192.0.2.2"});
  CHECK(ok.ttl == 60);
  CHECK(ok.resolver == dns.address());

  auto nx = s.run(s.resolvers.resolve("nx.test", IpFamily::ip4, {dns.address()}, deadline()));
  REQUIRE(nx.failure);
  CHECK(nx.failure->type == FailureType::dns_name_not_resolved);

  auto fail = s.run(s.resolvers.resolve("fail.test", IpFamily::ip4, {dns.address()}, deadline()));
  REQUIRE(fail.failure);
  CHECK(fail.failure->type == FailureType::dns_failed);  // SERVFAIL seen thanks to NOCHECKRESP

  auto refused =
      s.run(s.resolvers.resolve("refused.test", IpFamily::ip4, {dns.address()}, deadline()));
  REQUIRE(refused.failure);
  CHECK(refused.failure->type == FailureType::dns_failed);

  const auto t0 = steady_clock::now();
  auto drop = s.run(s.resolvers.resolve("drop.test", IpFamily::ip4, {dns.address()},
                                        steady_clock::now() + milliseconds(400)));
  REQUIRE(drop.failure);
  CHECK(drop.failure->type == FailureType::dns_unreachable);
  CHECK(steady_clock::now() - t0 < milliseconds(1500));

  auto literal = s.run(s.resolvers.resolve("192.0.2.77", IpFamily::any, {}, deadline()));
  CHECK(literal.addresses == std::vector<std::string>{"192.0.2.77"});
  CHECK(literal.dns_ms == 0);
}

TEST_CASE("a resolver that refuses connections is dns.unreachable", "[probe][adapter][ares]") {
  ProbeServices s;
  // A UDP port nothing listens on: the kernel answers ICMP port unreachable.
  const auto r = s.run(s.resolvers.resolve("ok.test", IpFamily::ip4, {"127.0.0.1:9"},
                                           steady_clock::now() + seconds(3)));
  REQUIRE(r.failure);
  CHECK(r.failure->type == FailureType::dns_unreachable);
}

TEST_CASE("a resolver channel keeps its UDP socket between queries and reopens it periodically",
          "[probe][adapter][ares]") {
  TestDnsServer dns;
  ProbeServices s;
  const auto resolve_ok = [&] {
    auto r = s.run(s.resolvers.resolve("ok.test", IpFamily::ip4, {dns.address()},
                                       steady_clock::now() + seconds(3)));
    REQUIRE_FALSE(r.failure);
  };
  // One lookup at a time, as a probe's checks mostly run: the socket outlives each lookup.
  for (int i = 0; i < 10; ++i) resolve_ok();
  CHECK(dns.queries() == 10);
  CHECK(dns.source_ports() == 1);
  // ... but not forever: the source port changes every kQueriesPerSocket lookups.
  for (std::uint64_t i = 10; i < 2 * net::AresChannel::kQueriesPerSocket + 1; ++i) resolve_ok();
  CHECK(dns.source_ports() == 3);
}
