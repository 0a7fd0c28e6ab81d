// The detectors' and the incident tracker's settings, with their defaults (the one place they are
// written; `vantage incidents|watch|report` flags override them, docs/analysis.md#detectors).
// Durations are nanoseconds.
#pragma once

#include <cstdint>

namespace vantage::analysis {

struct AnalyzerOptions {
  std::int64_t step_ns = 60'000'000'000;         // evaluation every minute
  std::int64_t window_ns = 300'000'000'000;      // detectors look at the last 5 minutes
  std::int64_t baseline_ns = 3'600'000'000'000;  // http_error (users) and users' NEL baseline
  // reachability / dns / outage: a vantage point (or resolver) fails when at least
  // `min_results` results in the window and at least `fail_ratio` of them failed; it is healthy
  // under `ok_ratio`.
  int min_results = 3;
  double fail_ratio = 0.5;
  double ok_ratio = 0.2;
  // outage: at least this share of the vantage points that ran a target's checks fail it, in at
  // least two networks.
  double outage_share = 0.8;
  // degraded: over `degraded_window_ns` (0: 6 windows), a network's share of bad runs (failed,
  // or slower than latency_ms) reaches degraded_share and twice the other networks'; it holds
  // while the share stays above half of that.
  std::int64_t degraded_window_ns = 0;
  double degraded_share = 0.2;
  // http_error from users, and users' NEL per network: a one-sided Poisson test (z >= z_min)
  // with at least min_errors weighted reports, at least min_share and twice the baseline share.
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
  int open_after = 2;     // evaluations with a finding before an incident opens
  int resolve_after = 5;  // clean evaluations before it resolves
};

}  // namespace vantage::analysis
