// The `vantage` commands over a collector store (docs/analysis.md): generate, incidents, watch
// and report isp — one function per command taking its parsed options, so
// `analysis/cli/vantage.cpp` only defines the command line. Each returns the process's exit status
// (0 ok, 1 an error reported on stderr, 2 a usage error) and never throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/detect/analyzer_options.hpp"
#include "analysis/generate/generator.hpp"
#include "common/time.hpp"

namespace vantage::analysis::cli {

// Where incidents go besides stdout: Alertmanager URLs, webhook URLs, the runbook link prefix,
// and whether they are stored in the store's incidents table.
struct NotifyOptions {
  std::vector<std::string> alertmanagers, webhooks;
  std::string runbook_base;
  bool save = true;
};

// `vantage generate`: a seeded scenario stream into the store at `db`.
int generate_events(const std::string& db, const GeneratorOptions& options);

// `vantage report isp`: [from, to) (RFC 3339, `now` or a duration before now; "" = the store's
// first/last event) as text, json or html, to `output` ("" or "-": stdout).
int report_isp(const std::string& db, const std::string& from, const std::string& to,
               const std::string& format, const std::string& output,
               const AnalyzerOptions& options);

// `vantage incidents`: replays [from, to) and prints (text or a JSON array), stores (upsert) and
// notifies the incidents.
int incidents(const std::string& db, const std::string& from, const std::string& to, bool json,
              const AnalyzerOptions& options, const NotifyOptions& notify);

// `vantage watch`: every `interval`, replays the store (from its first event, or the last
// `lookback`) up to `settle_ns` before the clock's now; prints, notifies and stores the changes
// until SIGINT/SIGTERM.
int watch(const std::string& db, const AnalyzerOptions& options, const NotifyOptions& notify,
          std::chrono::nanoseconds interval, std::chrono::nanoseconds lookback,
          std::int64_t settle_ns, const Clock& clock);

}  // namespace vantage::analysis::cli
