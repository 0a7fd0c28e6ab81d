// The vantage points themselves (docs/analysis.md#silent-vantage-points): a vantage point that
// stops sending heartbeats is silent — an incident of its own, and no evidence for any other.
#include <algorithm>

#include "analysis/detect/detectors.hpp"

namespace vantage::analysis {
namespace {

// --- vantage_point_silent ----------------------------------------------------------------------
// From the heartbeats (Window::silence): a vantage point whose last heartbeat received before the
// evaluation is kSilentIntervals of its announced interval old is silent — a ticket, scope its
// probe id, opened at last heartbeat + 3 intervals and resolved at the next heartbeat (exact
// times, no hysteresis). Vantage points never heard from by heartbeat raise nothing. Runs first:
// it hands the silent ones to every other detector (the runs inside a silence, delivered late,
// the window already left out).
// (With a step longer than three heartbeat intervals, a vantage point that sends one heartbeat
// and falls silent again between two evaluations stays in the same incident.)
class SilenceDetector final : public Detector {
 public:
  const char* name() const override { return "vantage_point_silent"; }
  void evaluate(const Window& w, const Evaluation& e, HandOver& h, Findings& findings) override {
    h.silent.clear();
    const std::int64_t t = e.time_ns;
    for (const auto& [probe, beats] : w.heartbeats) {
      const IncidentKey key{Kind::vantage_point_silent, "probe=" + probe};
      if (const auto s = w.silence(probe, t)) {
        // Its heartbeats stopped but its results still arrive live: a ticket about the
        // heartbeats, yet its runs stay evidence (and hold nothing open).
        if (!w.live_between(probe, s->last_ns, t)) h.silent.insert(probe);
        Finding& f = findings[key];
        f.immediate = true;
        f.since_ns = s->since_ns;
        Incident& inc = f.incident;
        inc.key = key;
        inc.severity = Severity::ticket;
        // What its results said of it (ISP from the records), else the fleet table.
        const auto seen = w.vantage_points.find(probe);
        const auto fleet = w.heartbeat_vantage_points.find(probe);
        VantagePoint vp = seen != w.vantage_points.end() ? seen->second : VantagePoint{};
        vp.id = probe;
        if (fleet != w.heartbeat_vantage_points.end()) {
          if (!vp.asn) vp.asn = fleet->second.asn;
          if (vp.isp.empty()) vp.isp = fleet->second.isp;
          if (vp.region.empty()) vp.region = fleet->second.region;
          if (vp.country.empty()) vp.country = fleet->second.country;
        }
        add_unique(inc.probes, probe);
        if (vp.asn) add_vantage_point(inc, vp);
        if (!vp.asn && !vp.region.empty()) add_unique(inc.regions, vp.region);
        inc.last_heartbeat_ns = s->last_ns;
        inc.heartbeat_interval_ns = s->interval_ns;
        inc.failing_vantage_points = 1;
        inc.vantage_points = static_cast<int>(w.heartbeats.size());  // heard from by heartbeat
        continue;
      }
      // Heard again: the open incident resolves at the first heartbeat after its last one.
      if (const auto open = h.open.find(key); open != h.open.end()) {
        const auto next =
            std::upper_bound(beats.begin(), beats.end(), open->second.last_heartbeat_ns,
                             [](std::int64_t x, const Heartbeat& b) { return x < b.received_ns; });
        Finding& f = findings[key];
        f.incident = open->second;
        f.ended_ns = next != beats.end() && next->received_ns < t ? next->received_ns : t;
      }
    }
  }
};

// --- the hold ----------------------------------------------------------------------------------
// An open incident (of any other kind) whose vantage points are all silent now is found again as
// it is: their absence of results is no sign that it is over. It resolves as usual once one of
// them reports again and no longer fails.
class SilenceHold final : public Detector {
 public:
  const char* name() const override { return "silence_hold"; }
  void evaluate(const Window&, const Evaluation&, HandOver& h, Findings& findings) override {
    if (h.silent.empty()) return;
    for (const auto& [key, inc] : h.open) {
      if (key.kind == Kind::vantage_point_silent || findings.count(key) || inc.probes.empty())
        continue;
      if (!std::all_of(inc.probes.begin(), inc.probes.end(),
                       [&](const std::string& p) { return h.silent.count(p) > 0; })) {
        continue;
      }
      Finding& f = findings[key];
      f.incident = inc;
    }
  }
};

}  // namespace

std::unique_ptr<Detector> make_silence_detector() { return std::make_unique<SilenceDetector>(); }
std::unique_ptr<Detector> make_silence_hold() { return std::make_unique<SilenceHold>(); }

}  // namespace vantage::analysis
