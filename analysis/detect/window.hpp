// The data the detectors read (DESIGN §6): probe results, browser reports and BGP alert episodes
// of a replayed time range, bucketed by evaluation step. Filled once by `add`, then read-only for
// the detectors (analysis/detect/detectors.hpp), which sum the steps of their window.
// Times are UTC nanoseconds; a step index counts `step_ns` from `from_ns`.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "analysis/detect/analyzer_options.hpp"
#include "analysis/store/event_store.hpp"

namespace vantage::analysis {

struct VantagePoint {
  std::string id;  // probe id
  std::uint32_t asn = 0;
  std::string isp, region, country;
};

// A vantage point misses heartbeats for this many of its intervals: it is silent
// (vantage_point_silent, docs/analysis.md#silent-vantage-points).
constexpr int kSilentIntervals = 3;
// The interval of a heartbeat that did not say it (the probe's default heartbeat_interval).
constexpr std::int64_t kDefaultHeartbeatInterval = 30'000'000'000;

// One heartbeat as the window keeps it.
struct Heartbeat {
  std::int64_t received_ns = 0;
  std::int64_t interval_ns = 0;  // never 0 (kDefaultHeartbeatInterval when not said)
};

// A silence: the last heartbeat before it and when it became one (last + kSilentIntervals ×
// its interval).
struct Silence {
  std::int64_t last_ns = 0, since_ns = 0, interval_ns = 0;
};

// One (check, vantage point)'s runs in a step (or summed over a window).
struct RunCounts {
  int total = 0;
  int failed = 0;
  int slow = 0;                      // passed runs slower than options.latency_ms
  std::map<std::string, int> types;  // failure type -> runs
  std::set<std::string> failed_ips;  // the addresses failed runs went to
  std::set<std::string> ok_ips;      // the addresses passed runs reached
  std::int64_t first_fail_ns = std::numeric_limits<std::int64_t>::max();
  std::int64_t last_ok_ns = std::numeric_limits<std::int64_t>::min();
  std::int64_t last_fail_ns = std::numeric_limits<std::int64_t>::min();
  // When the earliest failed or slow run ended (its start plus its total time), UTC ns: a run
  // started before then may have passed the failing part before the failure began.
  std::int64_t first_bad_end_ns = std::numeric_limits<std::int64_t>::max();
  // http.error runs by (status, templated path of the failed request).
  std::map<std::pair<int, std::string>, int> http_errors;
  std::set<std::string> failed_steps;  // journeys: the failing steps' names
  std::vector<float> ok_ms;            // passed runs' total time (ms)
  void merge(const RunCounts& other);
};

// Requests of one endpoint from one country that got an HTTP answer (NEL "ok" and "http.error",
// weighted: successes are sampled) and the 4xx / 5xx error reports among them (counted).
struct SpikeCounts {
  double n = 0;
  double x4 = 0, x5 = 0;
  std::set<std::uint32_t> asns4, asns5;
  std::set<int> statuses4, statuses5;  // the error statuses reported
  void merge(const SpikeCounts& other);
};

// journeys and http checks: runs against the SLO (good: passed within latency_ms).
struct SloCounts {
  int total = 0, bad = 0;
  std::vector<float> ms;
  void merge(const SloCounts& other);
};

struct CheckInfo {
  std::string kind;    // http, journey, tcp, tls, dns, …
  std::string target;  // the last target seen (URL, or the address connected to)
  std::string host;    // the target's host name ("" when unknown)
};

// One open..resolved episode of a BGP alert.
struct BgpSpan {
  BgpAlertRow alert;
  std::int64_t from = std::numeric_limits<std::int64_t>::min();  // min: opened before the range
  std::int64_t to = std::numeric_limits<std::int64_t>::max();    // max: still open
};

class Window {
 public:
  Window(const AnalyzerOptions& options, std::int64_t from_ns, std::int64_t to_ns);

  // A run inside a silence of its vantage point (in_silence: heartbeats are added first) is left
  // out: delivered late from its spool, or while it did not answer, it is no evidence. A run the
  // collector received live (within kSilentIntervals heartbeat intervals of its time) is kept
  // and noted in `live_in_silence`: the vantage point was there, only its heartbeats were not
  // (turned off by a reload, or refused at their own URL).
  void add(const ProbeResultRow& row);
  void add(const BrowserReportRow& row);
  void add(const BgpAlertRow& row);   // in time order
  void add(const HeartbeatRow& row);  // in time order

