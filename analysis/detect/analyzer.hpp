// Detectors and incidents (DESIGN §6, docs/analysis.md): replays a store's probe results,
// browser reports and BGP alerts step by step through the detectors (detectors.hpp, in their
// hand-over order) and the incident tracker (tracker.hpp).
//
// Detectors (each evaluation looks at the last `window` of data):
//   outage — a target's host fails from (nearly) every vantage point, in several networks: one
//       incident, absorbing the per-network findings and the SLO burn it explains.
//   reachability_loss — a target fails from some vantage points (connection-level failures:
//       tcp.*, tls.*, timeout, abandoned, unknown, http.protocol.error, …) while others reach it,
//       one incident per network, corroborated by users' NEL reports and BGP alerts (hijack,
//       route leak, visibility loss) covering the target's address; or users' NEL alone shows a
//       network's connection and DNS failures far above its baseline and the other networks'.
//   dns_failure — a dns check fails (dns.* or an answer outside the expected set) through some
//       resolvers while others answer; it takes over the connection failures behind it.
//   http_error — HTTP error answers on one endpoint: probes' statuses ("403 on /api/products
//       from AS64503") and users' 4xx/5xx share against its baseline (Poisson test).
//   degraded — one network's partial failure or slowness, well above the other networks'.
//   slo_burn — journeys and http checks burning their error budget (multi-window burn rates
//       after the Google SRE workbook); runs another incident explains are left out.
//   bgp_<alert> — an alert of the probes' bgp checks (docs/bgp.md) open for `bgp_hold` that no
//       reachability loss carries as evidence.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "analysis/detect/analyzer_options.hpp"
#include "analysis/detect/incident.hpp"
#include "analysis/store/event_store.hpp"

namespace vantage::analysis {

struct AnalysisResult {
  std::vector<IncidentEvent> events;
  std::vector<Incident> incidents;  // every incident of the range, open or resolved, by opened time
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

}  // namespace vantage::analysis
