// Data retention for the SQLite store (docs/collector.md#retention): rows older than a per-table
// duration are deleted in small batches, and the freed pages are handed back to the filesystem
// with SQLite's incremental vacuum (https://sqlite.org/pragma.html#pragma_incremental_vacuum).
//
// Two users share the SQL here: the collector's writer thread (Retention, a Writer
// housekeeping task: a pass every `store.prune_interval`, one short transaction per batch,
// between the ingest commits) and `vantage prune` (analysis/cli/prune_command.cpp, one-off).
// Both open their own connection to the database file; the collector's writer runs its
// Retention on the thread that commits ingest, so the two never wait for each other.
//
// What "older" means per table (the column an index covers; the incidents table is the
// analysis's, `vantage incidents|watch` create it):
//   browser_reports  event_ns < cutoff        (the time the browser saw the event)
//   probe_results    time_ns < cutoff         (the check's start)
//   route_events     time_ns < cutoff         (when the BGP peer sent it)
//   bgp_alerts       time_ns < cutoff
//   heartbeats       received_ns < cutoff     (the collector's clock)
//   incidents        resolved_ns < cutoff     (resolved incidents only; open ones are kept)
// vantage_points (the fleet's latest state, one row per vantage point) is never pruned.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "beacon-collector/store/store.hpp"
#include "common/time.hpp"

struct sqlite3;

namespace vantage::collector::store {

enum class Table : std::uint8_t {
  browser_reports,
  probe_results,
  route_events,
  bgp_alerts,
  heartbeats,
  incidents
};
inline constexpr std::size_t kTableCount = 6;
inline constexpr std::array<Table, kTableCount> kTables{
    Table::browser_reports, Table::probe_results, Table::route_events,
    Table::bgp_alerts,      Table::heartbeats,    Table::incidents};

// "browser_reports", …: the SQL table name, also the config key and the metric label.
std::string_view table_name(Table table) noexcept;
std::optional<Table> table_from_name(std::string_view name) noexcept;
// The column a row's age is taken from ("event_ns", "time_ns", "received_ns", "resolved_ns").
std::string_view time_column(Table table) noexcept;

// How long each table's rows are kept; nullopt = forever (the default for every table).
struct RetentionPolicy {
  std::array<std::optional<std::chrono::nanoseconds>, kTableCount> keep{};

  std::optional<std::chrono::nanoseconds>& operator[](Table t) {
    return keep[static_cast<std::size_t>(t)];
  }
  const std::optional<std::chrono::nanoseconds>& operator[](Table t) const {
    return keep[static_cast<std::size_t>(t)];
  }
  bool operator==(const RetentionPolicy&) const = default;
  bool any() const noexcept {
    for (const auto& k : keep)
      if (k) return true;
    return false;
  }
};

// Size of the database file plus its write-ahead log (`<path>-wal`), in bytes (st_size; 0 for
// a file that does not exist). What the store takes on disk, bar the small `-shm` index.
std::uint64_t sqlite_file_bytes(const std::string& path) noexcept;

// The pruning SQL over one connection of its own. Not thread-safe: one thread uses a Pruner.
// Errors are SQLite result codes in sqlite_category() (SQLITE_BUSY when another process holds
// the write lock longer than the busy timeout).
class Pruner {
 public:
  // Opens the existing database `path` (never creates one). `busy_timeout`: how long a
  // statement waits for another connection's write lock before SQLITE_BUSY. Sets
  // synchronous=NORMAL on this connection: a prune committed just before a crash may come back
  // and is deleted again by the next pass, while the ingest commits that follow (FULL) sync the
  // write-ahead log with it — so a prune costs no fsync of its own. Throws std::system_error
  // naming the file when it cannot be opened.
  explicit Pruner(const std::string& path,
                  std::chrono::milliseconds busy_timeout = std::chrono::milliseconds(200));
  ~Pruner();
  Pruner(const Pruner&) = delete;
  Pruner& operator=(const Pruner&) = delete;

  const std::string& path() const noexcept { return path_; }

  // Whether the table exists (the incidents and heartbeats tables appear later than the rest).
  bool exists(Table table, std::error_code& ec);
  // Creates the index on the table's time column where the store has none
  // (route_events_time, heartbeats_received, incidents_resolved); a no-op when it exists.
  // On a large table this scans it once.
  std::error_code ensure_index(Table table);
  // Rows that delete_older() would delete: older than `cutoff_ns` (UTC ns since the epoch).
  std::int64_t count_older(Table table, std::int64_t cutoff_ns, std::error_code& ec);
  // Deletes at most `limit` rows older than `cutoff_ns`, oldest first, in one transaction;
  // returns how many. Fewer than `limit`: none older is left.
  std::int64_t delete_older(Table table, std::int64_t cutoff_ns, std::int64_t limit,
                            std::error_code& ec);

