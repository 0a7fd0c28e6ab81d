// Check kinds end to end against in-process servers: outcome, failing phase and facts.
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>

#include "tests/support/run.hpp"
#include "tests/support/test_servers.hpp"

using namespace vantage;
using namespace vantage::testing;
using namespace std::chrono;

namespace {

std::string http_check(const std::string& url, const std::string& extra = "") {
  return "id: t\nkind: http\nurl: " + url + "\n" + extra;
}

std::uint16_t closed_port() {
  // Bind, learn the port, close: nothing listens there afterwards.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

}  // namespace

TEST_CASE("a healthy HTTP target passes with every phase measured", "[probe][checks][http]") {
  TestHttpServer server;
  ProbeServices s;
  auto check =
      s.check(http_check(server.url("/ok"), "expect: {status: [200], body_matches: hel+o}\n"));
  const auto results = s.run_check(*check);
  REQUIRE(results.size() == 1);
  const auto& r = results[0];
  CHECK(r.outcome.type == FailureType::ok);
  CHECK_FALSE(r.outcome.failed_at);
  REQUIRE(r.http);
  CHECK(r.http->status_code == 200);
  CHECK(r.http->body_bytes == 5);
  CHECK(r.phases.dns);
  CHECK(r.phases.connect);
  CHECK_FALSE(r.phases.tls);
  CHECK(r.phases.ttfb);
  CHECK(r.phases.transfer);
  CHECK(r.phases.total >= *r.phases.connect + *r.phases.ttfb);
  CHECK(r.target.server_ip == "127.0.0.1");
  CHECK(r.assertions.size() == 2);
}

TEST_CASE("a 5xx outside the valid set is http.error with its status", "[probe][checks][http]") {
  TestHttpServer server;
  ProbeServices s;
  auto check = s.check(http_check(server.url("/status/503")));
  const auto r = s.run_check(*check).at(0);
  CHECK(r.outcome.type == FailureType::http_error);
  CHECK(r.outcome.status_code == 503);
  CHECK(r.outcome.failed_at == Phase::assertion);
  CHECK(r.outcome.nel() == NelPhase::application);
}

TEST_CASE("a 3xx outside the valid set is an assertion failure", "[probe][checks][http]") {
  TestHttpServer server;
  ProbeServices s;
  auto check = s.check(http_check(server.url("/redirect"), "follow_redirects: false\n"));
  const auto r = s.run_check(*check).at(0);
  CHECK(r.outcome.type == FailureType::assertion_failed);
  CHECK(r.outcome.assertion == "status");
  CHECK(r.outcome.status_code == 302);
}

TEST_CASE("body, JSON and header assertions name the one that failed", "[probe][checks][http]") {
  TestHttpServer server;
  ProbeServices s;
  auto ok = s.check(http_check(server.url("/json"),
                               "expect:\n  json:\n    /items/0/sku: BOOK-1\n    $.n: 2\n  headers: "
                               "{content-type: {matches: json}}\n"));
  CHECK(s.run_check(*ok).at(0).outcome.type == FailureType::ok);

  auto bad_json =
      s.check(http_check(server.url("/json"), "expect:\n  json:\n    $.items[0].sku: BOOK-2\n"));
  auto r = s.run_check(*bad_json).at(0);
  CHECK(r.outcome.type == FailureType::assertion_failed);
  CHECK(r.outcome.assertion == "json:$.items[0].sku");
  CHECK(r.outcome.failed_at == Phase::assertion);
  CHECK(r.assertions.back().actual == "BOOK-1");

  auto bad_body = s.check(http_check(server.url("/ok"), "expect: {body_not_matches: hello}\n"));
  r = s.run_check(*bad_body).at(0);
  CHECK(r.outcome.assertion == "body_not_matches");

  auto bad_header =
      s.check(http_check(server.url("/ok"), "expect: {headers: {x-missing: {exists: true}}}\n"));
  r = s.run_check(*bad_header).at(0);
  CHECK(r.outcome.assertion == "header:x-missing");
}

TEST_CASE("each request carries a W3C traceparent with the run's trace id",
          "[probe][checks][http]") {
  TestHttpServer server;
  ProbeServices s;
  auto check = s.check(
      http_check(server.url("/headers"),
                 "expect:\n  headers:\n    x-seen-traceparent: {matches: "
                 "'^00-[0-9a-f]{32}-[0-9a-f]{16}-01$'}\n    x-seen-tracestate: vantage=t\n"));
  const auto r = s.run_check(*check).at(0);
  CHECK(r.outcome.type == FailureType::ok);
  CHECK(r.trace_id.size() == 32);
}

TEST_CASE("a closed port is tcp.refused in the connect phase", "[probe][checks][http]") {
  ProbeServices s;
  auto check = s.check(http_check("http://127.0.0.1:" + std::to_string(closed_port()) + "/"));
  const auto r = s.run_check(*check).at(0);
  CHECK(r.outcome.type == FailureType::tcp_refused);
  CHECK(r.outcome.failed_at == Phase::connect);
  CHECK(r.outcome.nel() == NelPhase::connection);
}

TEST_CASE("a listener that never accepts is tcp.timed_out in the connect phase",
          "[probe][checks][http]") {
  BlackholeListener hole;
  ProbeServices s;
  auto check = s.check(http_check("http://127.0.0.1:" + std::to_string(hole.port()) + "/"),
                       milliseconds(500));
  const auto t0 = steady_clock::now();
  const auto r = s.run_check(*check).at(0);
  CHECK(r.outcome.type == FailureType::tcp_timed_out);
  CHECK(r.outcome.failed_at == Phase::connect);
  CHECK(steady_clock::now() - t0 < milliseconds(1500));
  CHECK(*r.phases.connect >= 400);
}

TEST_CASE("a server that stays silent after the request is a timeout while waiting",
          "[probe][checks][http]") {
  TestHttpServer server;
  ProbeServices s;
  auto check = s.check(http_check(server.url("/slow/2000")), milliseconds(300));
  const auto r = s.run_check(*check).at(0);
  CHECK(r.outcome.type == FailureType::timeout);
  CHECK(r.outcome.failed_at == Phase::ttfb);
}

TEST_CASE("an empty reply is http.response.invalid", "[probe][checks][http]") {
  TestHttpServer server;
  ProbeServices s;
  auto check = s.check(http_check(server.url("/close")));
  const auto r = s.run_check(*check).at(0);
  CHECK(r.outcome.type == FailureType::http_response_invalid);
}

TEST_CASE("a redirect loop is http.response.redirect_loop", "[probe][checks][http]") {
  TestHttpServer server;
  ProbeServices s;
  auto check = s.check(http_check(server.url("/redirect"), "max_redirects: 3\n"));
  CHECK(s.run_check(*check).at(0).outcome.type == FailureType::http_response_redirect_loop);
}

TEST_CASE("redirects are followed hop by hop, through the check's resolvers",
          "[probe][checks][http]") {
  TestHttpServer server;
  TestDnsServer dns;
  ProbeServices s;
  auto relative = s.check(http_check(server.url("/hop"), "expect: {body_matches: hello}\n"));
  auto r = s.run_check(*relative).at(0);
  CHECK(r.outcome.type == FailureType::ok);
  REQUIRE(r.http);
  CHECK(r.http->redirects == 1);
  CHECK(r.http->final_url == server.url("/ok"));

  // A redirect to another host name is resolved by the check's resolver (local.test exists only
  // in the test DNS server, not in /etc/hosts or the system resolver).
  auto cross = s.check("id: t\nkind: http\nurl: " +
                       server.url("/to/local.test:" + std::to_string(server.port()) + "/ok") +
                       "\nresolvers: ['" + dns.address() + "']\n");
  r = s.run_check(*cross).at(0);
  CHECK(r.outcome.type == FailureType::ok);
  CHECK(r.http->redirects == 1);
  CHECK(r.target.resolver == dns.address());
  CHECK(r.phases.dns.value_or(0) > 0);

  auto post = s.check(http_check(server.url("/see-other"),
                                 "method: POST\nbody: x=1\nexpect: {body_matches: '^GET$'}\n"));
  CHECK(s.run_check(*post).at(0).outcome.type == FailureType::ok);

  auto off =
      s.check(http_check(server.url("/hop"), "follow_redirects: false\nexpect: {status: [302]}\n"));
  r = s.run_check(*off).at(0);
  CHECK(r.outcome.type == FailureType::ok);
  CHECK(r.http->redirects == 0);
}

TEST_CASE("every resolved address gives its own result", "[probe][checks][http]") {
  TestDnsServer dns;
  ProbeServices s;
  // ok.test resolves to two TEST-NET-1 addresses nobody answers on: two results, each timing out.
  auto check = s.check(
      "id: t\nkind: http\nurl: http://ok.test:9/\nevery_address: true\nip_family: ip4\nresolvers: "
      "['" +
          dns.address() + "']\n",
      milliseconds(300));
  const auto results = s.run_check(*check);
  REQUIRE(results.size() == 2);
  CHECK(results[0].target.server_ip != results[1].target.server_ip);
  for (const auto& r : results) CHECK_FALSE(r.ok());
}

TEST_CASE("DNS names resolve through the check's resolvers before HTTP", "[probe][checks][http]") {
  TestDnsServer dns;
  TestHttpServer server;
  ProbeServices s;
  auto check =
      s.check("id: t\nkind: http\nurl: http://local.test:" + std::to_string(server.port()) +
              "/ok\nresolvers: ['" + dns.address() + "']\n");
  const auto r = s.run_check(*check).at(0);
  CHECK(r.outcome.type == FailureType::ok);
  CHECK(r.target.host == "local.test");
  CHECK(r.target.resolver == dns.address());
  auto nx =
      s.check("id: t\nkind: http\nurl: http://nx.test/\nresolvers: ['" + dns.address() + "']\n");
  const auto n = s.run_check(*nx).at(0);
  CHECK(n.outcome.type == FailureType::dns_name_not_resolved);
  CHECK(n.outcome.failed_at == Phase::dns);
}

TEST_CASE("a DNS check reports rcode, answers and the resolver", "[probe][checks][dns]") {
  TestDnsServer dns;
  ProbeServices s;
  auto ok = s.check("id: d\nkind: dns\nname: ok.test\nresolvers: ['" + dns.address() +
                    "']\nexpect: {answers: [192.0.2.2, 192.0.2.1], answers_within: [192.0.2.0/24], "
                    "min_ttl: 30s}\n");
  auto r = s.run_check(*ok).at(0);
  CHECK(r.outcome.type == FailureType::ok);
  REQUIRE(r.dns);
  CHECK(r.dns->rcode == "NOERROR");
  CHECK(r.dns->answers.size() == 2);
  CHECK(r.target.resolver == dns.address());

  auto hijack = s.check("id: d\nkind: dns\nname: ok.test\nresolvers: ['" + dns.address() +
                        "']\nexpect: {answers_within: [203.0.113.0/24]}\n");
  r = s.run_check(*hijack).at(0);
  CHECK(r.outcome.type == FailureType::assertion_failed);
  CHECK(r.outcome.assertion == "answers_within");

  auto nx = s.check("id: d\nkind: dns\nname: nx.test\nresolvers: ['" + dns.address() + "']\n");
  r = s.run_check(*nx).at(0);
  CHECK(r.outcome.type == FailureType::dns_name_not_resolved);
  CHECK(r.dns->rcode == "NXDOMAIN");

  auto servfail =
      s.check("id: d\nkind: dns\nname: fail.test\nresolvers: ['" + dns.address() + "']\n");
  r = s.run_check(*servfail).at(0);
  CHECK(r.outcome.type == FailureType::dns_failed);
  CHECK(r.dns->rcode == "SERVFAIL");

  auto expect_nx = s.check("id: d\nkind: dns\nname: nx.test\nresolvers: ['" + dns.address() +
                           "']\nexpect: {rcode: NXDOMAIN}\n");
  CHECK(s.run_check(*expect_nx).at(0).outcome.type == FailureType::ok);

  auto silent = s.check("id: d\nkind: dns\nname: drop.test\nresolvers: ['" + dns.address() + "']\n",
                        milliseconds(300));
  r = s.run_check(*silent).at(0);
  CHECK(r.outcome.type == FailureType::dns_unreachable);
}

TEST_CASE("a DNS check with several resolvers gives one result per resolver",
          "[probe][checks][dns]") {
  TestDnsServer a, b;
  ProbeServices s;
  auto check = s.check("id: d\nkind: dns\nname: ok.test\nresolvers: ['" + a.address() + "', '" +
                       b.address() + "']\n");
  const auto results = s.run_check(*check);
  REQUIRE(results.size() == 2);
  CHECK(results[0].target.resolver == a.address());
  CHECK(results[1].target.resolver == b.address());
}

TEST_CASE("a TCP check connects and runs its send/expect script", "[probe][checks][tcp]") {
  TestHttpServer server;
  ProbeServices s;
  auto ok = s.check("id: c\nkind: tcp\nhost: 127.0.0.1\nport: " + std::to_string(server.port()) +
                    "\nquery_response:\n  - send: \"GET /ok HTTP/1.0\\r\\n\\r\\n\"\n  - expect: "
                    "'^HTTP/1.[01] 200'\n");
  auto r = s.run_check(*ok).at(0);
  CHECK(r.outcome.type == FailureType::ok);
  REQUIRE(r.tcp);
  CHECK(r.tcp->bytes_received > 0);
  CHECK(r.phases.connect);

  auto wrong = s.check(
      "id: c\nkind: tcp\nhost: 127.0.0.1\nport: " + std::to_string(server.port()) +
      "\nquery_response:\n  - send: \"GET /ok HTTP/1.0\\r\\n\\r\\n\"\n  - expect: '^SSH-2.0'\n");
  r = s.run_check(*wrong).at(0);
  CHECK(r.outcome.type == FailureType::assertion_failed);
  CHECK(r.outcome.assertion == "expect[2]");

  auto refused =
      s.check("id: c\nkind: tcp\nhost: 127.0.0.1\nport: " + std::to_string(closed_port()) + "\n");
  r = s.run_check(*refused).at(0);
  CHECK(r.outcome.type == FailureType::tcp_refused);
  CHECK(r.outcome.failed_at == Phase::connect);

  BlackholeListener hole;
  auto timed_out =
      s.check("id: c\nkind: tcp\nhost: 127.0.0.1\nport: " + std::to_string(hole.port()) + "\n",
              milliseconds(300));
  r = s.run_check(*timed_out).at(0);
  CHECK(r.outcome.type == FailureType::tcp_timed_out);
}
