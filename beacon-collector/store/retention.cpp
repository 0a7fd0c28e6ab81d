#include "beacon-collector/store/retention.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>

#include "beacon-collector/store/sqlite_store.hpp"
#include "common/log.hpp"

namespace vantage::collector::store {
namespace {

struct TableSql {
  const char* name;
  const char* key;     // the primary key (the rowid alias, or a WITHOUT ROWID table's key)
  const char* time;    // the column a row's age is taken from
  const char* index;   // the index pruning uses, created when missing
  const char* create;  // CREATE INDEX … for it (IF NOT EXISTS)
};

// The indexes browser_reports(event_ns), probe_results(time_ns) and bgp_alerts(time_ns) are the
// store's own (sqlite_store.cpp); the other three only exist where a retention asks for them:
// every insert pays for an index.
constexpr std::array<TableSql, kTableCount> kSql{{
    {"browser_reports", "id", "event_ns", "browser_reports_event",
     "CREATE INDEX IF NOT EXISTS browser_reports_event ON browser_reports(event_ns)"},
    {"probe_results", "result_id", "time_ns", "probe_results_time",
     "CREATE INDEX IF NOT EXISTS probe_results_time ON probe_results(time_ns)"},
    {"route_events", "result_id", "time_ns", "route_events_time",
     "CREATE INDEX IF NOT EXISTS route_events_time ON route_events(time_ns)"},
    {"bgp_alerts", "result_id", "time_ns", "bgp_alerts_time",
     "CREATE INDEX IF NOT EXISTS bgp_alerts_time ON bgp_alerts(time_ns)"},
    {"heartbeats", "id", "received_ns", "heartbeats_received",
     "CREATE INDEX IF NOT EXISTS heartbeats_received ON heartbeats(received_ns)"},
    {"incidents", "id", "resolved_ns", "incidents_resolved",
     "CREATE INDEX IF NOT EXISTS incidents_resolved ON incidents(resolved_ns)"},
}};

const TableSql& sql_of(Table t) { return kSql[static_cast<std::size_t>(t)]; }

std::error_code sqlite_error(int rc) { return {rc, sqlite_category()}; }

// A prepared statement finalized on scope exit.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

std::uint64_t size_of(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

std::uint64_t nanos_since(std::chrono::steady_clock::time_point t0) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
          .count());
}

}  // namespace

std::string_view table_name(Table table) noexcept { return sql_of(table).name; }

std::string_view time_column(Table table) noexcept { return sql_of(table).time; }

std::optional<Table> table_from_name(std::string_view name) noexcept {
  for (Table t : kTables)
    if (table_name(t) == name) return t;
  return std::nullopt;
}

std::uint64_t sqlite_file_bytes(const std::string& path) noexcept {
  return size_of(path) + size_of(path + "-wal");
}

// --- Pruner ---------------------------------------------------------------------------------

Pruner::Pruner(const std::string& path, std::chrono::milliseconds busy_timeout) : path_(path) {
  const int rc =
      sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = "SQLite store \"" + path + "\": cannot open";
    if (db_) msg += ": " + std::string(sqlite3_errmsg(db_));
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::system_error(rc, sqlite_category(), msg);
  }
  sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout.count()));
  if (auto ec = exec("PRAGMA synchronous=NORMAL")) {
    const std::string msg =
        "SQLite store \"" + path + "\": PRAGMA synchronous: " + sqlite3_errmsg(db_);
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::system_error(ec, msg);
  }
}

Pruner::~Pruner() { sqlite3_close_v2(db_); }

std::error_code Pruner::exec(const char* sql) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? std::error_code() : sqlite_error(rc);
}

bool Pruner::exists(Table table, std::error_code& ec) {
  Stmt q;
  int rc = sqlite3_prepare_v2(
      db_, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", -1, &q.s,
      nullptr);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(q.s, 1, sql_of(table).name, -1, SQLITE_STATIC);
    rc = sqlite3_step(q.s);
  }
  if (rc != SQLITE_ROW) {
    ec = sqlite_error(rc);
    return false;
  }
  ec.clear();
  return sqlite3_column_int(q.s, 0) > 0;
}

