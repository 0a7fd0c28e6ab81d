#include "tests/support/test_servers.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <set>
#include <stdexcept>
#include <vector>

namespace vantage::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using asio::ip::udp;

// --- HTTP -------------------------------------------------------------------------------------

struct TestHttpServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::atomic<std::uint64_t>* requests;

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(io, serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      auto [ec, n] =
          co_await http::async_read(stream, buffer, req, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      ++*requests;
      const std::string target(req.target());
      http::response<http::string_body> res{http::status::ok, req.version()};
      res.set(http::field::content_type, "text/plain");
      if (target == "/ok" || target == "/") {
        res.body() = "hello";
      } else if (target.rfind("/status/", 0) == 0) {
        res.result(static_cast<unsigned>(std::stoi(target.substr(8))));
        res.body() = "status";
      } else if (target == "/json") {
        res.set(http::field::content_type, "application/json");
        res.body() = R"({"items":[{"sku":"BOOK-1"}],"n":2})";
      } else if (target.rfind("/slow/", 0) == 0) {
        asio::steady_timer t(io, std::chrono::milliseconds(std::stoi(target.substr(6))));
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        res.body() = "slow";
      } else if (target == "/close") {
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        co_return;
      } else if (target == "/redirect") {
        res.result(http::status::found);
        res.set(http::field::location, "/redirect");
      } else if (target == "/hop") {
        res.result(http::status::found);
        res.set(http::field::location, "ok");  // relative: resolves to /ok
      } else if (target.rfind("/see-other", 0) == 0) {
        res.result(http::status::see_other);
        res.set(http::field::location, "/method");
      } else if (target == "/method") {
        res.body() = std::string(req.method_string());
      } else if (target.rfind("/to/", 0) == 0) {
        res.result(http::status::moved_permanently);
        res.set(http::field::location, "http://" + target.substr(4));
      } else if (target == "/headers") {
        res.set("X-Seen-Traceparent", std::string(req["traceparent"]));
        res.set("X-Seen-Tracestate", std::string(req["tracestate"]));
        res.body() = "headers";
      } else {
        res.result(http::status::not_found);
        res.body() = "not found";
      }
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
      if (wec || !res.keep_alive()) co_return;
    }
  }
};

TestHttpServer::TestHttpServer() : impl_(std::make_unique<Impl>()) {
  impl_->requests = &requests_;
  port_ = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  thread_ = std::thread([this] { impl_->io.run(); });
}

TestHttpServer::~TestHttpServer() {
  impl_->io.stop();
  thread_.join();
}

std::string TestHttpServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

// --- DNS --------------------------------------------------------------------------------------

struct TestDnsServer::Impl {
  asio::io_context io;
  udp::socket socket{io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  std::atomic<std::uint64_t>* queries;
  mutable std::mutex ports_mutex;
  std::set<std::uint16_t> ports;

  static void u16(std::vector<std::uint8_t>& b, unsigned v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
  }

  // The response for a query, or empty to drop it; `delay_ms` set for slow answers.
  static std::vector<std::uint8_t> answer(const std::vector<std::uint8_t>& q, int& delay_ms) {
    if (q.size() < 12) return {};
    std::size_t p = 12;
    std::string name;
    while (p < q.size() && q[p] != 0) {
      const std::size_t len = q[p];
      if (p + 1 + len > q.size()) return {};
      if (!name.empty()) name += '.';
      name.append(reinterpret_cast<const char*>(&q[p + 1]), len);
      p += 1 + len;
    }
    if (p + 5 > q.size()) return {};
    const unsigned qtype = static_cast<unsigned>(q[p + 1] << 8 | q[p + 2]);
    const std::size_t question_end = p + 5;
    int rcode = 0;
    std::vector<std::uint32_t> addrs;
    if (name == "ok.test")
      addrs = {0xC0000201, 0xC0000202};
    else if (name == "local.test")
      addrs = {0x7F000001};
    else if (name == "nx.test")
      rcode = 3;
    else if (name == "fail.test")
      rcode = 2;
    else if (name == "refused.test")
      rcode = 5;
    else if (name == "slow.test") {
      addrs = {0xC0000203};
      delay_ms = 300;
    } else if (name == "drop.test") {
      return {};
    } else {
      rcode = 3;
    }
    if (qtype != 1) addrs.clear();
    std::vector<std::uint8_t> r(q.begin(), q.begin() + static_cast<long>(question_end));
    r[2] = static_cast<std::uint8_t>(0x80 | (q[2] & 0x01));  // QR, copy RD
    r[3] = static_cast<std::uint8_t>(0x80 | rcode);          // RA, rcode
    r[4] = 0;
    r[5] = 1;
    r[6] = 0;
    r[7] = static_cast<std::uint8_t>(addrs.size());
    r[8] = r[9] = r[10] = r[11] = 0;
    for (std::uint32_t a : addrs) {
      u16(r, 0xC00C);
      u16(r, 1);
      u16(r, 1);
      u16(r, 0);
      u16(r, 60);
      u16(r, 4);
      u16(r, a >> 16);
      u16(r, a & 0xFFFF);
    }
    return r;
  }

  asio::awaitable<void> loop() {
    std::vector<std::uint8_t> buf(4096);
    for (;;) {
      udp::endpoint from;
      auto [ec, n] = co_await socket.async_receive_from(asio::buffer(buf), from,
                                                        asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      {
        std::lock_guard lock(ports_mutex);
        ports.insert(from.port());
      }
      ++*queries;
      int delay = 0;
      auto r =
          answer(std::vector<std::uint8_t>(buf.begin(), buf.begin() + static_cast<long>(n)), delay);
      if (r.empty()) continue;
      asio::co_spawn(io, reply(std::move(r), from, delay), asio::detached);
    }
  }

  asio::awaitable<void> reply(std::vector<std::uint8_t> r, udp::endpoint to, int delay_ms) {
    if (delay_ms > 0) {
      asio::steady_timer t(io, std::chrono::milliseconds(delay_ms));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_await socket.async_send_to(asio::buffer(r), to, asio::as_tuple(asio::use_awaitable));
  }
};

TestDnsServer::TestDnsServer() : impl_(std::make_unique<Impl>()) {
  impl_->queries = &queries_;
  port_ = impl_->socket.local_endpoint().port();
  asio::co_spawn(impl_->io, impl_->loop(), asio::detached);
  thread_ = std::thread([this] { impl_->io.run(); });
}

std::size_t TestDnsServer::source_ports() const {
  std::lock_guard lock(impl_->ports_mutex);
  return impl_->ports.size();
}

TestDnsServer::~TestDnsServer() {
  impl_->io.stop();
  thread_.join();
}

// --- Blackhole --------------------------------------------------------------------------------

BlackholeListener::BlackholeListener() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 0) != 0) {
    throw std::runtime_error("blackhole listener");
  }
  socklen_t len = sizeof a;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  // Fill the accept queue (backlog 0 admits one) so later SYNs are dropped.
  for (int& fd : fillers_) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  ::usleep(50 * 1000);
}

BlackholeListener::~BlackholeListener() {
  for (int fd : fillers_) {
    if (fd >= 0) ::close(fd);
  }
  ::close(listen_fd_);
}

}  // namespace vantage::testing
