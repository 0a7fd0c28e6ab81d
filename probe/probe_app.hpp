// Wires a loaded ProbeConfig into a running probe: one io_context, the network core, sinks,
// the metrics endpoint, signal handling (SIGTERM/SIGINT: graceful stop; a second signal: stop
// now; SIGHUP: reload the configuration) and the scheduler. main.cpp stays thin; tests run the
// same code in-process.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "probe/config.hpp"

namespace boost::asio {
class io_context;
}

namespace vantage::probe {

// vantage-probe's exit statuses (docs/configuration.md, "Exit codes").
inline constexpr int kExitOk = 0;
inline constexpr int kExitCheckFailed = 1;  // --once: a result failed
inline constexpr int kExitConfigError = 2;  // the configuration (or command line) is invalid
// --once with a collector: results were not all delivered (acknowledged) within the shutdown
// budget (they stay in the spool, or were dropped). Takes precedence over kExitCheckFailed.
inline constexpr int kExitUndelivered = 3;

struct AppOptions {
  bool once = false;
  std::optional<std::string> output;  // overrides the config's output.file; "-" = stdout
  bool handle_signals = true;
  // Reads and validates the configuration again for a reload (SIGHUP, request_reload()); throws
  // ConfigError. main.cpp reloads the same file with the same --check filter. Empty: a reload
  // fails (probe.reload_failed).
  std::function<ProbeConfig()> reload_config;
};

class ProbeApp {
 public:
  ProbeApp(ProbeConfig config, AppOptions options);
  ~ProbeApp();
  // Runs until stopped (or, with once, until every check ran once). Returns the process exit
  // status: 0; with once, 1 if any result failed, 3 if results were not delivered to the
  // configured collector (kExit*).
  int run();

  // What SIGHUP does; thread-safe (posts to the running probe's event loop). The reload calls
  // options.reload_config(): on a ConfigError it logs probe.reload_failed {file, error} and
  // changes nothing; else checks whose id and definition (CheckCommon::fingerprint) are the same
  // keep running untouched, removed ones stop (an in-flight run is cancelled, then shutdown()),
  // new ones start (start(), then their first run after the usual jitter), changed ones are
  // replaced; the collector sink takes the new url/token/delivery settings without touching the
  // spool; settings that need a restart are logged (probe.reload_needs_restart {key}) and keep
  // their old value. Logs probe.reloaded {added, removed, changed, unchanged, config_hash}.
  // Returns false when the probe is not running (before run() or after it returned).
  bool request_reload();

 private:
  ProbeConfig config_;
  AppOptions options_;
  std::mutex reload_mutex_;
  boost::asio::io_context* io_ = nullptr;  // guarded by reload_mutex_; set while run() runs
  std::function<void()> reload_;           // runs on io_
};

}  // namespace vantage::probe