std::error_code Pruner::ensure_index(Table table) {
  std::error_code ec;
  if (!exists(table, ec)) return ec;
  return exec(sql_of(table).create);
}

std::int64_t Pruner::count_older(Table table, std::int64_t cutoff_ns, std::error_code& ec) {
  const TableSql& t = sql_of(table);
  const std::string sql =
      std::string("SELECT count(*) FROM ") + t.name + " WHERE " + t.time + " < ?1";
  Stmt q;
  int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &q.s, nullptr);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(q.s, 1, cutoff_ns);
    rc = sqlite3_step(q.s);
  }
  if (rc != SQLITE_ROW) {
    ec = sqlite_error(rc);
    return 0;
  }
  ec.clear();
  return sqlite3_column_int64(q.s, 0);
}

std::int64_t Pruner::delete_older(Table table, std::int64_t cutoff_ns, std::int64_t limit,
                                  std::error_code& ec) {
  const TableSql& t = sql_of(table);
  // The subquery walks the time index from its oldest entry and stops after `limit` rows, so a
  // batch costs the same whatever the table's size; DELETE … LIMIT needs a compile option that
  // Debian's SQLite lacks. One statement in autocommit = one short transaction.
  const std::string sql = std::string("DELETE FROM ") + t.name + " WHERE " + t.key +
                          " IN (SELECT " + t.key + " FROM " + t.name + " WHERE " + t.time +
                          " < ?1 ORDER BY " + t.time + " LIMIT ?2)";
  Stmt q;
  int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &q.s, nullptr);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(q.s, 1, cutoff_ns);
    sqlite3_bind_int64(q.s, 2, limit);
    rc = sqlite3_step(q.s);
  }
  if (rc != SQLITE_DONE) {
    ec = sqlite_error(rc);
    return 0;
  }
  ec.clear();
  return sqlite3_changes64(db_);
}

Pruner::FileState Pruner::file_state(std::error_code& ec) {
  FileState f;
  auto pragma = [&](const char* sql, std::int64_t& out) {
    if (ec) return;
    Stmt q;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &q.s, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(q.s);
    if (rc != SQLITE_ROW) {
      ec = sqlite_error(rc);
      return;
    }
    out = sqlite3_column_int64(q.s, 0);
  };
  ec.clear();
  std::int64_t auto_vacuum = 0;
  pragma("PRAGMA page_size", f.page_size);
  pragma("PRAGMA page_count", f.page_count);
  pragma("PRAGMA freelist_count", f.freelist_pages);
  pragma("PRAGMA auto_vacuum", auto_vacuum);
  f.incremental_vacuum = auto_vacuum == 2;
  return f;
}

std::error_code Pruner::incremental_vacuum(std::int64_t pages) {
  const std::string sql =
      "PRAGMA incremental_vacuum(" + std::to_string(std::max<std::int64_t>(0, pages)) + ")";
  return exec(sql.c_str());
}

std::error_code Pruner::vacuum_to_incremental() {
  if (auto ec = exec("PRAGMA auto_vacuum=INCREMENTAL")) return ec;
  return exec("VACUUM");
}

std::error_code Pruner::checkpoint_truncate() { return exec("PRAGMA wal_checkpoint(TRUNCATE)"); }

// --- Retention (the collector's writer) -----------------------------------------------------

namespace {
constexpr std::int64_t kVacuumChunkBytes = 4 << 20;  // most freed per vacuum transaction
constexpr std::int64_t kFreeSlackBytes = 1 << 20;    // free pages always left for inserts
}  // namespace

