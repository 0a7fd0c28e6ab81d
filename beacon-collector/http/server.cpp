#include "beacon-collector/http/server.hpp"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <list>
#include <thread>
#include <utility>

#include "beacon-collector/http/beast_request.hpp"
#include "beacon-collector/http/handler.hpp"
#include "beacon-collector/metrics.hpp"
#include "common/log.hpp"
#include "common/time.hpp"

namespace vantage::collector {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::use_awaitable;
using asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(use_awaitable);

namespace {

// The TCP peer as the handler's address type.
enrich::IpAddress peer_address(const tcp::endpoint& peer) {
  enrich::IpAddress ip;
  if (auto parsed = enrich::IpAddress::parse(peer.address().to_string())) ip = *parsed;
  return ip;
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
        auto state =
            std::make_shared<State>(State{std::move(completion), asio::make_work_guard(ex)});
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
  // A connection waiting for its next request; it lives in the session's frame, the worker's
  // idle list points to it (oldest first).
  struct IdleEntry {
    beast::tcp_stream* stream;
    bool evicted = false;  // closed to make room for a new connection
  };
  struct Worker {
    int index = 0;  // 0-based, the `thread` label of its metrics
    asio::io_context io{1};
    tcp::acceptor acceptor{io};
    std::list<IdleEntry*> idle;  // connections waiting for their next request, oldest first
    int connections = 0;         // open on this worker (its thread only)
    int reserve_fd = -1;         // /dev/null, given up to shed connections when out of descriptors
    asio::steady_timer accept_pause{io};
    std::thread thread;
  };

  const CollectorConfig& config;
  Handler& handler;
  Metrics& metrics;
  std::optional<ssl::context> tls;
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<int> active{0};
  std::atomic<int> connections{0};  // open on every worker together
  int max_connections = 1;          // limits.max_connections (a restart-only key)
  std::atomic<bool> draining{false};
  log::RateLimited accept_log{std::chrono::seconds(10)};
  log::RateLimited session_log{std::chrono::seconds(10)};

  Impl(const CollectorConfig& c, Handler& h, Metrics& m, Listener listener)
      : config(c), handler(h), metrics(m) {
    if (config.tls) {
      tls.emplace(ssl::context::tls_server);
      tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      beast::error_code ec;
      tls->use_certificate_chain_file(config.tls->cert_file, ec);
      if (ec)
        throw std::runtime_error("TLS certificate \"" + config.tls->cert_file +
                                 "\": " + ec.message());
      tls->use_private_key_file(config.tls->key_file, ssl::context::pem, ec);
      if (ec) throw std::runtime_error("TLS key \"" + config.tls->key_file + "\": " + ec.message());
    }
    const tcp::endpoint ep(asio::ip::make_address(config.listen_address), config.listen_port);
    const int threads = std::max(1, config.threads);
    max_connections = std::max(1, config.limits.max_connections);
    for (int i = 0; i < threads; ++i) {
      auto w = std::make_unique<Worker>();
      w->index = i;
      const int fd = ::fcntl(listener.fd(), F_DUPFD_CLOEXEC, 0);
      if (fd < 0) {
        throw std::system_error(errno, std::generic_category(), "dup of the listening socket");
      }
      beast::error_code ec;
      w->acceptor.assign(ep.protocol(), fd, ec);
      if (ec) {
        ::close(fd);
        throw std::system_error(ec, "listening socket");
      }
      w->reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      workers.push_back(std::move(w));
    }
    // `listener` closes its descriptor now: the workers' descriptors keep the socket listening.
  }

  ~Impl() {
    for (auto& w : workers) {
      if (w->reserve_fd >= 0) ::close(w->reserve_fd);
    }
  }

  // A session must not throw (errors are data); if one does, say so and keep serving. No
  // coroutine is spawned detached: asio::detached would swallow the exception (asio#1111).
  void log_failure(std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      session_log.write(log::Level::error, "collector.session_failed", {{"error", ex.what()}});
    } catch (...) {
      session_log.write(log::Level::error, "collector.session_failed",
                        {{"error", "unknown exception"}});
    }
  }

  // Closes the connection that has waited longest for its next request; false when none waits.
  bool evict_oldest_idle(Worker& w) {
    if (w.idle.empty()) return false;
    IdleEntry* e = w.idle.front();
    w.idle.pop_front();
    e->evicted = true;
    e->stream->cancel();
    metrics.connection_closed("evicted");
    return true;
  }

