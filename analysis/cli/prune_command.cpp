#include "analysis/cli/prune_command.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <system_error>

#include "beacon-collector/store/retention.hpp"

namespace vantage::analysis::cli {
namespace {

namespace store = vantage::collector::store;

constexpr std::int64_t kBatchRows = 2000;            // rows per delete transaction
constexpr std::int64_t kVacuumChunkBytes = 4 << 20;  // freed per vacuum transaction

std::string mib(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

std::string tables_list() {
  std::string out;
  for (store::Table t : store::kTables) {
    if (!out.empty()) out += ", ";
    out += store::table_name(t);
  }
  return out;
}

}  // namespace

PruneCommand::PruneCommand(CLI::App& app) {
  command_ = app.add_subcommand(
      "prune", "Delete a collector store's rows older than a retention, and shrink the file");
  command_->add_option("--db", options_.db, "The collector's SQLite store")
      ->required()
      ->check(CLI::ExistingFile);
  command_->add_option("--older-than", options_.older_than,
                       "Delete rows older than this in every table (30d, 12h); incidents: "
                       "resolved ones only");
  command_->add_option("--retention", options_.retention,
                       "TABLE=DURATION, per table (overrides --older-than): " + tables_list());
  command_->add_flag("--vacuum", options_.vacuum,
                     "Hand free pages back to the filesystem (a store created without "
                     "auto_vacuum is switched by one VACUUM: stop the collector first)");
  command_->add_flag("--dry-run", options_.dry_run, "Count what would be deleted; change nothing");
  command_->add_option("--now", options_.now, "The time retention counts from (RFC 3339 UTC)");
}

int PruneCommand::run(const Clock& clock) const {
  auto usage = [](const std::string& message) {
    std::fprintf(stderr, "vantage prune: %s\n", message.c_str());
    return 2;
  };
  store::RetentionPolicy policy;
  if (!options_.older_than.empty()) {
    const auto d = parse_duration(options_.older_than);
    if (!d)
      return usage("--older-than: \"" + options_.older_than + "\" is not a duration like 30d");
    for (store::Table t : store::kTables) policy[t] = *d;
  }
  for (const auto& item : options_.retention) {
    const auto eq = item.find('=');
    const auto table = store::table_from_name(item.substr(0, eq));
    if (eq == std::string::npos || !table) {
      return usage("--retention: \"" + item + "\" is not TABLE=DURATION with a table among " +
                   tables_list());
    }
    const auto d = parse_duration(item.substr(eq + 1));
    if (!d) {
      return usage("--retention: \"" + item.substr(eq + 1) + "\" is not a duration like 7d");
    }
    policy[*table] = *d;
  }
  if (!policy.any() && !options_.vacuum) {
    return usage("nothing to do: give --older-than, --retention or --vacuum");
  }
  UtcTime now = clock.utc_now();
  if (!options_.now.empty()) {
    const auto t = parse_rfc3339(options_.now);
    if (!t) return usage("--now: \"" + options_.now + "\" is not an RFC 3339 time");
    now = *t;
  }
  auto fail = [&](const std::string& what, const std::error_code& ec) {
    std::fprintf(stderr, "vantage prune: %s: %s: %s\n", options_.db.c_str(), what.c_str(),
                 ec.message().c_str());
    return 1;
  };
  try {
    // A long busy timeout: the collector's own transactions are short.
    store::Pruner pruner(options_.db, std::chrono::seconds(10));
    const std::uint64_t size_before = store::sqlite_file_bytes(options_.db);
    std::printf("%s: %s\n", options_.db.c_str(), mib(size_before).c_str());
    for (store::Table t : store::kTables) {
      if (!policy[t]) continue;
      const std::string name(store::table_name(t));
      std::error_code ec;
      if (!pruner.exists(t, ec)) {
        if (ec) return fail(name, ec);
        std::printf("  %-16s no such table\n", name.c_str());
        continue;
      }
      const std::int64_t cutoff = to_unix_nanos(now) - policy[t]->count();
      const std::string when = (t == store::Table::incidents ? "resolved before " : "older than ") +
                               format_rfc3339(from_unix_nanos(cutoff));
      std::int64_t rows = 0;
      if (options_.dry_run) {
        rows = pruner.count_older(t, cutoff, ec);
        if (ec) return fail(name, ec);
        std::printf("  %-16s %-42s %lld rows would be deleted\n", name.c_str(), when.c_str(),
                    static_cast<long long>(rows));
        continue;
      }
      if ((ec = pruner.ensure_index(t))) return fail(name + ": creating its time index", ec);
      for (;;) {
        const std::int64_t n = pruner.delete_older(t, cutoff, kBatchRows, ec);
        if (ec) return fail(name, ec);
        rows += n;
        if (n < kBatchRows) break;
      }
      std::printf("  %-16s %-42s %lld rows deleted\n", name.c_str(), when.c_str(),
                  static_cast<long long>(rows));
    }
    if (options_.vacuum && !options_.dry_run) {
      std::error_code ec;
      auto state = pruner.file_state(ec);
      if (ec) return fail("vacuum", ec);
      if (!state.incremental_vacuum) {
        std::printf("  switching to auto_vacuum=INCREMENTAL (one VACUUM rewrites the file)\n");
        std::fflush(stdout);
        if ((ec = pruner.vacuum_to_incremental())) return fail("VACUUM", ec);
      } else {
        // In chunks: each is a short transaction, so a running collector keeps committing.
        const std::int64_t chunk = std::max<std::int64_t>(1, kVacuumChunkBytes / state.page_size);
        while (state.freelist_pages > 0) {
          if ((ec = pruner.incremental_vacuum(std::min(chunk, state.freelist_pages))))
            return fail("incremental vacuum", ec);
          const auto before = state.freelist_pages;
          state = pruner.file_state(ec);
          if (ec) return fail("vacuum", ec);
          if (state.freelist_pages >= before) break;  // nothing moved: give up rather than spin
        }
      }
      if ((ec = pruner.checkpoint_truncate())) return fail("checkpoint", ec);
      std::printf("%s: %s -> %s\n", options_.db.c_str(), mib(size_before).c_str(),
                  mib(store::sqlite_file_bytes(options_.db)).c_str());
    } else if (!options_.dry_run) {
      std::error_code ec;
      const auto state = pruner.file_state(ec);
      if (!ec) {
        std::printf("%s: %s free for reuse%s\n", options_.db.c_str(),
                    mib(static_cast<std::uint64_t>(state.freelist_pages * state.page_size)).c_str(),
                    state.incremental_vacuum ? " (--vacuum hands it back to the filesystem)"
                                             : " (--vacuum switches the store to incremental "
                                               "vacuum with one VACUUM and hands it back)");
      }
    }
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "vantage prune: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace vantage::analysis::cli
