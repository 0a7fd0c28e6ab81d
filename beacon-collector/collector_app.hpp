// Wires the collector together: GeoIP, the SQLite store and its writer, metrics, the request
// handler and the HTTP server. run() blocks until SIGTERM/SIGINT (graceful shutdown: stop
// accepting, finish requests in flight, commit everything queued). On SIGHUP it re-reads and
// validates the configuration file: on error it logs `collector.reload_failed` {file, error:
// the exact ConfigError text} and keeps the running configuration; on success the requests that
// start from then on use the new tokens, allowed origins, limits, paths, trusted proxies,
// privacy prefixes, fleet.config_dir, log level and GeoIP databases (re-opened: the same files
// after geoipupdate, or new paths). Keys that need a restart (listen, threads, tls, store.*,
// limits.max_connections) keep their running value with a `collector.reload_needs_restart`
// {key} warning. docs/collector.md#reload.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "beacon-collector/config.hpp"

namespace vantage::collector {

class CollectorApp {
 public:
  // Opens the databases and the store and binds the listening socket. Throws (start-up) with a
  // message naming the file or address that failed; an address another process listens on:
  // "cannot listen on 127.0.0.1:8080: address in use (another collector?)".
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