  // Out of descriptors with no idle connection to close: give up the reserve descriptor, accept
  // what waits in the backlog and close it with a 503 (best effort), then take the reserve back.
  // Without this, clients wait in the backlog until they time out (libuv and nginx document
  // the same trick).
  void shed_backlog(Worker& w) {
    static constexpr std::string_view k503 =
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
        "Content-Length: 0\r\n\r\n";
    if (w.reserve_fd >= 0) {
      ::close(w.reserve_fd);
      w.reserve_fd = -1;
    }
    for (int i = 0; i < 64; ++i) {
      const int fd =
          ::accept4(w.acceptor.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) break;
      [[maybe_unused]] auto n = ::send(fd, k503.data(), k503.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      ::close(fd);
      metrics.connection_closed("no_descriptors");
    }
    w.reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }

  asio::awaitable<void> pause(Worker& w, std::chrono::milliseconds d) {
    w.accept_pause.expires_after(d);
    co_await w.accept_pause.async_wait(kTuple);
  }

  asio::awaitable<void> accept_loop(Worker& w) {
    std::chrono::milliseconds backoff{0};
    for (;;) {
      auto [ec, socket] = co_await w.acceptor.async_accept(kTuple);
      if (ec) {
        if (ec == asio::error::operation_aborted || draining) break;
        const bool out_of_descriptors = ec == asio::error::no_descriptors ||
                                        ec == boost::system::errc::too_many_files_open_in_system ||
                                        ec == asio::error::no_buffer_space ||
                                        ec == asio::error::no_memory;
        metrics.accept_failed(out_of_descriptors ? "no_descriptors" : "other");
        accept_log.write(
            log::Level::warn, "collector.accept_failed",
            {{"error", ec.message()}, {"connections", static_cast<std::int64_t>(w.connections)}});
        if (!out_of_descriptors) continue;  // ECONNABORTED and the like: the next one may work
        // EMFILE/ENFILE fail at once, every time: retrying at once spins at 100 % CPU. Make room
        // by closing the longest-idle connection, else shed the backlog and back off.
        if (evict_oldest_idle(w)) {
          co_await pause(w, std::chrono::milliseconds(1));  // let it close
          continue;
        }
        shed_backlog(w);
        backoff =
            std::clamp(backoff * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
        co_await pause(w, backoff);
        continue;
      }
      backoff = std::chrono::milliseconds(0);
      metrics.accepted(w.index);
      // Over the limit: close this worker's longest-idle connection (each thread evicts only its
      // own), else refuse. The threads share one listening socket, so the limit is counted over
      // all of them.
      if (connections.load(std::memory_order_relaxed) >= max_connections && !evict_oldest_idle(w)) {
        // Every connection is busy with a request: refuse this one rather than queue it.
        metrics.connection_closed("over_limit");
        asio::co_spawn(w.io, refuse(std::move(socket)),
                       [this](std::exception_ptr e) { log_failure(e); });
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      ++w.connections;
      connections.fetch_add(1, std::memory_order_relaxed);
      asio::co_spawn(w.io, session(w, std::move(socket)), [this, &w](std::exception_ptr e) {
        --w.connections;
        connections.fetch_sub(1, std::memory_order_relaxed);
        log_failure(e);
      });
    }
  }

  // Lingering close: a refused upload's body, or pipelined requests after a `Connection: close`
  // answer, may still be arriving; closing with unread data makes the kernel send a RST, which
  // destroys answers the client has not read yet. Send FIN, then discard what comes for a short
  // while (the raw TCP bytes: after TLS close_notify nothing more is read through TLS).
  asio::awaitable<void> lingering_close(beast::tcp_stream& stream) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) co_return;
    stream.expires_after(std::chrono::milliseconds(500));
    std::array<char, 16 * 1024> sink;
    std::size_t drained = 0;
    while (drained < (1u << 20)) {
      auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
      if (rec) break;
      drained += n;
    }
  }

  // Answers 503 before reading the request, then closes lingering (the request may be arriving).
  asio::awaitable<void> refuse(tcp::socket socket) {
    static constexpr std::string_view k503 =
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n"
        "Content-Length: 0\r\n\r\n";
    beast::tcp_stream stream(std::move(socket));
    stream.expires_after(std::chrono::seconds(1));
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(k503), kTuple);
    if (!ec) co_await lingering_close(stream);
  }

