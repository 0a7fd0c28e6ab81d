// What the collector stores: one BrowserRecord per browser report or agent event, one
// ResultRecord per probe result, one HeartbeatRecord per probe heartbeat. Columns and units are
// documented in docs/collector.md#store. Nothing here holds a raw client address, a cookie, a query
// string or a full user agent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/observation.hpp"

namespace vantage::collector {

struct BrowserRecord {
  std::int64_t received_ns = 0;  // UTC nanoseconds, when the upload was read
  std::int64_t event_ns = 0;     // UTC nanoseconds: received_ns - age
  std::string kind;              // "browser_report" (Reporting API, NEL, CSP) | "rum_event" (agent)
  // Reporting API type ("network-error", "csp-violation", "deprecation", "intervention",
  // "crash", "coep", "integrity-violation", "permissions-policy-violation", or an unknown type
  // kept as sent) or agent event type ("js_error", "http_error", "timing", "unknown").
  std::string type;
  std::string endpoint;  // where it arrived: "reports/<group>", "csp", "beacon"
  std::string url;       // the report's document/request URL, query and fragment removed
  // `url` with the path segments that identify an object replaced with ":id"
  // ("https://shop.example.com/api/cart/:id/total"; ingest/url_template.hpp): the endpoint the
  // analysis aggregates by. The store derives it from `url` when it is empty.
  std::string url_template;
  std::string origin;  // the upload's Origin header ("" when absent)
  // Network Error Logging (type == "network-error"); http_error events set status_code/method.
  std::string nel_type;   // "ok", "http.error", "dns.name_not_resolved", "tcp.refused", …
  std::string nel_phase;  // "dns" | "connection" | "application"
  std::optional<int> status_code;
  std::string method;
  std::string protocol;              // "http/1.1", "h2", "h3"
  std::optional<double> elapsed_ms;  // NEL elapsed_time; agent: request / navigation duration
  std::string server_ip;             // NEL server_ip (the address the browser connected to)
  std::uint32_t server_asn = 0;      // … and its AS (GeoIP), 0 when unknown
  std::string server_as_org;
  double weight = 1;  // 1 / NEL sampling_fraction; 1 otherwise
  // Who: enriched from the client address, which is then truncated.
  std::string client_prefix;  // "81.2.69.0/24", "2001:db8:1::/48"
  std::string country;        // ISO 3166-1 alpha-2
  std::string city;
  std::uint32_t asn = 0;
  std::string isp;        // ISP name or AS organisation
  std::string ua_family;  // "Chrome", "HeadlessChrome", "Firefox", "Safari", "Edge", "Other"
  int ua_major = 0;
  std::string body;  // the report body as JSON (URLs in it sanitised like `url`)
};

struct ResultRecord {
  std::string id;                // the result's unique id (duplicates are dropped by it)
  std::string kind;              // "check_result" | "journey_result" | "route_event" | "bgp_alert"
  std::int64_t time_ns = 0;      // UTC nanoseconds, when the check ran
  std::int64_t received_ns = 0;  // UTC nanoseconds, when the collector read it
  std::string probe_id;
  std::string region;
  std::uint32_t asn = 0;
  std::string check;
  std::string check_kind;  // "http", "dns", "tcp", "tls", "journey", …
  std::string target_url;
  std::string server_ip;
  std::string outcome;  // failure type ("ok", "tcp.timed_out", …)
  std::optional<int> status_code;
  double total_ms = 0;
  std::string json;  // the whole result line as the probe sent it
  // kind "route_event" | "bgp_alert" (a probe's bgp check): its indexed fields; stored in the
  // route_events / bgp_alerts tables instead of probe_results.
  std::optional<BgpRecord> bgp;
};

// A probe's heartbeat (POST /v1/heartbeat, docs/collector.md#fleet): one row in `heartbeats`
// and the latest state of its row in `vantage_points`. Absent optional fields are NULL.
struct HeartbeatRecord {
  std::int64_t received_ns = 0;  // UTC nanoseconds, when the collector read it
  std::string probe_id;          // the token's vantage point (the body must name the same)
  std::string region, country, isp;
  std::optional<std::int64_t> asn;
  std::string version, revision;  // the probe's build ("0.3.0", "a2487b4")
  std::string config_hash;        // "sha256:<hex>" of the configuration the probe runs
  std::string config_source;      // "file" | "collector"
  // "sha256:<hex>" of what GET /v1/config serves this vantage point at received_ns; "" = nothing
  std::string served_config_hash;
  std::optional<std::vector<std::string>> checks;          // the check ids it runs
  std::optional<std::int64_t> spool_results, spool_bytes;  // results / bytes waiting in its spool
  std::optional<std::int64_t> heartbeat_interval_ns;       // its heartbeat interval
  std::optional<std::int64_t> started_ns;                  // UTC ns, when the probe started
  std::optional<std::int64_t> time_ns;                     // UTC ns, the probe's clock at sending
};

}  // namespace vantage::collector
