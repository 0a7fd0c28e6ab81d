// In-process servers for hermetic tests of the network core: an HTTP/1.1 server and a DNS server
// on 127.0.0.1 with ports picked by the kernel, each on its own thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace vantage::testing {

// GET /ok -> 200 "hello"; /status/<code> -> that status; /json ->
// {"items":[{"sku":"BOOK-1"}],"n":2}; /slow/<ms> -> 200 after a delay; /close -> closes without
// answering; /redirect -> 302 to itself; /headers -> 200 echoing the request's traceparent in
// X-Seen-Traceparent; /hop -> 302 to the relative "ok"; /see-other -> 303 to /method, which answers
// with the request method; /to/<host:port/path> -> 301 to http://<host:port/path>.
class TestHttpServer {
 public:
  TestHttpServer();
  ~TestHttpServer();
  std::uint16_t port() const noexcept { return port_; }
  std::string url(const std::string& path) const;
  std::uint64_t requests() const noexcept { return requests_.load(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
  std::atomic<std::uint64_t> requests_{0};
  std::thread thread_;
};

// Answers A queries: ok.test -> 192.0.2.1 and 192.0.2.2 (TTL 60); nx.test -> NXDOMAIN;
// fail.test -> SERVFAIL; refused.test -> REFUSED; slow.test -> 192.0.2.3 after 300 ms;
// drop.test -> never answers; local.test -> 127.0.0.1. AAAA queries get an empty NOERROR answer.
class TestDnsServer {
 public:
  TestDnsServer();
  ~TestDnsServer();
  std::uint16_t port() const noexcept { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::uint64_t queries() const noexcept { return queries_.load(); }
  // Distinct UDP source ports the queries came from so far.
  std::size_t source_ports() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
  std::atomic<std::uint64_t> queries_{0};
  std::thread thread_;
};

// A TCP listener whose accept queue is full: connects to it time out (SYNs are dropped).
class BlackholeListener {
 public:
  BlackholeListener();
  ~BlackholeListener();
  std::uint16_t port() const noexcept { return port_; }

 private:
  int listen_fd_ = -1;
  int fillers_[4] = {-1, -1, -1, -1};
  std::uint16_t port_ = 0;
};

}  // namespace vantage::testing