  struct FileState {
    std::int64_t page_size = 0;       // bytes
    std::int64_t page_count = 0;      // pages in the database (free ones included)
    std::int64_t freelist_pages = 0;  // free pages, reused by inserts or vacuumed away
    bool incremental_vacuum = false;  // PRAGMA auto_vacuum = INCREMENTAL (2)
  };
  FileState file_state(std::error_code& ec);
  // Moves up to `pages` free pages to the end of the file and truncates them (0 = all free
  // pages). Needs auto_vacuum=INCREMENTAL, else it does nothing. In WAL mode the file shrinks
  // when the next checkpoint has copied the transaction back into it.
  std::error_code incremental_vacuum(std::int64_t pages);
  // Switches a database created without auto_vacuum to INCREMENTAL: PRAGMA auto_vacuum and a
  // full VACUUM, which rewrites the file (needs free disk space about the database's size and
  // the write lock for the whole time: run it with the collector stopped).
  std::error_code vacuum_to_incremental();
  // PRAGMA wal_checkpoint(TRUNCATE): copies the log into the database and empties it.
  std::error_code checkpoint_truncate();

 private:
  std::error_code exec(const char* sql);
  std::string path_;
  sqlite3* db_ = nullptr;
};

// How the collector prunes (store.prune_interval, store.prune_batch_rows; defaults in
// beacon-collector/config.hpp).
struct PruneOptions {
  std::chrono::nanoseconds interval{std::chrono::seconds(60)};  // between passes
  std::int64_t batch_rows = 2000;                               // rows per delete transaction
};

// The collector's retention, run by the store's Writer on its thread between commits.
//
// Every `interval` (by `clock`'s steady time) a pass starts: cutoff = clock's UTC now -
// retention, per table.
// Each turn (after a commit, or when idle) deletes `batch_rows` rows per transaction: at least
// as many rows as were committed since the last turn, so that at any ingest rate pruning keeps
// pace with what ages out, and up to twice that while no upload waits (a backlog shrinks); then
// the Writer takes the waiting uploads. When every table is done and no upload waits, free
// pages beyond max(1 MiB, 1/32 of the file) are vacuumed away, up to 4 MiB per turn. A database
// created without auto_vacuum=INCREMENTAL reuses its freed pages but does not shrink (logged
// once; `vantage prune --vacuum` switches it).
//
// Counters are safe to read from any thread (metrics).
class Retention final : public Housekeeping {
 public:
  // Opens its own connection to `path` (the store's file, which must exist) and creates the
  // missing time indexes of the tables with a retention. Throws std::system_error (start-up).
  Retention(const std::string& path, RetentionPolicy policy, PruneOptions options,
            const Clock& clock);

  bool run(std::size_t committed_records, const std::atomic<std::size_t>& queued_records) override;

  const RetentionPolicy& policy() const noexcept { return policy_; }
  std::uint64_t pruned_records(Table table) const noexcept {
    return pruned_[static_cast<std::size_t>(table)].load(std::memory_order_relaxed);
  }
  std::uint64_t passes() const noexcept { return passes_.load(std::memory_order_relaxed); }
  std::uint64_t errors() const noexcept { return errors_.load(std::memory_order_relaxed); }
  std::uint64_t vacuumed_pages() const noexcept {
    return vacuumed_pages_.load(std::memory_order_relaxed);
  }
  // The longest single prune or vacuum transaction so far (seconds, steady clock): how long
  // the write lock was held by retention at most.
  double longest_transaction_seconds() const noexcept;
  // The longest turn (one run() call: the transactions done between two of the writer's
  // commits): the most an upload waiting meanwhile was delayed by retention (seconds).
  double longest_turn_seconds() const noexcept {
    return static_cast<double>(longest_turn_nanos_.load(std::memory_order_relaxed)) / 1e9;
  }
  double prune_seconds_total() const noexcept;

 private:
  enum class Phase { idle, deleting, vacuuming };
  // Starts a pass when one is due by the steady clock (passes are `interval` apart whatever
  // the wall clock does); the cutoffs come from the UTC clock.
  bool start_pass();
  bool turn(std::size_t committed_records, const std::atomic<std::size_t>& queued_records);
  void finish_pass();

  Pruner pruner_;
  RetentionPolicy policy_;
  PruneOptions options_;
  const Clock& clock_;
  Phase phase_ = Phase::idle;
  std::optional<SteadyTime> next_pass_;
  std::array<std::int64_t, kTableCount> cutoff_ns_{};
  std::array<bool, kTableCount> indexed_{};
  std::size_t current_ = 0;   // index into kTables of the table being pruned
  std::uint64_t credit_ = 0;  // records committed since the last turn
  std::array<std::int64_t, kTableCount> pass_deleted_{};
  SteadyTime pass_started_{};
  bool warned_no_vacuum_ = false;
  bool warned_error_ = false;
  std::array<std::atomic<std::uint64_t>, kTableCount> pruned_{};
  std::atomic<std::uint64_t> passes_{0}, errors_{0}, vacuumed_pages_{0};
  std::atomic<std::uint64_t> longest_nanos_{0}, total_nanos_{0}, longest_turn_nanos_{0};
};

}  // namespace vantage::collector::store
