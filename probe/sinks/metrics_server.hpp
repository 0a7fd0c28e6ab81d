// A small HTTP/1.1 server on the probe's event loop for Prometheus scrapes:
// GET /metrics (text format 0.0.4), GET /healthz ("ok"), anything else 404. Boost.Beast stays in
// metrics_server.cpp. Slow clients are cut off after 10 s per request.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace vantage::probe::sinks {

class MetricsServer {
 public:
  using RenderFn = std::function<std::string()>;
  // Binds and listens at once; throws std::system_error if the address cannot be bound
  // (start-up). Port 0 picks a free port (see port()).
  MetricsServer(boost::asio::io_context& io, const std::string& address, std::uint16_t port,
                RenderFn render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  std::uint16_t port() const noexcept;
  // Stops accepting; open connections end after their current request.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace vantage::probe::sinks
