// The per-ISP reachability report (`vantage report isp`, DESIGN §6): for each ISP (ASN + name),
// what its users and the vantage points in it saw of the service over a time range —
// availability, latency percentiles per target, the top failure types and the incidents that
// touched it — as a terminal table, JSON, or a self-contained HTML page with inline SVG charts.
// The report's own memory is bounded by the number of keys (ISP × target × time bucket), not by
// events: latency percentiles come from fixed log-spaced histograms. (The detectors it runs keep
// per-minute counters, and the SLO detector the durations of journey/http runs: probe runs, few
// next to browser reports.)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "analysis/detect/analyzer.hpp"
#include "analysis/store/event_store.hpp"

namespace vantage::analysis {

// Latency histogram: 5 % wide log buckets from 0.1 ms to ~1,000 s; quantiles to 5 %.
class LatencyHistogram {
 public:
  void add(double ms);
  double quantile(double q) const;  // ms; 0 when empty
  std::uint64_t count() const noexcept { return count_; }

 private:
  std::vector<std::uint32_t> buckets_;
  std::uint64_t count_ = 0;
};

// One target of the probes: an http check's or a journey's URL; for other kinds (dns, tcp, tls)
// and runs without a URL, the check id, kind and host name ("expired-cert (tls
// expired.example.com)", "shop-dns (dns shop.example.com)").
struct TargetStats {
  std::string check, kind;  // the (first) check id and kind seen for it
  std::uint64_t runs = 0, ok = 0;
  LatencyHistogram latency;  // ms, runs that passed only (a timeout is not a latency)
  std::map<std::string, double> failure_types;  // its failed runs by type ("http.error 403")
};

struct IspStats {
  std::uint32_t asn = 0;  // 0: the network is unknown (no GeoIP/ASN for the users' address)
  std::string isp;        // ISP name; "unknown network" for ASN 0 without a name
  std::string country;
  std::vector<std::string> vantage_points;
  std::map<std::string, TargetStats> targets;  // probe results by target
  // Probe results by failure type, "http.error" with its status code ("http.error 403").
  std::map<std::string, double> failure_types;
  double browser_total = 0, browser_ok = 0;        // NEL reports, weighted
  std::map<std::string, double> browser_failures;  // NEL failure types (+ status), weighted
  // Bucket start ns -> (runs, ok) of the probes; buckets without a run are absent (a silence,
  // drawn as a gap).
  std::map<std::int64_t, std::pair<double, double>> series;
  std::vector<const Incident*> incidents;
  std::string label() const;            // "AS64501 Example Fiber", or "unknown network" for ASN 0
  double availability() const;          // probe runs ok / runs (1 when none; shown as "-" / null)
  double browser_availability() const;  // weighted NEL ok share (1 when none; shown as "-" / null)
};

struct IspReport {
  std::int64_t from_ns = 0, to_ns = 0, bucket_ns = 0;
  std::vector<IspStats> isps;  // by ASN, the unknown network (ASN 0) last
  AnalysisResult analysis;     // the incidents of the range
};

// Reads [from_ns, to_ns) of the store and runs the detectors over it.
IspReport build_isp_report(EventStore& store, std::int64_t from_ns, std::int64_t to_ns,
                           const AnalyzerOptions& options = {});

// Failure lists are never cut inside a failure type: what does not fit the column ends in
// "+N more". Latency percentiles (p50/p95) are of the runs that passed; "-" / null when none did.
std::string render_isp_text(const IspReport& report);
// JSON: per ISP, targets{name: {check, kind, runs, ok, availability, p50_ms, p95_ms,
// failure_types}}, the
// failure types (probes and users), the series (non-empty buckets only) and the incidents' ids.
std::string render_isp_json(const IspReport& report);
// One HTML document, no external resource, no script: SVG charts inline.
std::string render_isp_html(const IspReport& report);

}  // namespace vantage::analysis
