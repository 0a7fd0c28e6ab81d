// Wires the collector together: GeoIP, the SQLite store and its writer, metrics, the request
// handler and the HTTP server. run() blocks until SIGTERM/SIGINT (graceful shutdown: stop
// accepting, finish requests in flight, commit everything queued) and reloads the GeoIP
// databases on SIGHUP.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "beacon-collector/config.hpp"

namespace vantage::collector {

class CollectorApp {
 public:
  // Opens the databases and the store and binds the listening socket. Throws (start-up) with a
  // message naming the file or address that failed.
  explicit CollectorApp(CollectorConfig config);
  ~CollectorApp();

  std::uint16_t port() const noexcept;
  // Serves until SIGTERM or SIGINT. The signals are blocked in every thread the app starts.
  // Returns the process exit code (0).
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vantage::collector
