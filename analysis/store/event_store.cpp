#include "analysis/store/event_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "analysis/detect/analyzer.hpp"
#include "beacon-collector/ingest/url_template.hpp"

namespace vantage::analysis {
namespace {

std::string text(sqlite3_stmt* s, int i) {
  const auto* p = sqlite3_column_text(s, i);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<std::size_t>(sqlite3_column_bytes(s, i)))
           : std::string();
}

std::optional<int> opt_int(sqlite3_stmt* s, int i) {
  if (sqlite3_column_type(s, i) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int(s, i);
}

// "https://shop.example.com:8443/a" -> "shop.example.com"; "" when `url` has no "://".
std::string host_of(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) return {};
  auto start = scheme + 3;
  const auto end = url.find_first_of("/?#", start);
  std::string authority =
      url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (const auto at = authority.rfind('@'); at != std::string::npos) authority.erase(0, at + 1);
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    return authority.substr(1, close == std::string::npos ? std::string::npos : close - 1);
  }
  if (const auto colon = authority.find(':'); colon != std::string::npos) authority.resize(colon);
  return authority;
}

std::int64_t int64_or_0(sqlite3_stmt* s, int i) {
  return sqlite3_column_type(s, i) == SQLITE_NULL ? 0 : sqlite3_column_int64(s, i);
}

