#include "beacon-collector/http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <array>
#include <list>
#include <thread>

#include "beacon-collector/http/handler.hpp"
#include "beacon-collector/metrics.hpp"
#include "common/log.hpp"

namespace vantage::collector {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using asio::use_awaitable;
constexpr auto kTuple = asio::as_tuple(use_awaitable);

namespace {

template <typename Key>
std::string header(const http::request<http::string_body>& req, Key f) {
  auto it = req.find(f);
  return it == req.end() ? std::string() : std::string(it->value());
}

Request to_request(const http::request_parser<http::string_body>& parser,
                   const tcp::endpoint& peer) {
  const auto& m = parser.get();
  Request r;
  r.method = std::string(m.method_string());
  r.target = std::string(m.target());
  r.origin = header(m, http::field::origin);
  r.content_type = header(m, http::field::content_type);
  r.authorization = header(m, http::field::authorization);
  r.x_forwarded_for = header(m, "X-Forwarded-For");
  r.forwarded = header(m, http::field::forwarded);
  r.user_agent = header(m, http::field::user_agent);
  if (auto len = parser.content_length()) r.content_length = *len;
  const auto a = peer.address();
  if (auto ip = enrich::IpAddress::parse(a.to_string())) r.peer = *ip;
  return r;
}

// Awaits Handler::on_body's answer, which may come from the store's writer thread.
template <typename Token>
auto async_on_body(Handler& handler, Request req, const Route& route, Token&& token) {
  return asio::async_initiate<Token, void(Response)>(
      [&handler, &route](auto completion, Request request) {
        auto ex = asio::get_associated_executor(completion);
        using Completion = decltype(completion);
        struct State {
          Completion completion;
          asio::executor_work_guard<decltype(ex)> work;
        };
        auto state = std::make_shared<State>(State{std::move(completion), asio::make_work_guard(ex)});
        handler.on_body(std::move(request), route, [state, ex](Response r) {
          asio::post(ex, [state, r = std::move(r)]() mutable {
            state->work.reset();
            std::move(state->completion)(std::move(r));
          });
        });
      },
      token, std::move(req));
}

}  // namespace

struct Server::Impl {
  struct Worker {
    asio::io_context io{1};
    tcp::acceptor acceptor{io};
    std::list<beast::tcp_stream*> idle;  // connections waiting for their next request
    std::thread thread;
  };

  const CollectorConfig& config;
  Handler& handler;
  Metrics& metrics;
  std::optional<ssl::context> tls;
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<int> active{0};
  std::atomic<bool> draining{false};

  Impl(const CollectorConfig& c, Handler& h, Metrics& m) : config(c), handler(h), metrics(m) {
    if (config.tls) {
      tls.emplace(ssl::context::tls_server);
      tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      beast::error_code ec;
      tls->use_certificate_chain_file(config.tls->cert_file, ec);
      if (ec) throw std::runtime_error("TLS certificate \"" + config.tls->cert_file + "\": " + ec.message());
      tls->use_private_key_file(config.tls->key_file, ssl::context::pem, ec);
      if (ec) throw std::runtime_error("TLS key \"" + config.tls->key_file + "\": " + ec.message());
    }
    std::uint16_t port = config.listen_port;
    const auto address = asio::ip::make_address(config.listen_address);
    for (int i = 0; i < std::max(1, config.threads); ++i) {
      auto w = std::make_unique<Worker>();
      const tcp::endpoint ep(address, port);
      w->acceptor.open(ep.protocol());
      w->acceptor.set_option(tcp::acceptor::reuse_address(true));
      w->acceptor.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
      w->acceptor.bind(ep);
      w->acceptor.listen(asio::socket_base::max_listen_connections);
      port = w->acceptor.local_endpoint().port();  // port 0: the others join the chosen port
      workers.push_back(std::move(w));
    }
  }

