// vantage-collector's HTTP/1.1 server (Boost.Beast; Beast and Asio stay in server.cpp).
// One io_context per configured thread. Exclusive listen: ONE listening socket, bound without
// SO_REUSEPORT (so no other process can join the address: a second collector fails with
// "cannot listen on <address>: address in use (another collector?)"), dup()ed to every thread's
// acceptor; whichever thread is free accepts. No state is shared between threads but the
// Handler's (its settings snapshot, reloaded on SIGHUP: timeouts and the header limit are read
// from it per request) and the connection count.
// Keep-alive; optional TLS (cert/key from the config); per connection an idle deadline (between
// requests) and a request deadline (first byte -> whole request read: slow clients are cut off
// and counted); header size limit (431); body limit per endpoint (413, also for a Content-Length
// the parser sees first).
// Descriptors: at most limits.max_connections open (all threads together); a new connection
// over it closes its thread's longest-idle keep-alive connection, or — when none is idle there —
// gets a 503 and is closed. accept() failing with EMFILE/ENFILE closes the
// longest-idle connection too, or sheds the backlog with a reserve descriptor and backs off
// (10 ms doubling to 1 s) instead of spinning; its log line is rate-limited (one per 10 s with a
// count). Every close is a lingering one (FIN, then the client's remaining bytes discarded for
// up to 500 ms), after TLS close_notify too, so answers already sent are not reset.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include "beacon-collector/config.hpp"

namespace vantage::collector {

class Handler;
class Metrics;

// The socket at `listen`, bound exclusively (no SO_REUSEPORT); Server::start() makes it listen.
// Made first at start-up, before the store is opened, so that a second collector on an address
// a collector listens on fails before it touches anything (and nothing connects before the
// store's tables exist). Throws std::runtime_error: "cannot listen on
// 127.0.0.1:8080: address in use (another collector?)", or the system's reason.
class Listener {
 public:
  explicit Listener(const CollectorConfig& config);
  ~Listener();
  Listener(Listener&& other) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  Listener& operator=(Listener&&) = delete;
  int fd() const noexcept { return fd_; }

 private:
  int fd_ = -1;
};

class Server {
 public:
  // Binds at once; throws std::runtime_error when the address cannot be bound ("cannot listen
  // on 127.0.0.1:8080: address in use (another collector?)", or the system's reason) or the TLS
  // certificate or key cannot be loaded (start-up).
  Server(const CollectorConfig& config, Handler& handler, Metrics& metrics);
  // Serves on `listener` (each thread's acceptor gets a dup() of it).
  Server(const CollectorConfig& config, Handler& handler, Metrics& metrics, Listener listener);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::uint16_t port() const noexcept;
  // Connections open now (all threads).
  int open_connections() const noexcept;
  // Listens (throws std::runtime_error "cannot listen on …: address in use (another
  // collector?)" when another socket listened on the address first) and starts the worker
  // threads.
  void start();
  // Graceful shutdown: stops accepting, lets requests in flight finish (their responses ask
  // clients to close), closes idle connections, waits at most `timeout`, then stops the loops
  // and joins the threads.
  void shutdown(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vantage::collector