class Statement {
 public:
  Statement(sqlite3* db, const char* sql, const std::string& path) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) {
      throw std::runtime_error(path + ": " + sqlite3_errmsg(db) +
                               " (is it a vantage-collector store?)");
    }
  }
  ~Statement() { sqlite3_finalize(s_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() const noexcept { return s_; }

 private:
  sqlite3_stmt* s_ = nullptr;
};

class SqliteEventStore final : public EventStore {
 public:
  explicit SqliteEventStore(std::string path) : path_(std::move(path)) {
    if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
      const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error("cannot open the store " + path_ + ": " + why);
    }
    sqlite3_busy_timeout(db_, 10000);
    try {
      Statement check(db_, "SELECT count(*) FROM probe_results WHERE 0", path_);  // is it a store?
    } catch (...) {
      sqlite3_close(db_);  // the destructor does not run for a throwing constructor
      throw;
    }
  }
  ~SqliteEventStore() override { sqlite3_close(db_); }

  void scan_results(std::int64_t from_ns, std::int64_t to_ns,
                    const std::function<void(const ProbeResultRow&)>& fn) override {
    ProbeResultRow r;
    each_row(
        // The host and the failing step come from the record, read only where the columns do
        // not say it (a tcp/tls/dns check's host; failed runs' step and URL).
        "SELECT time_ns, probe_id, region, asn, check_name, check_kind, target_url, server_ip, "
        "outcome, status_code, total_ms, "
        "CASE WHEN target_url IS NULL OR target_url = '' THEN json_extract(record, "
        "'$.target.host') END, "
        "CASE WHEN outcome != 'ok' THEN json_extract(record, '$.outcome.step') END, "
        "CASE WHEN outcome != 'ok' AND check_kind = 'journey' THEN json_extract(record, "
        "'$.steps[' || coalesce(json_extract(record, '$.outcome.step_index'), 0) || '].url') END, "
        "received_ns FROM probe_results",
        "time_ns", from_ns, to_ns, [&](sqlite3_stmt* s) {
          r.time_ns = sqlite3_column_int64(s, 0);
          r.received_ns = sqlite3_column_int64(s, 14);
          r.probe_id = text(s, 1);
          r.region = text(s, 2);
          r.asn = static_cast<std::uint32_t>(sqlite3_column_int64(s, 3));
          r.check = text(s, 4);
          r.check_kind = text(s, 5);
          r.target = text(s, 6);
          r.server_ip = text(s, 7);
          if (r.target.empty()) r.target = r.check_kind == "dns" ? r.check : r.server_ip;
          r.outcome = text(s, 8);
          r.status_code = opt_int(s, 9);
          r.total_ms = sqlite3_column_double(s, 10);
          r.host = text(s, 11);
          if (r.host.empty()) r.host = host_of(r.target);
          r.step = text(s, 12);
          r.failed_url.clear();
          if (r.outcome != "ok") {
            const std::string failed = text(s, 13);
            r.failed_url = collector::ingest::template_url(failed.empty() ? r.target : failed);
          }
          const Vantage& v = vantage(r.probe_id);
          r.isp = v.isp;
          r.country = v.country;
          fn(r);
        });
  }

  void scan_reports(std::int64_t from_ns, std::int64_t to_ns,
                    const std::function<void(const BrowserReportRow&)>& fn) override {
    BrowserReportRow r;
    // `url` is the endpoint template stored at ingest (store version 3); rows written before
    // (NULL, or no such column) get it here.
    const bool stored = has_url_template();
    each_row(std::string("SELECT event_ns, kind, type, ") +
                 (stored ? "coalesce(url_template, url)" : "url") +
                 ", nel_type, status_code, asn, isp, country, weight, " +
                 (stored ? "url_template IS NULL" : "1") + " FROM browser_reports",
             "event_ns", from_ns, to_ns, [&](sqlite3_stmt* s) {
               r.time_ns = sqlite3_column_int64(s, 0);
               r.kind = text(s, 1);
               r.type = text(s, 2);
               r.url = text(s, 3);
               if (sqlite3_column_int(s, 10)) r.url = collector::ingest::template_url(r.url);
               r.nel_type = text(s, 4);
               r.status_code = opt_int(s, 5);
               r.asn = static_cast<std::uint32_t>(sqlite3_column_int64(s, 6));
               r.isp = text(s, 7);
               r.country = text(s, 8);
               r.weight = sqlite3_column_double(s, 9);
               fn(r);
             });
  }

  void scan_bgp_alerts(std::int64_t from_ns, std::int64_t to_ns,
                       const std::function<void(const BgpAlertRow&)>& fn) override {
    {
      Statement t(db_,
                  "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'bgp_alerts'",
                  path_);
      if (sqlite3_step(t.get()) != SQLITE_ROW)
        throw std::runtime_error(path_ + ": " + sqlite3_errmsg(db_));
      if (sqlite3_column_int(t.get(), 0) == 0) return;
    }
    BgpAlertRow r;
    each_row(
        "SELECT time_ns, alert, status, alert_key, prefix, origin_asn, leaker_asn, "
        "json_extract(record, '$.severity') FROM bgp_alerts",
        "time_ns", from_ns, to_ns,
        [&](sqlite3_stmt* s) {
          r.time_ns = sqlite3_column_int64(s, 0);
          r.alert = text(s, 1);
          r.status = text(s, 2);
          r.alert_key = text(s, 3);
          r.prefix = text(s, 4);
          r.origin_asn = static_cast<std::uint32_t>(sqlite3_column_int64(s, 5));
          r.leaker_asn = static_cast<std::uint32_t>(sqlite3_column_int64(s, 6));
          r.severity = text(s, 7);
          fn(r);
        },
        /*in_time_order=*/true);
  }

  void scan_heartbeats(std::int64_t from_ns, std::int64_t to_ns,
                       const std::function<void(const HeartbeatRow&)>& fn) override {
    if (!has_table("heartbeats")) return;  // a store written before heartbeats
    // What the fleet table says of each vantage point (and its last heartbeat, for a history
    // pruned by retention).
    struct Fleet {
      HeartbeatRow meta;  // received_ns/interval_ns: vantage_points.last_heartbeat_ns, interval
    };
    std::map<std::string, Fleet> fleet;
    if (has_table("vantage_points")) {
      Statement q(db_,
                  "SELECT probe_id, region, isp, country, asn, last_heartbeat_ns, "
                  "heartbeat_interval_ns FROM vantage_points",
                  path_);
      int rc;
      while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
        HeartbeatRow& m = fleet[text(q.get(), 0)].meta;
        m.probe_id = text(q.get(), 0);
        m.region = text(q.get(), 1);
        m.isp = text(q.get(), 2);
        m.country = text(q.get(), 3);
        m.asn = static_cast<std::uint32_t>(int64_or_0(q.get(), 4));
        m.received_ns = int64_or_0(q.get(), 5);
        m.interval_ns = int64_or_0(q.get(), 6);
      }
      if (rc != SQLITE_DONE) throw std::runtime_error(path_ + ": " + sqlite3_errmsg(db_));
    }
    {  // vantage points with a heartbeat history but no fleet row (or no fleet table)
      Statement q(db_, "SELECT DISTINCT probe_id FROM heartbeats", path_);
      int rc;
      while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
        const std::string id = text(q.get(), 0);
        if (!fleet.count(id)) fleet[id].meta.probe_id = id;
      }
      if (rc != SQLITE_DONE) throw std::runtime_error(path_ + ": " + sqlite3_errmsg(db_));
    }
    std::vector<HeartbeatRow> rows;
    // Per vantage point over the (probe_id, received_ns) index: its last heartbeat before
    // from_ns, then those of the range.
    Statement before(db_,
                     "SELECT received_ns, heartbeat_interval_ns FROM heartbeats WHERE probe_id = ? "
                     "AND received_ns < ? ORDER BY received_ns DESC LIMIT 1",
                     path_);
    Statement range(db_,
                    "SELECT received_ns, heartbeat_interval_ns FROM heartbeats WHERE probe_id = ? "
                    "AND received_ns >= ? AND received_ns < ? ORDER BY received_ns",
                    path_);
    for (const auto& [id, f] : fleet) {
      HeartbeatRow r = f.meta;
      sqlite3_bind_text(before.get(), 1, id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(before.get(), 2, from_ns);
      int rc = sqlite3_step(before.get());
      if (rc == SQLITE_ROW) {
        r.received_ns = sqlite3_column_int64(before.get(), 0);
        r.interval_ns = int64_or_0(before.get(), 1);
        rows.push_back(r);
      } else if (rc == SQLITE_DONE) {
        // Pruned history: the fleet table's last heartbeat, when it is before the range.
        if (f.meta.received_ns > 0 && f.meta.received_ns < from_ns) rows.push_back(f.meta);
      } else {
        throw std::runtime_error(path_ + ": " + sqlite3_errmsg(db_));
      }
      sqlite3_reset(before.get());
      sqlite3_bind_text(range.get(), 1, id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(range.get(), 2, from_ns);
      sqlite3_bind_int64(range.get(), 3, to_ns);
      while ((rc = sqlite3_step(range.get())) == SQLITE_ROW) {
        r.received_ns = sqlite3_column_int64(range.get(), 0);
        r.interval_ns = int64_or_0(range.get(), 1);
        rows.push_back(r);
      }
      if (rc != SQLITE_DONE) throw std::runtime_error(path_ + ": " + sqlite3_errmsg(db_));
      sqlite3_reset(range.get());
    }
    std::stable_sort(rows.begin(), rows.end(), [](const HeartbeatRow& a, const HeartbeatRow& b) {
      return a.received_ns < b.received_ns;
    });
    for (const auto& r : rows) fn(r);
  }

  bool has_table(const char* name) {
    Statement t(db_, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", path_);
    sqlite3_bind_text(t.get(), 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(t.get()) != SQLITE_ROW)
      throw std::runtime_error(path_ + ": " + sqlite3_errmsg(db_));
    return sqlite3_column_int(t.get(), 0) > 0;
  }

  // Runs `select` over `time_col` in [from, to) and calls `row` for each row. A range covering
  // most of the store is read in storage order ("+col" keeps SQLite off the time index: a random
  // lookup per row, several times slower on millions of rows); `in_time_order` sorts.
  template <typename Row>  // a template: no second indirect call per row on the hot path
  void each_row(const std::string& select, const std::string& time_col, std::int64_t from,
                std::int64_t to, Row&& row, bool in_time_order = false) {
    const std::string col = (!in_time_order && wide(from, to) ? "+" : "") + time_col;
    const std::string sql = select + " WHERE " + col + " >= ? AND " + col + " < ?" +
                            (in_time_order ? " ORDER BY " + time_col : std::string());
    Statement q(db_, sql.c_str(), path_);
    sqlite3_bind_int64(q.get(), 1, from);
    sqlite3_bind_int64(q.get(), 2, to);
    int rc;
    while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) row(q.get());
    if (rc != SQLITE_DONE) throw std::runtime_error(path_ + ": " + sqlite3_errmsg(db_));
  }

  // Whether browser_reports has the url_template column (collector stores before version 3
  // do not).
  bool has_url_template() {
    if (!has_url_template_) {
      Statement q(db_,
                  "SELECT count(*) FROM pragma_table_info('browser_reports') WHERE name = "
                  "'url_template'",
                  path_);
      if (sqlite3_step(q.get()) != SQLITE_ROW)
        throw std::runtime_error(path_ + ": " + sqlite3_errmsg(db_));
      has_url_template_ = sqlite3_column_int(q.get(), 0) > 0;
    }
    return *has_url_template_;
  }

  // True when [from, to) covers at least a fifth of what the store holds.
  bool wide(std::int64_t from, std::int64_t to) {
    if (!span_) span_ = time_span().value_or(std::pair<std::int64_t, std::int64_t>{0, 0});
    const double all = static_cast<double>(span_->second - span_->first) + 1;
    const double covered =
        static_cast<double>(std::min(to, span_->second + 1) - std::max(from, span_->first));
    return covered >= 0.2 * all;
  }

  std::optional<std::pair<std::int64_t, std::int64_t>> time_span() override {
    if (!has_heartbeats_) has_heartbeats_ = has_table("heartbeats");
    // Heartbeats are stored in the order received: the first and last by id (no time index).
    const std::string heartbeats =
        *has_heartbeats_ ? " UNION ALL SELECT (SELECT received_ns FROM heartbeats ORDER BY id "
                           "LIMIT 1), (SELECT received_ns FROM heartbeats ORDER BY id DESC LIMIT 1)"
                         : "";
    Statement q(
        db_,
        ("SELECT min(t0), max(t1) FROM (SELECT min(time_ns) t0, max(time_ns) t1 FROM probe_results "
         "UNION ALL SELECT min(event_ns), max(event_ns) FROM browser_reports" +
         heartbeats + ")")
            .c_str(),
        path_);
    if (sqlite3_step(q.get()) != SQLITE_ROW)
      throw std::runtime_error(path_ + ": " + sqlite3_errmsg(db_));
    if (sqlite3_column_type(q.get(), 0) == SQLITE_NULL) return std::nullopt;
    return std::pair{sqlite3_column_int64(q.get(), 0), sqlite3_column_int64(q.get(), 1)};
  }

 private:
  struct Vantage {
    std::string isp, country;
  };
  // The vantage point's ISP and country are in its records, not in columns: looked up once per
  // vantage point (rows are stored in id order, which is time order, so the first match is near).
  const Vantage& vantage(const std::string& probe_id) {
    auto it = vantages_.find(probe_id);
    if (it != vantages_.end()) return it->second;
    Statement q(
        db_,
        "SELECT json_extract(record, '$.vantage.isp'), json_extract(record, '$.vantage.country') "
        "FROM probe_results WHERE probe_id = ? LIMIT 1",
        path_);
    sqlite3_bind_text(q.get(), 1, probe_id.data(), static_cast<int>(probe_id.size()),
                      SQLITE_STATIC);
    Vantage v;
    if (sqlite3_step(q.get()) == SQLITE_ROW) {
      v.isp = text(q.get(), 0);
      v.country = text(q.get(), 1);
    }
    return vantages_.emplace(probe_id, std::move(v)).first->second;
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  std::map<std::string, Vantage> vantages_;
  std::optional<std::pair<std::int64_t, std::int64_t>> span_;
  std::optional<bool> has_url_template_;
  std::optional<bool> has_heartbeats_;
};

}  // namespace

