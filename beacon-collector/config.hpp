// vantage-collector's configuration (strict YAML; every key is documented in
// docs/collector.md#configuration). Defaults live here, in one place.
//
// load_collector_config() throws vantage::ConfigError ("file:line:col: key: message") on any
// unknown key, wrong type, out-of-range value, unreadable file (TLS, GeoIP) or cross-field error.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "beacon-collector/enrich/client_ip.hpp"
#include "beacon-collector/store/retention.hpp"
#include "common/log.hpp"

namespace vantage {
class ConfigNode;
}

namespace vantage::collector {

// A token bucket: `rate` requests per second sustained, `burst` at once. rate 0 = unlimited.
struct RateLimit {
  double rate = 0;
  double burst = 0;
};

struct Limits {
  std::uint64_t max_body_bytes = 64 * 1024;        // browser uploads; larger: 413 before reading
  std::uint64_t max_results_body_bytes = 4 << 20;  // probe uploads (NDJSON batches)
  std::uint64_t max_header_bytes = 16 * 1024;      // request line + headers: 431
  int max_reports_per_batch = 100;                 // Reporting API array / agent events: 400
  int max_results_per_upload = 1000;               // probe results (NDJSON lines) per upload: 400
  int max_json_depth = 16;                         // nesting of objects/arrays: 400
  std::uint64_t max_string_bytes = 16 * 1024;      // any JSON string (key or value): 400
  std::chrono::milliseconds request_timeout{10'000};  // first byte -> whole request read
  std::chrono::milliseconds idle_timeout{60'000};     // keep-alive wait for the next request
  std::chrono::milliseconds max_report_age{24 * 3600 * 1000LL};  // older `age`: report dropped
  // Open connections at once (all threads together); 0 = derived at start from the open-file
  // limit: min(16384, RLIMIT_NOFILE - 128), the 128 kept for the store, databases and logs.
  // When full, the longest-idle keep-alive connection is closed for a new one.
  int max_connections = 0;
  RateLimit per_ip{50, 200};         // per client address (after trusted-proxy resolution)
  RateLimit per_origin{2000, 5000};  // per `Origin` header (browser endpoints)
};

struct TlsConfig {
  std::string cert_file;  // PEM chain
  std::string key_file;   // PEM private key
};

struct GeoIpConfig {
  std::string city_db;  // GeoIP2/GeoLite2-City (or -Country) .mmdb; empty = none
  std::string asn_db;   // GeoLite2-ASN .mmdb; empty = none
  std::string isp_db;   // GeoIP2-ISP .mmdb (ASN + ISP name); empty = none
};

struct StoreConfig {
  std::string sqlite_path;                           // the SQLite database file (WAL mode)
  std::size_t queue_records = 100'000;               // bounded queue between ingest and the writer
  std::size_t batch_records = 5'000;                 // most records per transaction
  std::chrono::microseconds commit_interval{5'000};  // group commit: wait for more records
  // The segment log browser uploads are written to (and fdatasync'ed) before their 204
  // (store/segment_log.hpp). "" in the file = "<sqlite>-log" beside the database; load fills it.
  std::string log_dir;
  std::uint64_t log_segment_bytes = 64ULL << 20;  // a segment is closed at this size (bytes)
  // Retention per table (store.retention.<table>: browser_reports, probe_results, route_events,
  // bgp_alerts, heartbeats, incidents); absent = kept forever (docs/collector.md#retention).
  store::RetentionPolicy retention;
  std::chrono::nanoseconds prune_interval{std::chrono::seconds(60)};  // between prune passes
  std::int64_t prune_batch_rows = 2000;  // rows per delete transaction (the write lock's hold)
};

// One accepted bearer token. A probe with several tokens (a rotation: the old and the new one
// valid together) has one ProbeToken per token, in file order.
struct ProbeToken {
  std::string probe_id;  // the vantage point this token authenticates
  std::string token;     // secret (never logged)
};

// Central configuration and liveness of the vantage points (docs/collector.md#fleet).
struct FleetConfig {
  // GET /v1/config serves <config_dir>/<probe_id>.yaml, else <config_dir>/default.yaml; files
  // are read at each request. Empty = central configuration off (404).
  std::string config_dir;
};

struct Paths {
  std::string prefix;                            // e.g. "/_v"; "" = none
  std::vector<std::string> reports{"/reports"};  // also matches "<path>/<endpoint-name>"
  std::vector<std::string> csp{"/csp"};
  std::vector<std::string> beacon{"/beacon"};
  std::vector<std::string> results{"/v1/results"};
  std::vector<std::string> config{"/v1/config"};        // GET: a probe's central configuration
  std::vector<std::string> heartbeat{"/v1/heartbeat"};  // POST: a probe's heartbeat
};

struct CollectorConfig {
  std::string source_file;
  std::string listen_address = "127.0.0.1";
  std::uint16_t listen_port = 8080;
  // One io_context per thread; their acceptors share ONE listening socket (dup()ed), bound
  // without SO_REUSEPORT, so that no other process can join the port.
  int threads = 1;
  std::chrono::milliseconds shutdown_timeout{10'000};
  std::optional<TlsConfig> tls;
  Paths paths;
  // Allowed page origins, e.g. "https://shop.example.com", "https://*.example.com",
  // "https://*.test:*". Empty = any origin.
  std::vector<std::string> allowed_origins;
  std::vector<enrich::Cidr> trusted_proxies;
  int ipv4_prefix_length = 24;  // client addresses are truncated to these before storing
  int ipv6_prefix_length = 48;
  GeoIpConfig geoip;
  Limits limits;
  StoreConfig store;
  std::vector<ProbeToken> probes;
  FleetConfig fleet;
  log::Level log_level = log::Level::info;
};

// The keys SIGHUP cannot change (the socket, the threads, TLS, the store, max_connections):
// the dotted names of those that differ between `running` and `next`, e.g. {"listen",
// "store.sqlite"}. Everything else is applied by a reload.
std::vector<std::string> restart_only_changes(const CollectorConfig& running,
                                              const CollectorConfig& next);
// `next` with every restart-only key set back to `running`'s value.
CollectorConfig keep_restart_only(const CollectorConfig& running, CollectorConfig next);

// Reads and validates a collector config file. Throws ConfigError.
CollectorConfig load_collector_config(const std::string& path);
// Same, from YAML text (`name` stands for the file name in messages). Throws ConfigError.
CollectorConfig parse_collector_config(const ConfigNode& root);

}  // namespace vantage::collector
