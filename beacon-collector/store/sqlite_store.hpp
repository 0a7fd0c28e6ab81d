// The embedded store: one SQLite database in WAL mode (https://sqlite.org/wal.html) with
// synchronous=FULL, so a committed batch survives a crash of the collector or the machine.
// Schema (user_version 3), documented column by column in docs/collector.md#store:
//   browser_reports(id, received_ns, event_ns, kind, type, endpoint, url, origin, nel_type,
//                   nel_phase, status_code, method, protocol, elapsed_ms, server_ip, server_asn,
//                   server_as_org, weight, client_prefix, country, city, asn, isp, ua_family,
//                   ua_major, body, url_template)
//   probe_results(result_id PRIMARY KEY, kind, time_ns, received_ns, probe_id, region, asn,
//                 check_name, check_kind, target_url, server_ip, outcome, status_code, total_ms,
//                 record)
//   route_events(result_id PRIMARY KEY, time_ns, received_ns, probe_id, check_name, event,
//                collector, peer_ip, peer_asn, prefix, monitored_prefix, origin_asn, as_path,
//                record)
//   bgp_alerts(result_id PRIMARY KEY, time_ns, received_ns, probe_id, check_name, alert, status,
//              alert_key, prefix, monitored_prefix, origin_asn, leaker_asn, record)
//   vantage_points(probe_id PRIMARY KEY, region, country, asn, isp, version, revision,
//                  config_hash, config_source, served_config_hash, checks, spool_results,
//                  spool_bytes, heartbeat_interval_ns, started_ns, first_seen_ns, last_seen_ns,
//                  last_heartbeat_ns)  -- latest state: upserted by heartbeats, last_seen_ns
//                                          also refreshed by probe results
//   heartbeats(id, probe_id, received_ns, time_ns, version, config_hash, spool_results,
//              heartbeat_interval_ns)
//   log_checkpoint(id = 1, seq)  -- the segment log's highest stored frame (segment_log.hpp)
// Only the writer thread calls write(); readers (analysis, tests) open their own connections.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <system_error>

#include "beacon-collector/store/store.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace vantage::collector::store {

// SQLite result codes (SQLITE_BUSY, SQLITE_FULL, …) as std::error_code.
const std::error_category& sqlite_category() noexcept;

class SqliteStore final : public Store {
 public:
  // Opens (creating if needed) the database and its schema; an older database is migrated in
  // place (version 1 gains the BGP tables, version 2 the browser_reports.url_template column,
  // NULL in the rows written before). Throws std::system_error naming the file when it cannot
  // be opened or migrated (start-up).
  explicit SqliteStore(const std::string& path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  WriteOutcome write(const Batch& batch) override;
  std::string describe() const override { return "sqlite:" + path_; }
  std::uint64_t log_checkpoint() override;  // the writer's thread (or before it starts)
  // Rows in vantage_points (the vantage points ever seen), as of the last commit. Any thread.
  std::size_t vantage_points() const noexcept {
    return vantage_points_.load(std::memory_order_relaxed);
  }

 private:
  std::error_code exec(const char* sql);
  std::string path_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_report_ = nullptr;
  sqlite3_stmt* insert_result_ = nullptr;
  sqlite3_stmt* insert_route_event_ = nullptr;
  sqlite3_stmt* insert_bgp_alert_ = nullptr;
  // Binds a route_event / bgp_alert record to its insert statement and returns the statement.
  sqlite3_stmt* bind_bgp(const ResultRecord& r);
  // The vantage_points / heartbeats writes of a batch, inside its transaction; an SQLite code.
  int write_fleet(const Batch& batch);
  void count_vantage_points();
  void finalize_fleet_statements();
  sqlite3_stmt* insert_heartbeat_ = nullptr;
  sqlite3_stmt* upsert_vantage_point_ = nullptr;
  sqlite3_stmt* touch_vantage_point_ = nullptr;
  sqlite3_stmt* count_vantage_points_ = nullptr;
  sqlite3_stmt* set_log_checkpoint_ = nullptr;
  sqlite3_stmt* get_log_checkpoint_ = nullptr;
  std::atomic<std::size_t> vantage_points_{0};
};

}  // namespace vantage::collector::store
