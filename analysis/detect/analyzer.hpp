// Detectors and incidents (DESIGN §6): replays a store's probe results and browser reports minute
// by minute and turns what the detectors find into incidents with a lifecycle.
//
// Detectors (each evaluation looks at the last `window` of data):
//   reachability_loss — a target fails from some vantage points (connection-level failures:
//       tcp.*, tls.*, timeout, abandoned, unknown, http.protocol.error, …) while others reach it:
//       "fail from N of M", naming the failing vantage points' ASNs, regions and failure types;
//       corroborated by browser NEL reports of connection failures from the same ASNs and by BGP
//       alerts (hijack, route leak, visibility loss) for a prefix covering the target's address.
//   dns_failure — a dns check fails (dns.* or an answer outside the expected set) through some
//       resolvers while others answer; corroborated by NEL dns.* reports from the same ASNs.
//   http_error_spike — the share of 4xx or 5xx among the requests of one endpoint (URL path) in
//       one country that got an HTTP answer (NEL reports weighted by 1/sampling_fraction), against
//       the same key's share over the previous `baseline`: a one-sided test of the error report
//       count against the Poisson count the baseline share predicts (normal approximation,
//       z >= z_min), at least min_errors reports, at least min_share and twice the baseline share,
//       so that small numbers never page. One incident per endpoint and status class.
//   slo_burn — journeys and http checks against an SLO (a run is good when it passed within
//       latency_ms): multi-window, multi-burn-rate alerts after the Google SRE workbook (page: burn
//       rate >= 14.4 over 1 h and 5 min; ticket: >= 6 over 6 h and 30 min — the workbook pages on
//       that one too), a window counting only with at least 10 runs; p95/p99 reported.
//   bgp_<alert> (bgp_hijack, bgp_sub_prefix_hijack, bgp_route_leak, bgp_visibility_loss,
//       bgp_unexpected_upstream, bgp_rpki_invalid) — an alert of the probes' bgp checks
//       (docs/bgp.md) open for `bgp_hold` that no reachability_loss carries as evidence: a BGP
//       event nobody's traffic has (yet) shown. One that a reachability loss carries is part of
//       that incident, not one of its own (one outage, one incident).
// One outage, one incident: a vantage point whose connection failures went to an address no
// healthy vantage point reached looks like a wrong DNS answer — it counts toward
// reachability_loss only after a whole window without a dns_failure from its ASN, which takes it
// over; runs a localised incident explains (reachability, DNS, an error spike in the vantage
// point's country) are left out of the SLO.
// Incidents: a finding opens an incident after `open_after` consecutive evaluations (open), the
// incident is ongoing while later evaluations still find it (its scope widens, its severity can
// rise) and resolves after `resolve_after` consecutive evaluations without it (hysteresis: no
// flapping); one key (kind + scope) never has two unresolved incidents.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "analysis/store/event_store.hpp"

namespace vantage::analysis {

struct AnalyzerOptions {
  std::int64_t step_ns = 60'000'000'000;     // evaluation every minute
  std::int64_t window_ns = 300'000'000'000;  // detectors look at the last 5 minutes
  std::int64_t baseline_ns = 3'600'000'000'000;  // http_error_spike baseline: the hour before
  // reachability / dns: a vantage point (or resolver) fails when at least `min_results` results
  // in the window and at least `fail_ratio` of them failed; it is healthy under `ok_ratio`.
  int min_results = 3;
  double fail_ratio = 0.5;
  double ok_ratio = 0.2;
  // http_error_spike
  double z_min = 4.0;
  int min_errors = 10;
  double min_share = 0.05;
  // slo_burn
  double slo_objective = 0.99;
  double latency_ms = 2000;
  // Burn-rate windows (long, short) of the page and ticket alerts, and the runs a window needs.
  std::int64_t slo_page_long_ns = 3'600'000'000'000, slo_page_short_ns = 300'000'000'000;
  std::int64_t slo_ticket_long_ns = 21'600'000'000'000, slo_ticket_short_ns = 1'800'000'000'000;
  int slo_min_runs = 10;
  // bgp_<alert>: how long an alert stays open, unclaimed by a reachability loss, before it is an
  // incident of its own (0: one window).
  std::int64_t bgp_hold_ns = 0;
  // incidents
  int open_after = 2;
  int resolve_after = 5;
};

struct Incident {
  // What it is about ("reachability_loss asn=64502", "dns_failure resolver=192.0.2.13",
  // "http_error_spike endpoint=/api/checkout status=4xx", "slo_burn check=checkout") and when it
  // opened: "reachability_loss asn=64502 @2026-11-22T01:52:00Z". The same in every replay.
  std::string id;
  std::string kind;  // reachability_loss | dns_failure | http_error_spike | slo_burn | bgp_<alert>
  std::string severity;  // page | ticket | log (alerting pyramid); can rise while it lasts
  std::string opened_severity;  // the severity it opened with (Alertmanager's label)
  std::string status;    // open (this evaluation) | ongoing (seen again since) | resolved
  std::int64_t opened_ns = 0;
  std::int64_t resolved_ns = 0;  // 0 while open
  std::string title;             // one line, e.g. "shop-home unreachable from 1 of 4 vantage points (AS64501)"
  std::string runbook;           // docs/runbooks/<kind>.md
  // Scope.
  std::vector<std::string> targets;
  std::vector<std::uint32_t> asns;
  std::vector<std::string> isps;
  std::vector<std::string> regions;
  std::vector<std::string> countries;
  std::vector<std::string> endpoints;
  std::vector<std::string> prefixes;  // bgp_<alert>: the announced prefix
  // Evidence (from the evaluation that opened it, then the worst seen).
  std::map<std::string, double> failure_types;  // probe results by type
  std::map<std::string, double> browser_reports;  // weighted NEL/agent reports by type
  // reachability_loss: BGP alerts of the probe's bgp checks, open during the window, whose
  // prefix covers an address the failing vantage points connected to, e.g.
  // "route_leak 203.0.113.0/24 (leaker AS64510)".
  std::vector<std::string> bgp_alerts;
  int failing_vantage_points = 0;
  int vantage_points = 0;
  double value = 0;      // error share (spike), burn rate (slo), failure ratio (reachability)
  double baseline = 0;   // baseline share (spike)
  double p95_ms = 0, p99_ms = 0;  // slo_burn
};

// One incident transition, in time order.
struct IncidentEvent {
  std::int64_t time_ns = 0;
  std::string change;  // "opened" | "resolved"
  Incident incident;
};

struct AnalysisResult {
  std::vector<IncidentEvent> events;
  std::vector<Incident> incidents;  // every incident of the range, open or resolved
  std::int64_t from_ns = 0, to_ns = 0;
  std::uint64_t results = 0, reports = 0;  // rows read
};

// Replays [from_ns, to_ns) of `store`. Throws std::runtime_error on a read error.
// `on_result` / `on_report`, when set, also see every row (one pass for a report and the
// detectors).
AnalysisResult analyze(EventStore& store, std::int64_t from_ns, std::int64_t to_ns,
                       const AnalyzerOptions& options = {},
                       const std::function<void(const ProbeResultRow&)>& on_result = {},
                       const std::function<void(const BrowserReportRow&)>& on_report = {});

// JSON text of one incident (docs/analysis.md#incidents).
std::string incident_json(const Incident& incident);

}  // namespace vantage::analysis