Retention::Retention(const std::string& path, RetentionPolicy policy, PruneOptions options,
                     const Clock& clock)
    : pruner_(path), policy_(policy), options_(options), clock_(clock) {
  options_.batch_rows = std::max<std::int64_t>(1, options_.batch_rows);
  for (Table t : kTables) {
    if (!policy_[t]) continue;
    // Start-up: the missing indexes are built now (route_events, heartbeats, incidents), not
    // in the middle of ingest.
    std::error_code ec;
    const bool present = pruner_.exists(t, ec);
    if (!ec && present) ec = pruner_.ensure_index(t);
    if (ec) {
      throw std::system_error(ec, "SQLite store \"" + path + "\": cannot index " +
                                      std::string(table_name(t)) + " for retention");
    }
    indexed_[static_cast<std::size_t>(t)] = present;
  }
  std::error_code ec;
  const Pruner::FileState f = pruner_.file_state(ec);
  if (!ec && !f.incremental_vacuum) {
    warned_no_vacuum_ = true;
    log::warn("store.retention_without_vacuum",
              {{"store", "sqlite:" + path},
               {"message",
                "the database was created without auto_vacuum=INCREMENTAL: pruned pages are "
                "reused but the file does not shrink; run `vantage prune --db FILE --vacuum` "
                "once with the collector stopped"}});
  }
}

double Retention::longest_transaction_seconds() const noexcept {
  return static_cast<double>(longest_nanos_.load(std::memory_order_relaxed)) / 1e9;
}

double Retention::prune_seconds_total() const noexcept {
  return static_cast<double>(total_nanos_.load(std::memory_order_relaxed)) / 1e9;
}

bool Retention::start_pass() {
  const SteadyTime steady = clock_.steady_now();
  if (next_pass_ && steady < *next_pass_) return false;
  next_pass_ = steady + options_.interval;
  const std::int64_t now_ns = to_unix_nanos(clock_.utc_now());
  for (Table t : kTables) {
    const auto& keep = policy_[t];
    if (!keep) continue;
    cutoff_ns_[static_cast<std::size_t>(t)] = now_ns - keep->count();
  }
  pass_deleted_.fill(0);
  pass_started_ = std::chrono::steady_clock::now();
  current_ = 0;
  phase_ = Phase::deleting;
  return true;
}

// One line per pass that deleted something, at debug level (every minute by default; the
// metrics carry the counts).
void Retention::finish_pass() {
  passes_.fetch_add(1, std::memory_order_relaxed);
  std::int64_t total = 0;
  for (auto n : pass_deleted_) total += n;
  if (total == 0) return;
  auto n = [&](Table t) { return pass_deleted_[static_cast<std::size_t>(t)]; };
  log::debug("store.pruned",
             {{"store", "sqlite:" + pruner_.path()},
              {"browser_reports", n(Table::browser_reports)},
              {"probe_results", n(Table::probe_results)},
              {"route_events", n(Table::route_events)},
              {"bgp_alerts", n(Table::bgp_alerts)},
              {"heartbeats", n(Table::heartbeats)},
              {"incidents", n(Table::incidents)},
              {"seconds", static_cast<double>(nanos_since(pass_started_)) / 1e9},
              {"longest_transaction_ms", longest_transaction_seconds() * 1e3},
              {"file_bytes", static_cast<std::int64_t>(sqlite_file_bytes(pruner_.path()))}});
}

bool Retention::run(std::size_t committed_records, const std::atomic<std::size_t>& queued_records) {
  const auto t0 = std::chrono::steady_clock::now();
  const bool more = turn(committed_records, queued_records);
  const std::uint64_t ns = nanos_since(t0);
  if (ns > longest_turn_nanos_.load(std::memory_order_relaxed))
    longest_turn_nanos_.store(ns, std::memory_order_relaxed);
  return more;
}

