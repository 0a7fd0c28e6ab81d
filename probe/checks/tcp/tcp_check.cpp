#include "probe/checks/tcp/tcp_check.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "common/config_node.hpp"
#include "probe/checks/common_config.hpp"
#include "probe/net/failure_mapping.hpp"

namespace vantage::probe::checks::tcp {

namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;
using asio::ip::tcp;

TcpConfig parse_tcp_config(const ConfigNode& node) {
  expect_check_keys(node, {"host", "port", "ip_family", "resolvers", "query_response"});
  TcpConfig c;
  c.host = node.require("host").as_nonempty_string();
  c.port = static_cast<std::uint16_t>(node.require("port").as_int(1, 65535));
  if (auto v = node.get("ip_family")) c.ip_family = parse_ip_family(*v);
  if (auto v = node.get("resolvers")) c.resolvers = parse_resolvers(*v, true);
  if (auto v = node.get("query_response")) {
    for (const auto& item : v->items()) {
      item.expect_keys({"send", "expect"});
      TcpStep step;
      if (auto s = item.get("send")) step.send = s->as_string();
      if (auto e = item.get("expect")) step.expect = Pattern::parse(*e);
      if (!step.send && !step.expect) item.fail("a step needs send or expect");
      if (step.send && step.expect) item.fail("give send and expect as separate steps");
      c.steps.push_back(std::move(step));
    }
  }
  return c;
}

TcpCheck::TcpCheck(CheckCommon common, TcpConfig config)
    : Check(std::move(common)), config_(std::move(config)) {}

std::string TcpCheck::describe() const {
  return "tcp " + config_.host + ":" + std::to_string(config_.port);
}

CheckPtr make_tcp_check(CheckCommon common, const ConfigNode& node) {
  return std::make_unique<TcpCheck>(std::move(common), parse_tcp_config(node));
}

asio::awaitable<std::vector<CheckResult>> TcpCheck::run(RunContext& ctx) {
  const auto start = std::chrono::steady_clock::now();
  CheckResult r;
  r.target.host = config_.host;
  r.target.port = config_.port;
  auto finish = [&]() -> std::vector<CheckResult> {
    r.phases.total = to_ms(std::chrono::steady_clock::now() - start);
    return {std::move(r)};
  };
  auto fail = [&](FailureType type, Phase phase, std::string detail) {
    r.outcome.type = type;
    r.outcome.failed_at = phase;
    r.outcome.detail = std::move(detail);
  };

  const Resolution res = co_await ctx.services.resolvers.resolve(config_.host, config_.ip_family,
                                                                 config_.resolvers, ctx.deadline);
  r.target.resolver = res.resolver;
  r.phases.dns = res.dns_ms;
  if (res.failure) {
    fail(res.failure->type, res.failure->phase, res.failure->detail);
    co_return finish();
  }

  tcp::socket socket(ctx.services.io);
  asio::steady_timer timer(ctx.services.io);
  timer.expires_at(ctx.deadline);
  const auto connect_start = std::chrono::steady_clock::now();
  boost::system::error_code last_error;
  bool connected = false;
  bool timed_out = false;
  for (const auto& address : res.addresses) {
    boost::system::error_code parse_ec;
    const auto ip = asio::ip::make_address(address, parse_ec);
    if (parse_ec) continue;
    r.target.server_ip = address;
    socket = tcp::socket(ctx.services.io);
    auto outcome = co_await (socket.async_connect(tcp::endpoint(ip, config_.port),
                                                  asio::as_tuple(asio::use_awaitable)) ||
                             timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (outcome.index() == 1) {
      timed_out = true;
      break;
    }
    last_error = std::get<0>(std::get<0>(outcome));
    if (!last_error) {
      connected = true;
      break;
    }
  }
  r.phases.connect = to_ms(std::chrono::steady_clock::now() - connect_start);
  if (!connected) {
    if (timed_out) {
      fail(FailureType::tcp_timed_out, Phase::connect, "no connection before the deadline");
    } else {
      fail(net::map_socket_errno(last_error.value()), Phase::connect, last_error.message());
    }
    co_return finish();
  }

  // The scripted exchange.
  TcpFacts facts;
  std::string received;
  const auto exchange_start = std::chrono::steady_clock::now();
  bool first_byte = false;
  bool peer_closed = false;
  std::size_t step_index = 0;
  for (const auto& step : config_.steps) {
    ++step_index;
    if (step.send) {
      auto outcome = co_await (asio::async_write(socket, asio::buffer(*step.send),
                                                 asio::as_tuple(asio::use_awaitable)) ||
                               timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (outcome.index() == 1) {
        fail(FailureType::timeout, Phase::ttfb,
             "sending step " + std::to_string(step_index) + " timed out");
        break;
      }
      const auto ec = std::get<0>(std::get<0>(outcome));
      if (ec) {
        fail(net::map_socket_errno(ec.value()), Phase::ttfb, ec.message());
        break;
      }
      continue;
    }
    // expect: read until the pattern matches, the peer closes, or the deadline.
    bool matched = step.expect->search(received);
    while (!matched && !peer_closed) {
      char buf[4096];
      auto outcome = co_await (
          socket.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable)) ||
          timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (outcome.index() == 1) break;
      auto [ec, n] = std::get<0>(outcome);
      if (n > 0) {
        if (!first_byte) {
          r.phases.ttfb = to_ms(std::chrono::steady_clock::now() - exchange_start);
          first_byte = true;
        }
        facts.bytes_received += static_cast<std::int64_t>(n);
        if (received.size() < 64 * 1024)
          received.append(buf, std::min<std::size_t>(n, 64 * 1024 - received.size()));
        matched = step.expect->search(received);
      }
      if (ec == asio::error::eof) {
        peer_closed = true;
      } else if (ec) {
        fail(net::map_socket_errno(ec.value()), first_byte ? Phase::transfer : Phase::ttfb,
             ec.message());
        break;
      }
    }
    const std::string name = "expect[" + std::to_string(step_index) + "]";
    r.assertions.push_back({name, matched, step.expect->source(), clip(received)});
    if (!r.outcome.ok()) break;
    if (!matched) {
      if (peer_closed) {
        fail(
            FailureType::assertion_failed, Phase::assertion,
            "the server closed the connection before sending a match for " + step.expect->source());
      } else if (std::chrono::steady_clock::now() >= ctx.deadline) {
        fail(FailureType::timeout, first_byte ? Phase::transfer : Phase::ttfb,
             "no match for " + step.expect->source() + " before the deadline");
      } else {
        fail(FailureType::assertion_failed, Phase::assertion,
             "no match for " + step.expect->source());
      }
      r.outcome.assertion = name;
      break;
    }
  }
  facts.received = clip(received);
  if (!config_.steps.empty()) r.tcp = std::move(facts);
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
  co_return finish();
}

}  // namespace vantage::probe::checks::tcp