  asio::awaitable<void> session(Worker& w, tcp::socket socket) {
    ++active;
    beast::error_code ec;
    const tcp::endpoint peer = socket.remote_endpoint(ec);
    if (!ec) {
      if (tls) {
        beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *tls);
        beast::get_lowest_layer(stream).expires_after(handler.config()->limits.request_timeout);
        auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, kTuple);
        if (!hec) {
          const bool evicted = co_await serve(w, stream, peer);
          if (!evicted) {
            // Send close_notify without waiting for the client's (RFC 8446 §6.1 allows it):
            // marking the client's as received makes SSL_shutdown complete once ours is written.
            // Waiting would read pipelined application data through TLS and fail.
            SSL_set_shutdown(stream.native_handle(),
                             SSL_get_shutdown(stream.native_handle()) | SSL_RECEIVED_SHUTDOWN);
            beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
            co_await stream.async_shutdown(kTuple);
            co_await lingering_close(beast::get_lowest_layer(stream));
          }
        } else if (hec == beast::error::timeout) {
          metrics.connection_closed("slow_client");
        } else {
          metrics.connection_closed("tls_handshake_failed");
        }
      } else {
        beast::tcp_stream stream(std::move(socket));
        const bool evicted = co_await serve(w, stream, peer);
        if (!evicted) co_await lingering_close(stream);
      }
    }
    --active;
  }

  template <typename Stream>
  asio::awaitable<bool> write(Stream& stream, Response res, unsigned version, bool keep_alive,
                              bool head, const Route& route, std::chrono::milliseconds timeout) {
    http::response<http::string_body> out(static_cast<http::status>(res.status), version);
    out.set(http::field::server, "vantage-collector");
    for (auto& [k, v] : res.headers) out.insert(k, v);
    out.body() = std::move(res.body);
    out.keep_alive(keep_alive && !res.close && !draining);
    out.prepare_payload();
    if (head) out.body().clear();
    beast::get_lowest_layer(stream).expires_after(timeout);
    auto [ec, n] = co_await http::async_write(stream, out, kTuple);
    handler.observe(route, res.status);
    co_return !ec && out.keep_alive();
  }

  // Serves requests until the connection should close; true when it was closed as the
  // longest-idle one to make room (nothing unread, no goodbye needed).
  template <typename Stream>
  asio::awaitable<bool> serve(Worker& w, Stream& stream, const tcp::endpoint& peer) {
    beast::flat_buffer buffer;
    auto& lowest = beast::get_lowest_layer(stream);
    for (;;) {
      // The limits of the settings in force now (SIGHUP may change them between requests).
      const std::shared_ptr<const CollectorConfig> settings = handler.config();
      const Limits& limits = settings->limits;
      if (buffer.size() == 0) {
        // Between requests: the idle deadline. Drain closes these connections first, and a new
        // connection over max_connections closes the one idle longest.
        if (draining) break;
        lowest.expires_after(limits.idle_timeout);
        IdleEntry entry{&lowest};
        auto it = w.idle.insert(w.idle.end(), &entry);
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(16 * 1024), kTuple);
        if (entry.evicted) {
          // Closed to make room — unless its next request had already arrived (the read
          // completed before the cancel): then serve it.
          if (ec || n == 0) co_return true;
        } else {
          w.idle.erase(it);
        }
        if (ec) {
          if (ec == beast::error::timeout) metrics.connection_closed("idle");
          break;
        }
        buffer.commit(n);
      }
      // From the first byte: the request deadline covers headers and body (slowloris).
      lowest.expires_after(limits.request_timeout);
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
      // No body limit while the header is parsed: Beast would fail a Content-Length over it
      // with body_limit (a 400 here). The handler answers that with 413, which tells a probe
      // to halve its batch; the endpoint's limit applies once the route is known.
      parser.body_limit(boost::none);
      auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, kTuple);
      Route route;
      if (hec) {
        if (hec == beast::error::timeout) {
          metrics.connection_closed("slow_client");
        } else if (hec == http::error::header_limit) {
          co_await write(stream, handler.protocol_error(431, "request headers too large"), 11,
                         false, false, route, limits.request_timeout);
        } else if (hec == http::error::body_limit) {
          co_await write(stream, handler.protocol_error(413, "request body too large"), 11, false,
                         false, route, limits.request_timeout);
        } else if (hec != http::error::end_of_stream && hec != asio::error::eof &&
                   hec != asio::error::connection_reset) {
          co_await write(stream,
                         handler.protocol_error(400, "malformed HTTP request: " + hec.message()),
                         11, false, false, route, limits.request_timeout);
        }
        break;
      }
      Request req = to_request(parser, peer_address(peer));
      const unsigned version = parser.get().version();
      const bool keep_alive = parser.get().keep_alive();
      const bool head = parser.get().method() == http::verb::head;
      if (auto early = handler.on_headers(req, route)) {
        // The body was not read: the connection can only go on if there was none.
        const bool has_body =
            parser.chunked() || (parser.content_length() && *parser.content_length() > 0);
        if (has_body) early->close = true;
        if (!co_await write(stream, std::move(*early), version, keep_alive, head, route,
                            limits.request_timeout))
          break;
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
                         false, false, route, limits.request_timeout);
        } else {
          metrics.connection_closed("error");
        }
        break;
      }
      req.body = std::move(parser.get().body());
      Response res = co_await async_on_body(handler, std::move(req), route, use_awaitable);
      if (!co_await write(stream, std::move(res), version, keep_alive, false, route,
                          limits.request_timeout))
        break;
    }
    co_return false;
  }
};