  asio::awaitable<void> accept_loop(Worker& w) {
    for (;;) {
      auto [ec, socket] = co_await w.acceptor.async_accept(kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || draining) break;
        log::warn("collector.accept_failed", {{"error", ec.message()}});
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      asio::co_spawn(w.io, session(w, std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> session(Worker& w, tcp::socket socket) {
    ++active;
    beast::error_code ec;
    const tcp::endpoint peer = socket.remote_endpoint(ec);
    if (!ec) {
      if (tls) {
        beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *tls);
        beast::get_lowest_layer(stream).expires_after(config.limits.request_timeout);
        auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, kTuple);
        if (!hec) {
          co_await serve(w, stream, peer);
          beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
          co_await stream.async_shutdown(kTuple);
        } else if (hec == beast::error::timeout) {
          metrics.connection_closed("slow_client");
        } else {
          metrics.connection_closed("tls_handshake_failed");
        }
      } else {
        beast::tcp_stream stream(std::move(socket));
        co_await serve(w, stream, peer);
        // Lingering close: a refused upload's body may still be arriving; closing with unread
        // data makes the kernel send a RST, which can destroy the 413/415/429 answer before the
        // client reads it. Send FIN, then discard what comes for a short while.
        stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        if (!ec) {
          stream.expires_after(std::chrono::milliseconds(500));
          std::array<char, 16 * 1024> sink;
          std::size_t drained = 0;
          while (drained < (1u << 20)) {
            auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
            if (rec) break;
            drained += n;
          }
        }
      }
    }
    --active;
  }

  template <typename Stream>
  asio::awaitable<bool> write(Stream& stream, Response res, unsigned version, bool keep_alive,
                              bool head, const Route& route) {
    http::response<http::string_body> out(static_cast<http::status>(res.status), version);
    out.set(http::field::server, "vantage-collector");
    for (auto& [k, v] : res.headers) out.insert(k, v);
    out.body() = std::move(res.body);
    out.keep_alive(keep_alive && !res.close && !draining);
    out.prepare_payload();
    if (head) out.body().clear();
    beast::get_lowest_layer(stream).expires_after(config.limits.request_timeout);
    auto [ec, n] = co_await http::async_write(stream, out, kTuple);
    handler.observe(route, res.status);
    co_return !ec && out.keep_alive();
  }

  template <typename Stream>
  asio::awaitable<void> serve(Worker& w, Stream& stream, const tcp::endpoint& peer) {
    beast::flat_buffer buffer;
    auto& lowest = beast::get_lowest_layer(stream);
    for (;;) {
      if (buffer.size() == 0) {
        // Between requests: the idle deadline. Drain closes these connections first.
        if (draining) break;
        lowest.expires_after(config.limits.idle_timeout);
        auto it = w.idle.insert(w.idle.end(), &lowest);
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(16 * 1024), kTuple);
        w.idle.erase(it);
        if (ec) {
          if (ec == beast::error::timeout) metrics.connection_closed("idle");
          break;
        }
        buffer.commit(n);
      }
      // From the first byte: the request deadline covers headers and body (slowloris).
      lowest.expires_after(config.limits.request_timeout);
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(config.limits.max_header_bytes));
      parser.body_limit(config.limits.max_results_body_bytes);
      auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, kTuple);
      Route route;
      if (hec) {
        if (hec == beast::error::timeout) {
          metrics.connection_closed("slow_client");
        } else if (hec == http::error::header_limit) {
          co_await write(stream, handler.protocol_error(431, "request headers too large"), 11,
                         false, false, route);
        } else if (hec != http::error::end_of_stream && hec != asio::error::eof &&
                   hec != asio::error::connection_reset) {
          co_await write(stream, handler.protocol_error(400, "malformed HTTP request: " + hec.message()),
                         11, false, false, route);
        }
        break;
      }
      Request req = to_request(parser, peer);
      const unsigned version = parser.get().version();
      const bool keep_alive = parser.get().keep_alive();
      const bool head = parser.get().method() == http::verb::head;
      if (auto early = handler.on_headers(req, route)) {
        // The body was not read: the connection can only go on if there was none.
        const bool has_body = parser.chunked() || (parser.content_length() && *parser.content_length() > 0);
        if (has_body) early->close = true;
        if (!co_await write(stream, std::move(*early), version, keep_alive, head, route)) break;
        continue;
      }
      parser.body_limit(handler.max_body_bytes(route));
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        // curl and others wait (1 s in curl) for this before sending a body; refusals were
        // answered above without it, so the body is never sent for them.
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        auto [cec, cn] = co_await asio::async_write(stream, asio::buffer(kContinue), kTuple);
        if (cec) break;
      }
      auto [bec, bn] = co_await http::async_read(stream, buffer, parser, kTuple);
      if (bec) {
        if (bec == beast::error::timeout) {
          metrics.connection_closed("slow_client");
        } else if (bec == http::error::body_limit) {
          co_await write(stream, handler.protocol_error(413, "request body too large"), version,
                         false, false, route);
        } else {
          metrics.connection_closed("error");
        }
        break;
      }
      req.body = std::move(parser.get().body());
      Response res = co_await async_on_body(handler, std::move(req), route, use_awaitable);
      if (!co_await write(stream, std::move(res), version, keep_alive, false, route)) break;
    }
  }
};

Server::Server(const CollectorConfig& config, Handler& handler, Metrics& metrics)
    : impl_(std::make_unique<Impl>(config, handler, metrics)) {}

Server::~Server() { shutdown(std::chrono::milliseconds(0)); }

std::uint16_t Server::port() const noexcept {
  beast::error_code ec;
  return impl_->workers.front()->acceptor.local_endpoint(ec).port();
}

void Server::start() {
  for (auto& w : impl_->workers) {
    asio::co_spawn(w->io, impl_->accept_loop(*w), asio::detached);
    w->thread = std::thread([io = &w->io] { io->run(); });
  }
}

void Server::shutdown(std::chrono::milliseconds timeout) {
  if (impl_->draining.exchange(true)) return;
  impl_->handler.set_draining();
  for (auto& w : impl_->workers) {
    asio::post(w->io, [w = w.get()] {
      beast::error_code ec;
      w->acceptor.close(ec);
      for (auto* s : w->idle) s->cancel();
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (impl_->active > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& w : impl_->workers) {
    w->io.stop();
    if (w->thread.joinable()) w->thread.join();
  }
}

}  // namespace vantage::collector
