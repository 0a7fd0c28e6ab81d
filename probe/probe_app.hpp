// Wires a loaded ProbeConfig into a running probe: one io_context, the network core, sinks,
// the metrics endpoint, signal handling (SIGTERM/SIGINT: graceful stop; a second signal: stop
// now) and the scheduler. main.cpp stays thin; tests run the same code in-process.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "probe/config.hpp"

namespace vantage::probe {

struct AppOptions {
  bool once = false;
  std::optional<std::string> output;  // overrides the config's output.file; "-" = stdout
  bool handle_signals = true;
};

class ProbeApp {
 public:
  ProbeApp(ProbeConfig config, AppOptions options);
  ~ProbeApp();
  // Runs until stopped (or, with once, until every check ran once). Returns the process exit
  // status: 0; with once, 1 if any result failed.
  int run();

 private:
  ProbeConfig config_;
  AppOptions options_;
};

}  // namespace vantage::probe
