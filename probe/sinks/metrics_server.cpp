#include "probe/sinks/metrics_server.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/log.hpp"

namespace vantage::probe::sinks {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

namespace {
// Scrapers are few (a Prometheus pair, a person with curl): more connections than this at once
// are refused, so a misbehaving client cannot take the probe's descriptors.
constexpr int kMaxConnections = 64;
}  // namespace

struct MetricsServer::Impl : std::enable_shared_from_this<Impl> {
  asio::io_context& io;
  tcp::acceptor acceptor;
  asio::steady_timer pause;
  RenderFn render;
  bool stopped = false;
  int connections = 0;
  log::RateLimited accept_log{std::chrono::seconds(10)};

  Impl(asio::io_context& i, RenderFn r) : io(i), acceptor(i), pause(i), render(std::move(r)) {}

  asio::awaitable<void> accept_loop() {
    auto self = shared_from_this();
    std::chrono::milliseconds backoff{0};
    while (!stopped) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec == asio::error::operation_aborted || stopped) break;
        accept_log.write(log::Level::warn, "metrics.accept_failed", {{"error", ec.message()}});
        // EMFILE and friends fail at once, every time: back off instead of spinning.
        backoff =
            std::clamp(backoff * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
        pause.expires_after(backoff);
        co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      backoff = std::chrono::milliseconds(0);
      if (connections >= kMaxConnections) {
        accept_log.write(log::Level::warn, "metrics.too_many_connections",
                         {{"limit", static_cast<std::int64_t>(kMaxConnections)}});
        beast::error_code ignored;
        socket.close(ignored);
        continue;
      }
      ++connections;
      asio::co_spawn(io, serve(std::move(socket)),
                     [self](std::exception_ptr) { --self->connections; });
    }
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::empty_body> parser;
      parser.header_limit(16 * 1024);
      stream.expires_after(std::chrono::seconds(10));
      auto [ec, n] =
          co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      const auto& req = parser.get();
      http::response<http::string_body> res;
      res.version(req.version());
      res.set(http::field::server, "vantage-probe");
      const auto target = req.target();
      const auto path = target.substr(0, target.find('?'));
      if (req.method() != http::verb::get && req.method() != http::verb::head) {
        res.result(http::status::method_not_allowed);
        res.set(http::field::allow, "GET, HEAD");
        res.body() = "method not allowed\n";
      } else if (path == "/metrics") {
        res.result(http::status::ok);
        res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        res.body() = render();
      } else if (path == "/healthz") {
        res.result(http::status::ok);
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.body() = "ok\n";
      } else {
        res.result(http::status::not_found);
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.body() = "not found: try /metrics\n";
      }
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      if (req.method() == http::verb::head) res.body().clear();
      auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      if (wec || !res.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }
};

MetricsServer::MetricsServer(asio::io_context& io, const std::string& address, std::uint16_t port,
                             RenderFn render)
    : impl_(std::make_shared<Impl>(io, std::move(render))) {
  const tcp::endpoint ep(asio::ip::make_address(address), port);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  // No detached coroutine (asio#1111 swallows its exception): a failure is logged.
  asio::co_spawn(io, impl_->accept_loop(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::error("metrics.server_failed", {{"error", ex.what()}});
    }
  });
}

MetricsServer::~MetricsServer() { stop(); }

std::uint16_t MetricsServer::port() const noexcept {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void MetricsServer::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  beast::error_code ignored;
  impl_->acceptor.cancel(ignored);
  impl_->acceptor.close(ignored);
  impl_->pause.cancel();
}

}  // namespace vantage::probe::sinks