  // The silence of `probe` at `t` (UTC ns): its last heartbeat received before t is at least
  // kSilentIntervals of that heartbeat's intervals before t. nullopt when it is not silent, or
  // never sent a heartbeat in what was read.
  std::optional<Silence> silence(const std::string& probe, std::int64_t t) const;
  // Whether `t` falls in a silence of `probe` as the heartbeats read say (after a heartbeat that
  // the next one followed kSilentIntervals of its intervals or more later, or none did by the end
  // of the range).
  bool in_silence(const std::string& probe, std::int64_t t) const;

  const AnalyzerOptions& options() const { return o_; }
  std::int64_t from_ns() const { return from_; }
  std::int64_t to_ns() const { return to_; }
  int step_of(std::int64_t t) const { return static_cast<int>((t - from_) / o_.step_ns); }
  std::int64_t time_of(int step) const {
    return from_ + static_cast<std::int64_t>(step) * o_.step_ns;
  }
  int steps(std::int64_t ns) const { return static_cast<int>(ns / o_.step_ns); }
  // The first step with any probe result or browser report (baselines start there).
  int first_data_step() const { return first_step_; }

  // Sums the per-step values of `per_step` over steps [from, to).
  template <typename T>
  static T sum(const std::map<int, T>& per_step, int from, int to) {
    T total{};
    for (auto it = per_step.lower_bound(from); it != per_step.end() && it->first < to; ++it) {
      merge_into(total, it->second);
    }
    return total;
  }

  // Vantage points by probe id; checks by id.
  std::map<std::string, VantagePoint> vantage_points;
  std::map<std::string, CheckInfo> checks;
  // (check, vantage point key) -> step -> runs. The key is the probe id, or for dns checks
  // "probe\0resolver": each resolver of a dns check is a vantage point of its own.
  std::map<std::pair<std::string, std::string>, std::map<int, RunCounts>> runs;
  std::map<std::pair<std::string, std::string>, std::string> resolver;   // dns: (check, key)
  std::map<std::pair<std::string, std::string>, std::string> server_ip;  // (check, probe)
  std::map<std::pair<std::string, std::string>, std::string> target;     // (check, probe)
  // Browser reports: ASN -> step -> NEL type (or "agent http_error") -> weighted reports,
  // "ok" included.
  std::map<std::uint32_t, std::map<int, std::map<std::string, double>>> nel;
  std::map<std::uint32_t, std::pair<std::string, std::string>> asn_names;  // -> (isp, country)
  std::map<std::pair<std::string, std::string>, std::map<int, SpikeCounts>>
      spikes;  // (endpoint, country)
  std::map<std::pair<std::string, std::string>, std::map<int, SloCounts>> slo;  // (check, probe)
  std::map<std::string, std::vector<BgpSpan>> bgp_spans;  // alert key -> its episodes
  // Heartbeats by probe id, in time order; and what the fleet table says of those vantage points
  // (id, ASN, ISP, region, country).
  std::map<std::string, std::vector<Heartbeat>> heartbeats;
  std::map<std::string, VantagePoint> heartbeat_vantage_points;
  std::uint64_t silent_runs = 0;  // runs left out: inside a silence of their vantage point
  // Per vantage point, the times (UTC ns) of runs inside a heartbeat silence that the collector
  // received live, sorted.
  std::map<std::string, std::vector<std::int64_t>> live_in_silence;
  // Whether `probe` delivered a run live at a time in (after_ns, until_ns].
  bool live_between(const std::string& probe, std::int64_t after_ns, std::int64_t until_ns) const;

 private:
  static void merge_into(RunCounts& a, const RunCounts& b) { a.merge(b); }
  static void merge_into(SpikeCounts& a, const SpikeCounts& b) { a.merge(b); }
  static void merge_into(SloCounts& a, const SloCounts& b) { a.merge(b); }
  static void merge_into(std::map<std::string, double>& a, const std::map<std::string, double>& b) {
    for (const auto& [k, v] : b) a[k] += v;
  }
  std::map<int, SpikeCounts>& spike_counts(const std::string& url, const std::string& country);

  AnalyzerOptions o_;
  std::int64_t from_, to_;
  int first_step_ = std::numeric_limits<int>::max();
  std::unordered_map<std::string, std::map<int, SpikeCounts>*> spike_index_;  // "endpoint\0country"
  std::string key_buf_;
};

// "https://shop.example.com/api/x?q" -> "/api/x" ("/" when the URL has no path).
std::string path_of(const std::string& url);

}  // namespace vantage::analysis
