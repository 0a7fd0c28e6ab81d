// Incidents (DESIGN §6): what the detectors (analysis/detect/detectors.hpp) found, typed — a kind,
// a key (kind + scope) that identifies it across replays, the time it opened, its severity and
// status, and typed evidence — and the JSON and titles people read (docs/analysis.md#incidents).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vantage::analysis {

// What an incident is about. The names (kind_name) are the `kind` of the JSON, the store and the
// notifications; each has a runbook, docs/runbooks/<name>.md (bgp_* share bgp.md).
enum class Kind {
  outage,             // one target unreachable from (nearly) every vantage point
  reachability_loss,  // one network cannot reach a target others reach (probes and/or users' NEL)
  dns_failure,        // a resolver fails or answers wrongly while others answer
  degraded,           // one network: partial failure or slowness well above the others
  http_error,         // HTTP error answers on one endpoint (probes' statuses, users' error spike)
  slo_burn,           // a check burning its error budget (multi-window burn rate)
  // a vantage point sent no heartbeat for 3 of its intervals (the probe, its host or its network
  // is down — not its targets: its missing results are no evidence for the other kinds)
  vantage_point_silent,
  bgp_hijack,
  bgp_sub_prefix_hijack,
  bgp_route_leak,
  bgp_visibility_loss,
  bgp_unexpected_upstream,
  bgp_rpki_invalid,
  bgp_private_origin,
  bgp_moas,
  bgp_other,  // an alert this version does not know (a newer probe)
};
std::string_view kind_name(Kind kind);
// "hijack" -> Kind::bgp_hijack; an unknown alert -> Kind::bgp_other.
Kind bgp_kind(std::string_view alert);
bool is_bgp(Kind kind);

// The alerting pyramid, in rising order: log < ticket < page.
enum class Severity { log, ticket, page };
std::string_view severity_name(Severity severity);
std::optional<Severity> parse_severity(std::string_view text);

enum class Status {
  open,      // opened at this evaluation
  ongoing,   // open, seen again since
  resolved,  // resolved after `resolve_after` clean evaluations
};
std::string_view status_name(Status status);

// Identifies an incident across evaluations and replays: its kind and its scope text, e.g.
// {reachability_loss, "asn=64502"}, {http_error, "endpoint=/api/products status=4xx"},
// {outage, "target=shop.example.com"}, {vantage_point_silent, "probe=eu-west-1"}. One key never has
// two unresolved incidents.
struct IncidentKey {
  Kind kind = Kind::reachability_loss;
  std::string scope;
  std::string text() const;  // "reachability_loss asn=64502"
  auto operator<=>(const IncidentKey&) const = default;
};

struct Incident {
  IncidentKey key;
  Severity severity = Severity::ticket;  // can rise while it lasts
  Severity opened_severity =
      Severity::ticket;  // the severity it opened with (Alertmanager's label)
  Status status = Status::open;
  std::int64_t opened_ns = 0;    // UTC ns, on the evaluation grid
  std::int64_t resolved_ns = 0;  // UTC ns; 0 while open
  // One line, fixed when the incident opens (OPENED and RESOLVED print the same), e.g.
  // "shop.example.com unreachable from AS64501 Northwind Telecom (tcp.timed_out)".
  std::string title;
  // The current state in one line; widens with the scope, e.g. "from 2 of 4 vantage points
  // in AS64501, AS64502; 12 users' NEL reports (tcp.timed_out)".
  std::string summary;
  // Scope.
  std::vector<std::string> targets;  // URLs, host names, "check via resolver"
  std::vector<std::string> checks;   // check ids (journeys: "checkout step browse")
  std::vector<std::uint32_t> asns;
  std::vector<std::string> isps;
  std::vector<std::string> regions;
  std::vector<std::string> countries;
  std::vector<std::string> endpoints;  // URL paths, ids templated (`/api/cart/:id`)
  std::vector<std::string> prefixes;   // bgp_*: the announced prefix
  std::vector<int> statuses;           // http_error: the HTTP status codes seen (403, 503)
  // The probe ids of the vantage points whose runs are the evidence (the failing ones);
  // vantage_point_silent: the silent one.
  std::vector<std::string> probes;
  // Evidence (the worst seen while it lasted).
  std::map<std::string, double> failure_types;    // probe results by failure type
  std::map<std::string, double> browser_reports;  // weighted NEL/agent reports by type
  // BGP alerts of the probes' bgp checks open meanwhile whose prefix covers an address the
  // failing vantage points connected to, e.g. "route_leak 203.0.113.0/24 (leaker AS64510)".
  std::vector<std::string> bgp_alerts;
  int failing_vantage_points = 0;
  int vantage_points = 0;  // vantage points that ran the failing checks in the window
  int networks = 0;        // distinct ASNs among the failing vantage points (outage)
  double users = 0;        // weighted browser reports behind the finding (users-only findings)
  double value = 0;     // failure ratio (reachability, outage, degraded), error share (http_error
                        // from users), burn rate (slo_burn), failure share (users' NEL)
  double baseline = 0;  // the baseline share (http_error from users, users' NEL, degraded)
  double p95_ms = 0, p99_ms = 0;  // slo_burn, degraded: of the runs in the window
  // vantage_point_silent: its last heartbeat (UTC ns) and the interval it announced (ns).
  std::int64_t last_heartbeat_ns = 0, heartbeat_interval_ns = 0;

  // "reachability_loss asn=64502 @2026-11-22T01:52:00Z": the key and the opened time.
  std::string id() const;
  // docs/runbooks/<kind>.md
  std::string runbook() const;
};

// One incident transition, in time order.
enum class Change { opened, escalated, resolved };  // escalated: its severity rose
std::string_view change_name(Change change);

struct IncidentEvent {
  std::int64_t time_ns = 0;
  Change change = Change::opened;
  Incident incident;  // as it was at that time
};

// JSON text of one incident (docs/analysis.md#incidents): id, kind, severity, opened_severity,
// status, title, summary, runbook, opened/resolved (RFC 3339 UTC), scope{…}, evidence{…}.
std::string incident_json(const Incident& incident);

}  // namespace vantage::analysis
