#include "beacon-collector/store/sqlite_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "beacon-collector/ingest/url_template.hpp"

namespace vantage::collector::store {
namespace {

class SqliteCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sqlite"; }
  std::string message(int code) const override { return sqlite3_errstr(code); }
};

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS browser_reports (
  id            INTEGER PRIMARY KEY,
  received_ns   INTEGER NOT NULL,
  event_ns      INTEGER NOT NULL,
  kind          TEXT NOT NULL,
  type          TEXT NOT NULL,
  endpoint      TEXT NOT NULL,
  url           TEXT NOT NULL,
  origin        TEXT NOT NULL,
  nel_type      TEXT,
  nel_phase     TEXT,
  status_code   INTEGER,
  method        TEXT,
  protocol      TEXT,
  elapsed_ms    REAL,
  server_ip     TEXT,
  server_asn    INTEGER,
  server_as_org TEXT,
  weight        REAL NOT NULL,
  client_prefix TEXT NOT NULL,
  country       TEXT,
  city          TEXT,
  asn           INTEGER,
  isp           TEXT,
  ua_family     TEXT,
  ua_major      INTEGER,
  body          TEXT NOT NULL,
  url_template  TEXT
);
CREATE INDEX IF NOT EXISTS browser_reports_event ON browser_reports(event_ns);
CREATE TABLE IF NOT EXISTS probe_results (
  result_id     TEXT PRIMARY KEY,
  kind          TEXT NOT NULL,
  time_ns       INTEGER NOT NULL,
  received_ns   INTEGER NOT NULL,
  probe_id      TEXT NOT NULL,
  region        TEXT,
  asn           INTEGER,
  check_name    TEXT NOT NULL,
  check_kind    TEXT,
  target_url    TEXT,
  server_ip     TEXT,
  outcome       TEXT NOT NULL,
  status_code   INTEGER,
  total_ms      REAL,
  record        TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS probe_results_time ON probe_results(time_ns);
CREATE TABLE IF NOT EXISTS route_events (
  result_id        TEXT PRIMARY KEY,
  time_ns          INTEGER NOT NULL,
  received_ns      INTEGER NOT NULL,
  probe_id         TEXT NOT NULL,
  check_name       TEXT NOT NULL,
  event            TEXT NOT NULL,
  collector        TEXT,
  peer_ip          TEXT,
  peer_asn         INTEGER,
  prefix           TEXT,
  monitored_prefix TEXT,
  origin_asn       INTEGER,
  as_path          TEXT,
  record           TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS route_events_prefix_time ON route_events(monitored_prefix, time_ns);
CREATE TABLE IF NOT EXISTS bgp_alerts (
  result_id        TEXT PRIMARY KEY,
  time_ns          INTEGER NOT NULL,
  received_ns      INTEGER NOT NULL,
  probe_id         TEXT NOT NULL,
  check_name       TEXT NOT NULL,
  alert            TEXT NOT NULL,
  status           TEXT NOT NULL,
  alert_key        TEXT NOT NULL,
  prefix           TEXT NOT NULL,
  monitored_prefix TEXT,
  origin_asn       INTEGER,
  leaker_asn       INTEGER,
  record           TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS bgp_alerts_time ON bgp_alerts(time_ns);
)sql";

// The vantage points' latest state and their heartbeats (docs/collector.md#fleet). New in
// schema 3 databases without a version change: CREATE IF NOT EXISTS adds them to any older file.
constexpr const char* kFleetSchema = R"sql(
CREATE TABLE IF NOT EXISTS vantage_points (
  probe_id              TEXT PRIMARY KEY,
  region                TEXT,
  country               TEXT,
  asn                   INTEGER,
  isp                   TEXT,
  version               TEXT,
  revision              TEXT,
  config_hash           TEXT,
  config_source         TEXT,
  served_config_hash    TEXT,
  checks                TEXT,
  spool_results         INTEGER,
  spool_bytes           INTEGER,
  heartbeat_interval_ns INTEGER,
  started_ns            INTEGER,
  first_seen_ns         INTEGER,
  last_seen_ns          INTEGER,
  last_heartbeat_ns     INTEGER
);
CREATE TABLE IF NOT EXISTS heartbeats (
  id                    INTEGER PRIMARY KEY,
  probe_id              TEXT NOT NULL,
  received_ns           INTEGER NOT NULL,
  time_ns               INTEGER,
  version               TEXT,
  config_hash           TEXT,
  spool_results         INTEGER,
  heartbeat_interval_ns INTEGER
);
CREATE INDEX IF NOT EXISTS heartbeats_probe_time ON heartbeats(probe_id, received_ns);
)sql";

// Version 2 -> 3: the endpoint template of each report's URL. ADD COLUMN rewrites no row: rows
// written before read NULL, and readers template their `url` themselves.
constexpr const char* kAddUrlTemplate = "ALTER TABLE browser_reports ADD COLUMN url_template TEXT";
constexpr const char* kHasUrlTemplate =
    "SELECT count(*) FROM pragma_table_info('browser_reports') WHERE name = 'url_template'";
// The segment log's checkpoint (segment_log.hpp): the highest frame whose reports are stored,
// written in the transaction that stores them. One row; absent = nothing stored from a log.
constexpr const char* kLogCheckpointSchema =
    "CREATE TABLE IF NOT EXISTS log_checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "seq INTEGER NOT NULL)";
constexpr const char* kSchemaVersion = "PRAGMA user_version = 3";

void bind_text(sqlite3_stmt* s, int i, const std::string& v, bool null_if_empty = true) {
  if (v.empty() && null_if_empty) {
    sqlite3_bind_null(s, i);
  } else {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
}
void bind_opt_int(sqlite3_stmt* s, int i, const std::optional<int>& v) {
  if (v) {
    sqlite3_bind_int(s, i, *v);
  } else {
    sqlite3_bind_null(s, i);
  }
}
void bind_opt_double(sqlite3_stmt* s, int i, const std::optional<double>& v) {
  if (v) {
    sqlite3_bind_double(s, i, *v);
  } else {
    sqlite3_bind_null(s, i);
  }
}
void bind_opt_int64(sqlite3_stmt* s, int i, const std::optional<std::int64_t>& v) {
  if (v) {
    sqlite3_bind_int64(s, i, *v);
  } else {
    sqlite3_bind_null(s, i);
  }
}
void bind_asn(sqlite3_stmt* s, int i, std::uint32_t asn) {
  if (asn) {
    sqlite3_bind_int64(s, i, asn);
  } else {
    sqlite3_bind_null(s, i);
  }
}

}  // namespace

const std::error_category& sqlite_category() noexcept {
  static const SqliteCategory category;
  return category;
}

SqliteStore::SqliteStore(const std::string& path) : path_(path) {
  const int rc =
      sqlite3_open_v2(path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  auto fail = [&](int code, const std::string& what) {
    std::string msg = "SQLite store \"" + path + "\": " + what;
    if (db_) msg += ": " + std::string(sqlite3_errmsg(db_));
    sqlite3_finalize(insert_report_);
    sqlite3_finalize(insert_result_);
    sqlite3_finalize(insert_route_event_);
    sqlite3_finalize(insert_bgp_alert_);
    finalize_fleet_statements();
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::system_error(code, sqlite_category(), msg);
  };
  if (rc != SQLITE_OK) fail(rc, "cannot open");
  // A short busy timeout: the writer retries with back-off itself and must not sit inside
  // SQLite while stop() waits.
  sqlite3_busy_timeout(db_, 200);
  // 16 KiB pages: a group commit of rows of about 1 KiB writes a few large WAL frames instead
  // of many small ones (measured: +17 % ingest throughput over the 4 KiB default).
  // auto_vacuum=INCREMENTAL (retention, store/retention.hpp): pages freed by pruning can be
  // handed back to the filesystem. Like page_size it only takes effect in a new database (one
  // created without it keeps reusing freed pages; `vantage prune --vacuum` switches it). It
  // comes after page_size: set first, it fixes the page size at the 4 KiB default.
  for (const char* sql : {"PRAGMA page_size=16384", "PRAGMA auto_vacuum=INCREMENTAL",
                          "PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL"}) {
    if (auto ec = exec(sql)) fail(ec.value(), sql);
  }
  if (auto ec = exec(kSchema)) fail(ec.value(), "cannot create the schema");
  if (auto ec = exec(kFleetSchema)) fail(ec.value(), "cannot create the fleet tables");
  if (auto ec = exec(kLogCheckpointSchema)) fail(ec.value(), "cannot create log_checkpoint");
  {
    sqlite3_stmt* has = nullptr;
    int hrc = sqlite3_prepare_v2(db_, kHasUrlTemplate, -1, &has, nullptr);
    const bool present = hrc == SQLITE_OK && (hrc = sqlite3_step(has)) == SQLITE_ROW &&
                         sqlite3_column_int(has, 0) > 0;
    if (hrc != SQLITE_OK && hrc != SQLITE_ROW) {
      sqlite3_finalize(has);
      fail(hrc, "cannot read the schema");
    }
    sqlite3_finalize(has);
    if (!present) {
      if (auto ec = exec(kAddUrlTemplate))
        fail(ec.value(), "cannot add browser_reports.url_template");
    }
  }
  if (auto ec = exec(kSchemaVersion)) fail(ec.value(), kSchemaVersion);
  auto prepare = [&](const char* sql, sqlite3_stmt** stmt, const char* what) {
    const int prc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, nullptr);
    if (prc != SQLITE_OK) fail(prc, std::string("cannot prepare the ") + what);
  };
  prepare(
      "INSERT INTO browser_reports (received_ns, event_ns, kind, type, endpoint, url, origin, "
      "nel_type, nel_phase, status_code, method, protocol, elapsed_ms, server_ip, server_asn, "
      "server_as_org, weight, client_prefix, country, city, asn, isp, ua_family, ua_major, body, "
      "url_template) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
      &insert_report_, "report insert");
  prepare(
      "INSERT OR IGNORE INTO probe_results (result_id, kind, time_ns, received_ns, probe_id, "
      "region, asn, check_name, check_kind, target_url, server_ip, outcome, status_code, "
      "total_ms, record) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
      &insert_result_, "result insert");
  prepare(
      "INSERT OR IGNORE INTO route_events (result_id, time_ns, received_ns, probe_id, check_name, "
      "event, collector, peer_ip, peer_asn, prefix, monitored_prefix, origin_asn, as_path, record) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
      &insert_route_event_, "route event insert");
  prepare(
      "INSERT OR IGNORE INTO bgp_alerts (result_id, time_ns, received_ns, probe_id, check_name, "
      "alert, status, alert_key, prefix, monitored_prefix, origin_asn, leaker_asn, record) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
      &insert_bgp_alert_, "BGP alert insert");
  prepare(
      "INSERT INTO heartbeats (probe_id, received_ns, time_ns, version, config_hash, "
      "spool_results, heartbeat_interval_ns) VALUES (?,?,?,?,?,?,?)",
      &insert_heartbeat_, "heartbeat insert");
  prepare(
      "INSERT INTO vantage_points (probe_id, region, country, asn, isp, version, revision, "
      "config_hash, config_source, served_config_hash, checks, spool_results, spool_bytes, "
      "heartbeat_interval_ns, started_ns, first_seen_ns, last_seen_ns, last_heartbeat_ns) "
      "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?16,?16) "
      "ON CONFLICT(probe_id) DO UPDATE SET region = excluded.region, country = excluded.country, "
      "asn = excluded.asn, isp = excluded.isp, version = excluded.version, "
      "revision = excluded.revision, config_hash = excluded.config_hash, "
      "config_source = excluded.config_source, served_config_hash = excluded.served_config_hash, "
      "checks = excluded.checks, spool_results = excluded.spool_results, "
      "spool_bytes = excluded.spool_bytes, heartbeat_interval_ns = excluded.heartbeat_interval_ns, "
      "started_ns = excluded.started_ns, "
      "first_seen_ns = coalesce(first_seen_ns, excluded.first_seen_ns), "
      "last_seen_ns = max(coalesce(last_seen_ns, 0), excluded.last_seen_ns), "
      "last_heartbeat_ns = max(coalesce(last_heartbeat_ns, 0), excluded.last_heartbeat_ns)",
      &upsert_vantage_point_, "vantage point upsert");
  prepare(
      "INSERT INTO vantage_points (probe_id, region, asn, first_seen_ns, last_seen_ns) "
      "VALUES (?1,?2,?3,?4,?4) ON CONFLICT(probe_id) DO UPDATE SET "
      "first_seen_ns = coalesce(first_seen_ns, excluded.first_seen_ns), "
      "last_seen_ns = max(coalesce(last_seen_ns, 0), excluded.last_seen_ns)",
      &touch_vantage_point_, "vantage point refresh");
  prepare("SELECT count(*) FROM vantage_points", &count_vantage_points_, "vantage point count");
  prepare(
      "INSERT INTO log_checkpoint (id, seq) VALUES (1, ?1) "
      "ON CONFLICT (id) DO UPDATE SET seq = max(seq, excluded.seq)",
      &set_log_checkpoint_, "log checkpoint update");
  prepare("SELECT seq FROM log_checkpoint WHERE id = 1", &get_log_checkpoint_,
          "log checkpoint query");
  count_vantage_points();
}

std::uint64_t SqliteStore::log_checkpoint() {
  std::uint64_t seq = 0;
  if (sqlite3_step(get_log_checkpoint_) == SQLITE_ROW) {
    seq = static_cast<std::uint64_t>(sqlite3_column_int64(get_log_checkpoint_, 0));
  }
  sqlite3_reset(get_log_checkpoint_);
  return seq;
}

void SqliteStore::finalize_fleet_statements() {
  for (sqlite3_stmt** s : {&insert_heartbeat_, &upsert_vantage_point_, &touch_vantage_point_,
                           &count_vantage_points_, &set_log_checkpoint_, &get_log_checkpoint_}) {
    sqlite3_finalize(*s);
    *s = nullptr;
  }
}

void SqliteStore::count_vantage_points() {
  if (sqlite3_step(count_vantage_points_) == SQLITE_ROW) {
    vantage_points_.store(static_cast<std::size_t>(sqlite3_column_int64(count_vantage_points_, 0)),
                          std::memory_order_relaxed);
  }
  sqlite3_reset(count_vantage_points_);
}

int SqliteStore::write_fleet(const Batch& batch) {
  auto step = [](sqlite3_stmt* s) {
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
  };
  int rc = SQLITE_OK;
  // A results upload refreshes last_seen_ns of its vantage point: one statement per probe.
  struct Seen {
    std::int64_t last_ns = 0;
    const ResultRecord* first = nullptr;
  };
  std::map<std::string_view, Seen> seen;
  for (const ResultRecord* r : batch.results) {
    Seen& s = seen[r->probe_id];
    if (!s.first) s.first = r;
    s.last_ns = std::max(s.last_ns, r->received_ns);
  }
  for (const auto& [probe_id, s] : seen) {
    sqlite3_stmt* st = touch_vantage_point_;
    bind_text(st, 1, s.first->probe_id, false);
    bind_text(st, 2, s.first->region);
    bind_asn(st, 3, s.first->asn);
    sqlite3_bind_int64(st, 4, s.last_ns);
    if ((rc = step(st)) != SQLITE_OK) return rc;
  }
  std::string checks;  // bound with SQLITE_STATIC: lives until the step
  for (const HeartbeatRecord* h : batch.heartbeats) {
    sqlite3_stmt* st = insert_heartbeat_;
    bind_text(st, 1, h->probe_id, false);
    sqlite3_bind_int64(st, 2, h->received_ns);
    bind_opt_int64(st, 3, h->time_ns);
    bind_text(st, 4, h->version);
    bind_text(st, 5, h->config_hash);
    bind_opt_int64(st, 6, h->spool_results);
    bind_opt_int64(st, 7, h->heartbeat_interval_ns);
    if ((rc = step(st)) != SQLITE_OK) return rc;
    st = upsert_vantage_point_;
    int i = 0;
    bind_text(st, ++i, h->probe_id, false);
    bind_text(st, ++i, h->region);
    bind_text(st, ++i, h->country);
    bind_opt_int64(st, ++i, h->asn);
    bind_text(st, ++i, h->isp);
    bind_text(st, ++i, h->version);
    bind_text(st, ++i, h->revision);
    bind_text(st, ++i, h->config_hash);
    bind_text(st, ++i, h->config_source);
    bind_text(st, ++i, h->served_config_hash);
    if (h->checks) {
      checks =
          nlohmann::json(*h->checks).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      bind_text(st, ++i, checks, false);
    } else {
      sqlite3_bind_null(st, ++i);
    }
    bind_opt_int64(st, ++i, h->spool_results);
    bind_opt_int64(st, ++i, h->spool_bytes);
    bind_opt_int64(st, ++i, h->heartbeat_interval_ns);
    bind_opt_int64(st, ++i, h->started_ns);
    sqlite3_bind_int64(st, ++i, h->received_ns);
    if ((rc = step(st)) != SQLITE_OK) return rc;
  }
  return rc;
}

SqliteStore::~SqliteStore() {
  sqlite3_finalize(insert_report_);
  sqlite3_finalize(insert_result_);
  sqlite3_finalize(insert_route_event_);
  sqlite3_finalize(insert_bgp_alert_);
  finalize_fleet_statements();
  sqlite3_close(db_);
}

std::error_code SqliteStore::exec(const char* sql) {
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? std::error_code() : std::error_code(rc, sqlite_category());
}

sqlite3_stmt* SqliteStore::bind_bgp(const ResultRecord& r) {
  const BgpRecord& b = *r.bgp;
  const bool event = r.kind == "route_event";
  sqlite3_stmt* s = event ? insert_route_event_ : insert_bgp_alert_;
  int i = 0;
  bind_text(s, ++i, r.id, false);
  sqlite3_bind_int64(s, ++i, r.time_ns);
  sqlite3_bind_int64(s, ++i, r.received_ns);
  bind_text(s, ++i, r.probe_id, false);
  bind_text(s, ++i, r.check, false);
  bind_text(s, ++i, b.event, false);
  if (event) {
    bind_text(s, ++i, b.collector);
    bind_text(s, ++i, b.peer_ip);
    bind_asn(s, ++i, b.peer_asn);
    bind_text(s, ++i, b.prefix);
  } else {
    bind_text(s, ++i, b.status, false);
    bind_text(s, ++i, b.alert_key, false);
    bind_text(s, ++i, b.prefix, false);
  }
  bind_text(s, ++i, b.monitored_prefix);
  if (b.origin) {
    sqlite3_bind_int64(s, ++i, *b.origin);
  } else {
    sqlite3_bind_null(s, ++i);
  }
  if (event) {
    bind_text(s, ++i, b.as_path);
  } else {
    bind_asn(s, ++i, b.leaker);
  }
  bind_text(s, ++i, r.json, false);
  return s;
}

WriteOutcome SqliteStore::write(const Batch& batch) {
  WriteOutcome out;
  if (auto ec = exec("BEGIN IMMEDIATE")) {
    out.error = ec;
    return out;
  }
  auto step = [&](sqlite3_stmt* s) {
    const int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
  };
  int rc = SQLITE_OK;
  std::string templated;  // bound with SQLITE_STATIC: lives until the step
  for (const BrowserRecord* r : batch.reports) {
    sqlite3_stmt* s = insert_report_;
    sqlite3_bind_int64(s, 1, r->received_ns);
    sqlite3_bind_int64(s, 2, r->event_ns);
    bind_text(s, 3, r->kind, false);
    bind_text(s, 4, r->type, false);
    bind_text(s, 5, r->endpoint, false);
    bind_text(s, 6, r->url, false);
    bind_text(s, 7, r->origin, false);
    bind_text(s, 8, r->nel_type);
    bind_text(s, 9, r->nel_phase);
    bind_opt_int(s, 10, r->status_code);
    bind_text(s, 11, r->method);
    bind_text(s, 12, r->protocol);
    bind_opt_double(s, 13, r->elapsed_ms);
    bind_text(s, 14, r->server_ip);
    bind_asn(s, 15, r->server_asn);
    bind_text(s, 16, r->server_as_org);
    sqlite3_bind_double(s, 17, r->weight);
    bind_text(s, 18, r->client_prefix, false);
    bind_text(s, 19, r->country);
    bind_text(s, 20, r->city);
    bind_asn(s, 21, r->asn);
    bind_text(s, 22, r->isp);
    bind_text(s, 23, r->ua_family);
    if (r->ua_major) {
      sqlite3_bind_int(s, 24, r->ua_major);
    } else {
      sqlite3_bind_null(s, 24);
    }
    bind_text(s, 25, r->body, false);
    if (r->url_template.empty()) {
      templated = ingest::template_url(r->url);  // a record made elsewhere (the generator, tests)
      bind_text(s, 26, templated, false);
    } else {
      bind_text(s, 26, r->url_template, false);
    }
    if ((rc = step(s)) != SQLITE_OK) break;
  }
  out.result_inserted.reserve(batch.results.size());
  for (const ResultRecord* r : batch.results) {
    if (rc != SQLITE_OK) break;
    if (r->bgp) {
      if ((rc = step(bind_bgp(*r))) != SQLITE_OK) break;
      out.result_inserted.push_back(sqlite3_changes(db_) > 0);
      continue;
    }
    sqlite3_stmt* s = insert_result_;
    bind_text(s, 1, r->id, false);
    bind_text(s, 2, r->kind, false);
    sqlite3_bind_int64(s, 3, r->time_ns);
    sqlite3_bind_int64(s, 4, r->received_ns);
    bind_text(s, 5, r->probe_id, false);
    bind_text(s, 6, r->region);
    bind_asn(s, 7, r->asn);
    bind_text(s, 8, r->check, false);
    bind_text(s, 9, r->check_kind);
    bind_text(s, 10, r->target_url);
    bind_text(s, 11, r->server_ip);
    bind_text(s, 12, r->outcome, false);
    bind_opt_int(s, 13, r->status_code);
    sqlite3_bind_double(s, 14, r->total_ms);
    bind_text(s, 15, r->json, false);
    if ((rc = step(s)) != SQLITE_OK) break;
    out.result_inserted.push_back(sqlite3_changes(db_) > 0);
  }
  if (rc == SQLITE_OK) rc = write_fleet(batch);
  if (rc == SQLITE_OK && batch.log_seq) {
    sqlite3_bind_int64(set_log_checkpoint_, 1, static_cast<std::int64_t>(batch.log_seq));
    rc = step(set_log_checkpoint_);
  }
  if (rc == SQLITE_OK) {
    if (auto ec = exec("COMMIT")) {
      rc = ec.value();
    }
  }
  if (rc != SQLITE_OK) {
    exec("ROLLBACK");
    out.error = std::error_code(rc, sqlite_category());
    out.result_inserted.clear();
  } else if (!batch.heartbeats.empty() || !batch.results.empty()) {
    count_vantage_points();
  }
  return out;
}

}  // namespace vantage::collector::store