bool Retention::turn(std::size_t committed_records,
                     const std::atomic<std::size_t>& queued_records) {
  credit_ += committed_records;
  if (phase_ == Phase::idle && !start_pass()) {
    credit_ = 0;
    return false;
  }
  auto timed = [&](auto&& transaction) {
    const auto t0 = std::chrono::steady_clock::now();
    transaction();
    const std::uint64_t ns = nanos_since(t0);
    total_nanos_.fetch_add(ns, std::memory_order_relaxed);
    if (ns > longest_nanos_.load(std::memory_order_relaxed))
      longest_nanos_.store(ns, std::memory_order_relaxed);
  };
  std::int64_t budget = 0, pace = 0, deleted = 0;
  auto failed = [&](const std::error_code& ec, const char* what) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    // The rows this turn owed are owed by the next one.
    credit_ += static_cast<std::uint64_t>(std::max<std::int64_t>(0, pace - deleted));
    if (!warned_error_) {  // once per pass: a store that stays busy would log every turn
      warned_error_ = true;
      log::warn("store.prune_failed",
                {{"store", "sqlite:" + pruner_.path()}, {"step", what}, {"error", ec.message()}});
    }
  };
  // Keep pace with ingest: at least as many rows as were committed since the last deleting
  // turn, and while no upload waits up to twice that (so a backlog shrinks while ingest goes
  // on), in transactions of batch_rows. An upload that arrives meanwhile waits for at most the
  // rows its predecessors wrote to be deleted, about as long as their commit took.
  if (phase_ == Phase::deleting) {
    pace = static_cast<std::int64_t>(credit_);
    budget = std::max<std::int64_t>(options_.batch_rows, 2 * pace);
    credit_ = 0;
  }
  while (phase_ == Phase::deleting && budget > 0) {
    if (deleted > 0 && deleted >= pace && queued_records.load(std::memory_order_relaxed) > 0) {
      break;
    }
    if (current_ >= kTables.size()) {
      phase_ = Phase::vacuuming;
      break;
    }
    const Table t = kTables[current_];
    const std::size_t i = static_cast<std::size_t>(t);
    if (!policy_[t]) {
      ++current_;
      continue;
    }
    std::error_code ec;
    if (!indexed_[i]) {  // a table created since start-up (incidents by `vantage incidents`)
      const bool present = pruner_.exists(t, ec);
      if (!ec && !present) {
        ++current_;
        continue;
      }
      if (!ec) timed([&] { ec = pruner_.ensure_index(t); });
      if (ec) {
        failed(ec, "index");
        return false;  // retried at the next turn
      }
      indexed_[i] = true;
    }
    const std::int64_t limit = std::min(options_.batch_rows, budget);
    std::int64_t n = 0;
    timed([&] { n = pruner_.delete_older(t, cutoff_ns_[i], limit, ec); });
    if (ec) {
      failed(ec, "delete");
      return false;
    }
    pruned_[i].fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    pass_deleted_[i] += n;
    budget -= std::max<std::int64_t>(n, 1);
    deleted += std::max<std::int64_t>(n, 1);
    if (n < limit) ++current_;
  }
  if (phase_ == Phase::vacuuming && queued_records.load(std::memory_order_relaxed) > 0) {
    // Uploads are waiting: the free pages are reused by them anyway; the next pass that ends
    // with an idle queue vacuums.
    phase_ = Phase::idle;
    warned_error_ = false;
    finish_pass();
    return false;
  }
  if (phase_ == Phase::vacuuming) {
    std::error_code ec;
    const Pruner::FileState f = pruner_.file_state(ec);
    if (ec) {
      failed(ec, "vacuum");
      phase_ = Phase::idle;
      warned_error_ = false;
      finish_pass();
      return false;
    }
    const std::int64_t page = std::max<std::int64_t>(1, f.page_size);
    const std::int64_t slack = std::max(kFreeSlackBytes / page, f.page_count / 32);
    const std::int64_t excess = f.freelist_pages - slack;
    if (!f.incremental_vacuum || excess <= 0) {
      phase_ = Phase::idle;
      warned_error_ = false;
      finish_pass();
      return false;
    }
    const std::int64_t pages =
        std::min(excess, std::max<std::int64_t>(1, kVacuumChunkBytes / page));
    timed([&] { ec = pruner_.incremental_vacuum(pages); });
    if (ec) {
      failed(ec, "vacuum");
      return false;
    }
    vacuumed_pages_.fetch_add(static_cast<std::uint64_t>(pages), std::memory_order_relaxed);
  }
  return phase_ != Phase::idle;
}

}  // namespace vantage::collector::store
