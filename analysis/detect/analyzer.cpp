#include "analysis/detect/analyzer.hpp"

#include <algorithm>
#include <limits>
#include <memory>

#include "analysis/detect/detectors.hpp"
#include "analysis/detect/tracker.hpp"
#include "analysis/detect/window.hpp"

namespace vantage::analysis {
namespace {

// The detectors in hand-over order: each reads what the ones before it handed over (HandOver's
// field comments say who writes and who reads what).
std::vector<std::unique_ptr<Detector>> detectors() {
  std::vector<std::unique_ptr<Detector>> out;
  out.push_back(make_silence_detector());
  out.push_back(make_outage_detector());
  out.push_back(make_reachability_detector());
  out.push_back(make_dns_detector());
  out.push_back(make_users_detector());
  out.push_back(make_http_error_detector());
  out.push_back(make_degraded_detector());
  out.push_back(make_slo_detector());
  out.push_back(make_bgp_detector());
  out.push_back(make_silence_hold());
  return out;
}

AnalysisResult run(const Window& w) {
  const AnalyzerOptions& o = w.options();
  AnalysisResult out;
  out.from_ns = w.from_ns();
  out.to_ns = w.to_ns();
  const int last = w.step_of(w.to_ns());  // the last whole step
  const int span = w.steps(o.window_ns);
  auto chain = detectors();
  IncidentTracker tracker(o.open_after, o.resolve_after);
  HandOver h;
  // Evaluations at whole steps only, never past the end of the range: a step still filling is
  // evaluated once it is complete (by the next `vantage watch` cycle), so times and ids stay on
  // the grid from one replay to the next.
  for (int m = span; m <= last; ++m) {
    const Evaluation e{m - span, m, w.time_of(m)};
    h.open = tracker.open_by_key();
    h.outage_checks.clear();
    h.outage_hosts.clear();
    h.elsewhere_only.clear();
    h.unreachable_asns.clear();
    h.pending.clear();
    h.claimed_bgp = tracker.claimed_bgp();
    h.evaluation = m;
    Findings findings;
    for (const auto& d : chain) d->evaluate(w, e, h, findings);
    tracker.update(e.time_ns, findings, out.events, out.incidents);
  }
  for (auto& i : tracker.open_incidents()) out.incidents.push_back(std::move(i));
  std::stable_sort(out.incidents.begin(), out.incidents.end(),
                   [](const Incident& a, const Incident& b) { return a.opened_ns < b.opened_ns; });
  return out;
}

}  // namespace

AnalysisResult analyze(EventStore& store, std::int64_t from_ns, std::int64_t to_ns,
                       const AnalyzerOptions& options,
                       const std::function<void(const ProbeResultRow&)>& on_result,
                       const std::function<void(const BrowserReportRow&)>& on_report) {
  Window window(options, from_ns, to_ns);
  std::uint64_t results = 0, reports = 0;
  // Heartbeats first (with each vantage point's last one before the range: a silence that began
  // earlier): the runs of a vantage point's silences are left out as they are added.
  store.scan_heartbeats(from_ns, to_ns, [&](const HeartbeatRow& r) { window.add(r); });
  store.scan_results(from_ns, to_ns, [&](const ProbeResultRow& r) {
    ++results;
    window.add(r);
    if (on_result) on_result(r);
  });
  store.scan_reports(from_ns, to_ns, [&](const BrowserReportRow& r) {
    ++reports;
    window.add(r);
    if (on_report) on_report(r);
  });
  // BGP alerts from a day before: one opened earlier may still be open (its resolution, if any,
  // comes later; one resolved without its opening in sight counts from the start).
  const std::int64_t day = 86'400'000'000'000;
  store.scan_bgp_alerts(
      from_ns > std::numeric_limits<std::int64_t>::min() + day ? from_ns - day : from_ns, to_ns,
      [&](const BgpAlertRow& a) { window.add(a); });

  AnalysisResult out = run(window);
  out.results = results;
  out.reports = reports;
  return out;
}

}  // namespace vantage::analysis