std::unique_ptr<EventStore> open_sqlite_store(const std::string& path) {
  return std::make_unique<SqliteEventStore>(path);
}

void save_incidents(const std::string& path, const std::vector<Incident>& incidents) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    const std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error("cannot open " + path + " to store the incidents: " + why);
  }
  struct Close {
    sqlite3* db;
    ~Close() { sqlite3_close_v2(db); }  // after every statement is finalized
  } close{db};
  sqlite3_busy_timeout(db, 10000);
  auto exec = [&](const char* sql) {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
      const std::string why = sqlite3_errmsg(db);
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      throw std::runtime_error(path + ": storing the incidents: " + why);
    }
  };
  exec(
      "CREATE TABLE IF NOT EXISTS incidents (id TEXT PRIMARY KEY, kind TEXT NOT NULL, severity "
      "TEXT NOT NULL, status TEXT NOT NULL, opened_ns INTEGER NOT NULL, resolved_ns INTEGER, "
      "title TEXT NOT NULL, runbook TEXT, record TEXT NOT NULL, key TEXT) WITHOUT ROWID");
  {  // stores written before the key column: add it (the old rows' keys from their ids)
    Statement q(db, "SELECT count(*) FROM pragma_table_info('incidents') WHERE name = 'key'", path);
    if (sqlite3_step(q.get()) == SQLITE_ROW && sqlite3_column_int(q.get(), 0) == 0) {
      exec("ALTER TABLE incidents ADD COLUMN key TEXT");
      exec(
          "UPDATE incidents SET key = substr(id, 1, instr(id, ' @') - 1) WHERE instr(id, ' @') > "
          "0");
    }
  }
  exec("CREATE INDEX IF NOT EXISTS incidents_key ON incidents(key, opened_ns)");
  exec("BEGIN IMMEDIATE");
  {
    // An upsert of the incident: a row of the same key whose time span overlaps it is the same
    // incident seen by an earlier replay (watch, or incidents over another range) — replaced,
    // so a second `vantage incidents` adds no row.
    Statement del(db,
                  "DELETE FROM incidents WHERE key = ? AND opened_ns <= ? AND "
                  "(resolved_ns IS NULL OR resolved_ns >= ?)",
                  path);
    Statement q(db,
                "INSERT OR REPLACE INTO incidents (id, kind, severity, status, opened_ns, "
                "resolved_ns, title, runbook, record, key) VALUES (?,?,?,?,?,?,?,?,?,?)",
                path);
    for (const auto& i : incidents) {
      const std::string key = i.key.text();
      {
        sqlite3_stmt* d = del.get();
        sqlite3_bind_text(d, 1, key.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(
            d, 2, i.resolved_ns ? i.resolved_ns : std::numeric_limits<std::int64_t>::max());
        sqlite3_bind_int64(d, 3, i.opened_ns);
        const int rc = sqlite3_step(d);
        sqlite3_reset(d);
        if (rc != SQLITE_DONE) {
          const std::string why = sqlite3_errmsg(db);
          sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
          throw std::runtime_error(path + ": storing an incident: " + why);
        }
      }
      sqlite3_stmt* s = q.get();
      const std::string json = incident_json(i);
      const std::string id = i.id();
      const std::string runbook = i.runbook();
      sqlite3_bind_text(s, 1, id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(s, 2, kind_name(i.key.kind).data(),
                        static_cast<int>(kind_name(i.key.kind).size()), SQLITE_STATIC);
      sqlite3_bind_text(s, 3, severity_name(i.severity).data(),
                        static_cast<int>(severity_name(i.severity).size()), SQLITE_STATIC);
      sqlite3_bind_text(s, 4, status_name(i.status).data(),
                        static_cast<int>(status_name(i.status).size()), SQLITE_STATIC);
      sqlite3_bind_int64(s, 5, i.opened_ns);
      if (i.resolved_ns) {
        sqlite3_bind_int64(s, 6, i.resolved_ns);
      } else {
        sqlite3_bind_null(s, 6);
      }
      sqlite3_bind_text(s, 7, i.title.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(s, 8, runbook.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(s, 9, json.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(s, 10, key.c_str(), -1, SQLITE_TRANSIENT);
      const int rc = sqlite3_step(s);
      sqlite3_reset(s);
      if (rc != SQLITE_DONE) {
        const std::string why = sqlite3_errmsg(db);
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw std::runtime_error(path + ": storing an incident: " + why);
      }
    }
  }
  exec("COMMIT");
}

}  // namespace vantage::analysis

namespace vantage::analysis {

std::optional<std::vector<VantagePointRow>> read_vantage_points(
    const std::string& path, std::optional<std::int64_t> as_of_ns) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    const std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error("cannot open the store " + path + ": " + why);
  }
  struct Close {
    sqlite3* db;
    ~Close() { sqlite3_close_v2(db); }
  } close{db};
  sqlite3_busy_timeout(db, 10000);
  {
    Statement t(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", path);
    sqlite3_bind_text(t.get(), 1, "vantage_points", -1, SQLITE_STATIC);
    if (sqlite3_step(t.get()) != SQLITE_ROW)
      throw std::runtime_error(path + ": " + sqlite3_errmsg(db));
    if (sqlite3_column_int(t.get(), 0) == 0) return std::nullopt;
  }
  Statement q(db,
              "SELECT probe_id, region, country, asn, isp, version, revision, config_hash, "
              "config_source, served_config_hash, checks, spool_results, spool_bytes, "
              "heartbeat_interval_ns, started_ns, first_seen_ns, last_seen_ns, last_heartbeat_ns "
              "FROM vantage_points ORDER BY probe_id",
              path);
  std::vector<VantagePointRow> out;
  int rc;
  while ((rc = sqlite3_step(q.get())) == SQLITE_ROW) {
    sqlite3_stmt* s = q.get();
    VantagePointRow v;
    v.probe_id = text(s, 0);
    v.region = text(s, 1);
    v.country = text(s, 2);
    v.asn = static_cast<std::uint32_t>(int64_or_0(s, 3));
    v.isp = text(s, 4);
    v.version = text(s, 5);
    v.revision = text(s, 6);
    v.config_hash = text(s, 7);
    v.config_source = text(s, 8);
    v.served_config_hash = text(s, 9);
    const auto checks = nlohmann::json::parse(text(s, 10), nullptr, /*allow_exceptions=*/false);
    if (checks.is_array()) {
      for (const auto& c : checks) {
        if (c.is_string()) v.checks.push_back(c.get<std::string>());
      }
    }
    v.spool_results = int64_or_0(s, 11);
    v.spool_bytes = int64_or_0(s, 12);
    v.heartbeat_interval_ns = int64_or_0(s, 13);
    v.started_ns = int64_or_0(s, 14);
    v.first_seen_ns = int64_or_0(s, 15);
    v.last_seen_ns = int64_or_0(s, 16);
    v.last_heartbeat_ns = int64_or_0(s, 17);
    out.push_back(std::move(v));
  }
  if (rc != SQLITE_DONE) throw std::runtime_error(path + ": " + sqlite3_errmsg(db));
  if (!as_of_ns) return out;
  // The fleet as it was at `as_of`: vantage points first seen later are left out, and a row
  // updated since takes its heartbeat-borne state from the last heartbeat received by then.
  bool have_history = false;
  {
    Statement t(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", path);
    sqlite3_bind_text(t.get(), 1, "heartbeats", -1, SQLITE_STATIC);
    have_history = sqlite3_step(t.get()) == SQLITE_ROW && sqlite3_column_int(t.get(), 0) > 0;
  }
  std::vector<VantagePointRow> then;
  for (auto& v : out) {
    if (v.first_seen_ns > *as_of_ns) continue;
    if (v.last_seen_ns > *as_of_ns || v.last_heartbeat_ns > *as_of_ns) {
      v.last_heartbeat_ns = 0;
      v.last_seen_ns = 0;
      if (have_history) {
        Statement h(db,
                    "SELECT received_ns, version, config_hash, spool_results, "
                    "heartbeat_interval_ns FROM heartbeats WHERE probe_id = ? AND received_ns <= "
                    "? ORDER BY received_ns DESC LIMIT 1",
                    path);
        sqlite3_bind_text(h.get(), 1, v.probe_id.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(h.get(), 2, *as_of_ns);
        if (sqlite3_step(h.get()) == SQLITE_ROW) {
          v.last_heartbeat_ns = v.last_seen_ns = sqlite3_column_int64(h.get(), 0);
          if (const auto ver = text(h.get(), 1); !ver.empty()) v.version = ver;
          if (const auto hash = text(h.get(), 2); !hash.empty()) v.config_hash = hash;
          v.spool_results = int64_or_0(h.get(), 3);
          if (const auto i = int64_or_0(h.get(), 4); i > 0) v.heartbeat_interval_ns = i;
        }
      }
    }
    then.push_back(std::move(v));
  }
  return then;
}

}  // namespace vantage::analysis
