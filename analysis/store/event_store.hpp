// What analysis reads: probe results and browser reports in a time range, streamed row by row
// (DESIGN §6). EventStore is the interface (a ClickHouse reader implements the same calls);
// SqliteEventStore reads the collector's SQLite file (docs/collector.md#store) over its own
// read-only connection, so it can run while the collector writes (WAL).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace vantage::analysis {

// One probe result (check_result / journey_result). Times are UTC nanoseconds, durations ms.
struct ProbeResultRow {
  std::int64_t time_ns = 0;
  std::int64_t received_ns = 0;  // when the collector stored it (0: unknown)
  std::string probe_id;          // vantage point
  std::string region;
  std::uint32_t asn = 0;  // the vantage point's ASN (0 unknown)
  std::string isp;        // the vantage point's ISP name
  std::string country;    // ISO 3166-1 alpha-2 of the vantage point
  std::string check;      // check id: the target key (the same check runs from many vantage points)
  std::string check_kind;
  std::string target;     // URL; for dns checks the check id; else the address connected to
  std::string server_ip;  // address connected to; the resolver for dns checks
  std::string outcome;    // "ok" or a failure type ("tcp.timed_out", …)
  std::optional<int> status_code;
  double total_ms = 0;
  std::string host;  // the target's host name (the URL's for http/journeys), "" if unknown
  // Failed runs only: journeys' first failing step (`outcome.step`) and the URL of the request
  // that failed (the failing step's; the check's URL otherwise), path templated
  // ("https://shop.example.com/api/cart/:id"); "" for passed runs.
  std::string step;
  std::string failed_url;
};

// One browser report or agent event.
struct BrowserReportRow {
  std::int64_t time_ns = 0;  // event time (receive − age)
  std::string kind;          // "browser_report" | "rum_event"
  std::string type;          // "network-error", "csp-violation", "http_error", …
  std::string url;           // without query, path templated ("…/api/cart/:id/total")
  std::string nel_type;      // NEL type ("ok", "http.error", "tcp.timed_out", …); "" otherwise
  std::optional<int> status_code;
  std::uint32_t asn = 0;
  std::string isp;
  std::string country;
  double weight = 1;  // 1 / sampling fraction
};

// One BGP alert transition from a probe's bgp check (docs/bgp.md#records).
struct BgpAlertRow {
  std::int64_t time_ns = 0;
  std::string alert;   // hijack, sub_prefix_hijack, route_leak, unexpected_upstream,
                       // visibility_loss, rpki_invalid
  std::string status;  // open | resolved
  std::string alert_key;
  std::string prefix;  // the announced prefix, e.g. "203.0.113.0/24"
  std::uint32_t origin_asn = 0, leaker_asn = 0;
  std::string
      severity;  // the monitor's, from its confidence score ("page", "ticket", "log"); "" if none
};

// One heartbeat a vantage point sent (POST /v1/heartbeat, the collector's `heartbeats` table),
// with what the collector's `vantage_points` table says of the vantage point (docs/collector.md).
struct HeartbeatRow {
  std::string probe_id;
  std::int64_t received_ns = 0;  // UTC ns, the collector's clock
  std::int64_t interval_ns = 0;  // the heartbeat interval it announced (0: not said)
  std::string region, isp, country;
  std::uint32_t asn = 0;
};

class EventStore {
 public:
  virtual ~EventStore() = default;
  // Calls `fn` for every row with from_ns <= time < to_ns, in no particular order (the
  // detectors bucket by time). Throws std::runtime_error on a read error.
  virtual void scan_results(std::int64_t from_ns, std::int64_t to_ns,
                            const std::function<void(const ProbeResultRow&)>& fn) = 0;
  virtual void scan_reports(std::int64_t from_ns, std::int64_t to_ns,
                            const std::function<void(const BrowserReportRow&)>& fn) = 0;
  // BGP alert transitions with from_ns <= time < to_ns, in time order (none in a store without
  // the bgp_alerts table).
  virtual void scan_bgp_alerts(std::int64_t from_ns, std::int64_t to_ns,
                               const std::function<void(const BgpAlertRow&)>& fn) = 0;
  // Heartbeats with from_ns <= received < to_ns in time order, preceded by each vantage point's
  // last heartbeat before from_ns (the one a silence that began earlier counts from). Vantage
  // points that never sent one are not there (older probes, heartbeats off). The default: none
  // (a store without the heartbeats table). Throws std::runtime_error on a read error.
  virtual void scan_heartbeats(std::int64_t from_ns, std::int64_t to_ns,
                               const std::function<void(const HeartbeatRow&)>& fn) {
    (void)from_ns, (void)to_ns, (void)fn;
  }
  // [first, last] event time over results, reports and heartbeats; nullopt when the store is
  // empty.
  virtual std::optional<std::pair<std::int64_t, std::int64_t>> time_span() = 0;
};

// Opens `path` read-only. Throws std::runtime_error naming the file when it cannot be opened or
// is not a collector store.
std::unique_ptr<EventStore> open_sqlite_store(const std::string& path);

}  // namespace vantage::analysis

namespace vantage::analysis {
struct Incident;

// Writes (inserts or replaces by id) incidents into the `incidents` table of the store at
// `path` (created when missing: id, kind, severity, status, opened_ns, resolved_ns, title,
// runbook, record = the incident's JSON). Throws std::runtime_error naming the file.
void save_incidents(const std::string& path, const std::vector<Incident>& incidents);

// One row of the collector's `vantage_points` table (docs/collector.md#fleet): a vantage point's
// latest state. Times are UTC ns (0 when NULL), config hashes "sha256:<hex>" as stored.
struct VantagePointRow {
  std::string probe_id, region, country, isp;
  std::uint32_t asn = 0;
  std::string version, revision;
  std::string config_hash, config_source;  // source: "file" | "collector" ("" unknown)
  std::string served_config_hash;          // what /v1/config serves it now ("" nothing)
  std::vector<std::string> checks;         // check ids it runs
  std::int64_t spool_results = 0, spool_bytes = 0;
  std::int64_t heartbeat_interval_ns = 0;
  std::int64_t started_ns = 0, first_seen_ns = 0, last_seen_ns = 0, last_heartbeat_ns = 0;
};

// Reads every row of `vantage_points` in probe id order. nullopt when the store has no such table
// (a collector before heartbeats). With `as_of_ns` (UTC ns), the fleet as it was then: vantage
// points first seen later are left out, and a row updated since takes its last heartbeat, last
// seen, version, config hash, spool depth and interval from the last `heartbeats` row received
// by then (none: last heartbeat and last seen 0, i.e. unknown; the spool bytes, checks and
// served hash stay the latest, which the history does not keep). Throws std::runtime_error
// naming the file when it cannot be opened or read.
std::optional<std::vector<VantagePointRow>> read_vantage_points(
    const std::string& path, std::optional<std::int64_t> as_of_ns = std::nullopt);
}  // namespace vantage::analysis
