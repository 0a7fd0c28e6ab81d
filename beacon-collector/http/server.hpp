// vantage-collector's HTTP/1.1 server (Boost.Beast; Beast and Asio stay in server.cpp).
// One io_context per configured thread, each with its own SO_REUSEPORT acceptor, so the kernel
// spreads connections and no state is shared between threads but the Handler's.
// Keep-alive; optional TLS (cert/key from the config); per connection an idle deadline (between
// requests) and a request deadline (first byte -> whole request read: slow clients are cut off
// and counted); header size limit (431); body limit per endpoint (413).
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