namespace {
std::runtime_error listen_error(const CollectorConfig& config, const beast::error_code& ec) {
  const bool v6 = config.listen_address.find(':') != std::string::npos;
  const std::string where =
      v6 ? "[" + config.listen_address + "]:" + std::to_string(config.listen_port)
         : config.listen_address + ":" + std::to_string(config.listen_port);
  if (ec == asio::error::address_in_use) {
    return std::runtime_error("cannot listen on " + where +
                              ": address in use (another collector?)");
  }
  return std::runtime_error("cannot listen on " + where + ": " + ec.message());
}
}  // namespace

Listener::Listener(const CollectorConfig& config) {
  // Exclusive listen: ONE socket, bound without SO_REUSEPORT, so that a second collector (or any
  // other process) on the same address fails with EADDRINUSE instead of silently taking a share
  // of the connections. SO_REUSEADDR only allows binding over TIME_WAIT connections of an earlier
  // run; on Linux it never lets two sockets listen on one address.
  asio::io_context io{1};
  const auto address = asio::ip::make_address(config.listen_address);
  const tcp::endpoint ep(address, config.listen_port);
  tcp::acceptor acceptor(io);
  beast::error_code ec;
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  // Bound here (a collector already listening on the address makes this fail before the store
  // is opened); listen() only in Server::start(), once the store is ready, so that nothing
  // connects to a collector whose tables do not exist yet.
  if (!ec) acceptor.bind(ep, ec);
  if (ec) throw listen_error(config, ec);
  fd_ = acceptor.release(ec);
  if (ec) throw std::system_error(ec, "listening socket");
}

Listener::~Listener() {
  if (fd_ >= 0) ::close(fd_);
}

Listener::Listener(Listener&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

Server::Server(const CollectorConfig& config, Handler& handler, Metrics& metrics)
    : Server(config, handler, metrics, Listener(config)) {}

Server::Server(const CollectorConfig& config, Handler& handler, Metrics& metrics, Listener listener)
    : impl_(std::make_unique<Impl>(config, handler, metrics, std::move(listener))) {}

Server::~Server() { shutdown(std::chrono::milliseconds(0)); }

std::uint16_t Server::port() const noexcept {
  beast::error_code ec;
  return impl_->workers.front()->acceptor.local_endpoint(ec).port();
}

int Server::open_connections() const noexcept { return impl_->active.load(); }

void Server::start() {
  // One listen() for the socket every worker holds a descriptor of. Two collectors may both
  // have bound the address while neither listened yet (SO_REUSEADDR): the second listen() fails.
  beast::error_code ec;
  impl_->workers.front()->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw listen_error(impl_->config, ec);
  for (auto& w : impl_->workers) {
    asio::co_spawn(w->io, impl_->accept_loop(*w), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);  // only at start-up (bad_alloc): end the program loudly
    });
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
      w->accept_pause.cancel();
      for (auto* e : w->idle) e->stream->cancel();
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
