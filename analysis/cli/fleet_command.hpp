// `vantage fleet` (docs/analysis.md#vantage-fleet): the vantage points the collector knows, from
// its `vantage_points` table (docs/collector.md#fleet) — where each sits, when it was last seen,
// the version and configuration it runs, whether that drifted from the fleet's, its spool depth
// and whether it is silent — as aligned text or JSON.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "analysis/store/event_store.hpp"
#include "common/time.hpp"

namespace vantage::analysis::cli {

// One vantage point as `vantage fleet` shows it.
struct FleetEntry {
  VantagePointRow row;
  // Drift: it takes its checks from the collector (config_source "collector") and runs another
  // document than the one served now (config_hash != served_config_hash, or nothing served);
  // its version (when known) is not the fleet's most common one.
  bool config_drift = false, version_drift = false;
  // "ok"; "silent" when now - last heartbeat >= 3 × its heartbeat interval (the
  // vantage_point_silent rule); "unknown" when it never sent a heartbeat (an older probe, or
  // heartbeats off).
  std::string state;
};

struct Fleet {
  std::int64_t now_ns = 0;          // UTC ns: the time ages and states are taken at
  std::string common_version;       // the most common version (ties: the highest); "" when none
  std::vector<FleetEntry> entries;  // by probe id
};

// Classifies `rows` at `now_ns`.
Fleet build_fleet(std::vector<VantagePointRow> rows, std::int64_t now_ns);
// Aligned columns (PROBE REGION NETWORK LAST-SEEN VERSION CONFIG DRIFT SPOOL STATE) under a line
// that counts them.
std::string render_fleet_text(const Fleet& fleet);
// {"time", "common_version", "vantage_points": [{probe_id, region, country, asn, isp, version,
// revision, config_source, config_hash, served_config_hash, config_drift, version_drift, checks,
// spool_results, spool_bytes, heartbeat_interval_s, started, first_seen, last_seen,
// last_heartbeat (RFC 3339 or null), last_seen_age_s, state}]}.
std::string render_fleet_json(const Fleet& fleet);

// `vantage fleet --db FILE [--format text|json] [--now TIME]`: the fleet at `now` (as --from
// takes it: RFC 3339, `now` or a duration before now; "" = the clock's now, the latest state; an
// earlier time reads the heartbeats history, see read_vantage_points). Writes to `out`; returns
// 0, 1 (an error on stderr: no such store, no vantage_points table) or 2 (a bad --now).
int fleet(const std::string& db, const std::string& format, const std::string& now,
          const Clock& clock, std::FILE* out = stdout);

}  // namespace vantage::analysis::cli
