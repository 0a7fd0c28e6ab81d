// `vantage prune` (docs/collector.md#retention): one-off retention on a collector store — deletes
// the rows older than a duration, per table, in short transactions (safe while the collector
// runs), and with --vacuum hands the free pages back to the filesystem. The SQL is the
// collector's own (beacon-collector/store/retention.hpp), so the command and the collector's
// `store.retention` delete exactly the same rows.
//
//   vantage prune --db FILE [--older-than DURATION] [--retention TABLE=DURATION …] [--vacuum]
//                 [--dry-run] [--now RFC3339]
//
// Exit status: 0 done, 1 an error (the store cannot be opened, stays locked, …; on stderr),
// 2 a usage error.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "common/time.hpp"

namespace vantage::analysis::cli {

struct PruneOptions {
  std::string db;
  std::string older_than;              // a duration for every table ("30d"); "" = none
  std::vector<std::string> retention;  // "browser_reports=7d" …, overriding --older-than
  bool vacuum = false;   // free pages back to the filesystem (switches a store without
                         // auto_vacuum=INCREMENTAL with one VACUUM)
  bool dry_run = false;  // count what would be deleted; change nothing
  std::string now;       // RFC 3339 UTC instead of the clock ("" = the clock)
};

// The `prune` subcommand: the constructor registers it on the CLI, run() executes it once
// parsed.
class PruneCommand {
 public:
  explicit PruneCommand(CLI::App& app);
  bool parsed() const { return command_->parsed(); }
  // Prints one line per table (rows deleted, or that would be) and the file size before and
  // after on stdout; returns the exit status.
  int run(const Clock& clock) const;

 private:
  PruneOptions options_;
  CLI::App* command_;
};

}  // namespace vantage::analysis::cli
