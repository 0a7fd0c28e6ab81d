// vantage-collector's HTTP/1.1 server (Boost.Beast; Beast and Asio stay in server.cpp).
// One io_context per configured thread, each with its own SO_REUSEPORT acceptor, so the kernel
// spreads connections and no state is shared between threads but the Handler's.
// Keep-alive; optional TLS (cert/key from the config); per connection an idle deadline (between
// requests) and a request deadline (first byte -> whole request read: slow clients are cut off
// and counted); header size limit (431); body limit per endpoint (413, also for a Content-Length
// the parser sees first).
// Descriptors: at most limits.max_connections open (split evenly over the threads); a new
// connection over it closes the longest-idle keep-alive connection, or — when every connection
// is busy — gets a 503 and is closed. accept() failing with EMFILE/ENFILE closes the
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

class Server {
 public:
  // Binds at once; throws std::system_error when the address cannot be bound and
  // std::runtime_error when the TLS certificate or key cannot be loaded (start-up).
  Server(const CollectorConfig& config, Handler& handler, Metrics& metrics);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::uint16_t port() const noexcept;
  // Connections open now (all threads).
  int open_connections() const noexcept;
  // Starts the worker threads.
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
