// The analysis tests' in-memory EventStore and the lab's compressed-clock options, shared by
// analyzer_test.cpp and fleet_test.cpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "analysis/detect/analyzer_options.hpp"
#include "analysis/store/event_store.hpp"

namespace vantage::analysis::testing {

constexpr std::int64_t kS = 1'000'000'000;
constexpr std::int64_t kT0 = 1'790'000'000 * kS;  // a whole second

// Rows kept in vectors, scanned by time; heartbeats keep EventStore's contract (each vantage
// point's last one before `from` first). The span is [kT0, kT0 + 200 s].
class MemoryStore : public EventStore {
 public:
  std::vector<ProbeResultRow> results;
  std::vector<BrowserReportRow> reports;
  std::vector<BgpAlertRow> alerts;
  std::vector<HeartbeatRow> heartbeats;  // in time order

  void scan_results(std::int64_t from, std::int64_t to,
                    const std::function<void(const ProbeResultRow&)>& fn) override {
    for (const auto& r : results) {
      if (r.time_ns >= from && r.time_ns < to) fn(r);
    }
  }
  void scan_reports(std::int64_t from, std::int64_t to,
                    const std::function<void(const BrowserReportRow&)>& fn) override {
    for (const auto& r : reports) {
      if (r.time_ns >= from && r.time_ns < to) fn(r);
    }
  }
  void scan_bgp_alerts(std::int64_t from, std::int64_t to,
                       const std::function<void(const BgpAlertRow&)>& fn) override {
    for (const auto& a : alerts) {
      if (a.time_ns >= from && a.time_ns < to) fn(a);
    }
  }
  void scan_heartbeats(std::int64_t from, std::int64_t to,
                       const std::function<void(const HeartbeatRow&)>& fn) override {
    std::map<std::string, HeartbeatRow> before;
    for (const auto& h : heartbeats) {
      if (h.received_ns < from) before[h.probe_id] = h;
    }
    std::vector<HeartbeatRow> out;
    for (const auto& [id, h] : before) out.push_back(h);
    for (const auto& h : heartbeats) {
      if (h.received_ns >= from && h.received_ns < to) out.push_back(h);
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const auto& a, const auto& b) { return a.received_ns < b.received_ns; });
    for (const auto& h : out) fn(h);
  }
  std::optional<std::pair<std::int64_t, std::int64_t>> time_span() override {
    return std::make_pair(kT0, kT0 + 200 * kS);
  }
};

// The lab's compressed clock: 1 s steps, 10 s windows, two results per vantage point per window.
inline AnalyzerOptions options() {
  AnalyzerOptions o;
  o.step_ns = kS;
  o.window_ns = 10 * kS;
  o.min_results = 2;
  o.open_after = 2;
  o.resolve_after = 3;
  o.bgp_hold_ns = 6 * kS;
  return o;
}

}  // namespace vantage::analysis::testing
