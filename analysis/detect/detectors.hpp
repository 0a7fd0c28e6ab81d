// The detectors (DESIGN §6, docs/analysis.md#detectors): one class each, evaluated at every step
// over the read-only Window. What one detector explains, the next leaves out: that hand-over is
// data (HandOver), written by the detectors named in each field's comment and read by the ones
// after them in kDetectorOrder (analyzer.cpp) — not state shared by call order.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "analysis/detect/incident.hpp"
#include "analysis/detect/window.hpp"

namespace vantage::analysis {

// One evaluation: the window is steps [from, to) and the evaluation time is time_of(to).
struct Evaluation {
  int from = 0, to = 0;
  std::int64_t time_ns = 0;
};

// What a detector found at one evaluation; findings with the same key merge.
struct Finding {
  Incident incident;       // key, severity, scope and evidence; the tracker fills the rest
  bool immediate = false;  // opens on its first evaluation (bgp_*: the hold was its confirmation)
  // reachability_loss: the BGP alert episodes (alert key, start) it carries; they become its
  // evidence for good once its incident is open.
  std::set<std::pair<std::string, std::int64_t>> claims;
  // When the detector knows the exact times (vantage_point_silent: from heartbeats), UTC ns:
  // `since_ns` is the time the incident opens at (instead of the evaluation's); `ended_ns`, when
  // set, says the condition ended then: the tracker resolves the open incident at once, at that
  // time (no hysteresis), and opens nothing.
  std::int64_t since_ns = 0;
  std::int64_t ended_ns = 0;
};
using Findings = std::map<IncidentKey, Finding>;

struct HandOver {
  // Before the evaluation (from the tracker): the incidents open now, by key.
  std::map<IncidentKey, Incident> open;
  // vantage_point_silent -> every detector after it: the probe ids silent at this evaluation.
  // Their runs in the window (from before the silence) count neither as failing nor as a healthy
  // contrast; an open incident all of whose vantage points are silent is held (their absence
  // resolves nothing). (The runs inside a silence, delivered late from a spool, never reach the
  // window: Window::add leaves them out.)
  std::set<std::string> silent;
  // outage -> reachability, dns, degraded, users' NEL, slo: the checks an outage (found now or
  // still open) covers, and the hosts it is about.
  std::set<std::string> outage_checks;
  std::set<std::string> outage_hosts;
  // Persistent. outage, reachability, dns, http_error -> degraded, slo: the steps in which an
  // incident of its own explains a vantage point's failed runs (probe id -> steps).
  std::map<std::string, std::set<int>> explained;
  // reachability -> slo: the steps of vantage points whose runs failed in a row, not (yet)
  // enough for a finding: an incident may claim them soon, the SLO waits (probe id -> steps).
  std::map<std::string, std::set<int>> pending;
  // Persistent. degraded -> slo: the steps a degradation explains (kept apart from `explained`:
  // the degraded detector reads that one and must still see its own runs).
  std::map<std::string, std::set<int>> degraded_steps;
  // Persistent. dns -> reachability: the last evaluation with a dns_failure from an ASN.
  std::map<std::uint32_t, int> dns_seen;
  // reachability -> dns: findings made only of runs that went to an address no healthy vantage
  // point reached (a wrong DNS answer, most likely), by key.
  std::set<IncidentKey> elsewhere_only;
  // Persistent. tracker -> bgp: the (alert key, episode start) an open reachability loss
  // carried.
  std::set<std::pair<std::string, std::int64_t>> claimed_bgp;
  // reachability, users' NEL -> degraded: the ASNs with a reachability finding now.
  std::set<std::uint32_t> unreachable_asns;
  int evaluation = 0;
};

class Detector {
 public:
  virtual ~Detector() = default;
  virtual const char* name() const = 0;
  // Adds what it finds at `e` to `findings`; reads and writes `hand_over` as documented there.
  virtual void evaluate(const Window& w, const Evaluation& e, HandOver& hand_over,
                        Findings& findings) = 0;
};

// In evaluation order (each reads what those before it handed over).
std::unique_ptr<Detector> make_silence_detector();       // vantage_point_silent
std::unique_ptr<Detector> make_outage_detector();        // outage
std::unique_ptr<Detector> make_reachability_detector();  // reachability_loss (probes)
std::unique_ptr<Detector> make_dns_detector();           // dns_failure, then takes over
std::unique_ptr<Detector> make_users_detector();         // reachability_loss (users' NEL alone)
std::unique_ptr<Detector> make_http_error_detector();    // http_error (probes and users)
std::unique_ptr<Detector> make_degraded_detector();      // degraded
std::unique_ptr<Detector> make_slo_detector();           // slo_burn
std::unique_ptr<Detector> make_bgp_detector();           // bgp_*
// Last: holds the open incidents whose vantage points are all silent (re-finds them as they are).
std::unique_ptr<Detector> make_silence_hold();

// A check's runs from one vantage point in a window that can say "this check fails here" on their
// own (a resolver answering wrongly, a request answering the same HTTP error): at least two, most
// of them failed. (A loss counts min_results failures in a row over all the checks of a host.)
constexpr int kMinRunsOfACheck = 2;

// Helpers shared by the detectors.
template <typename T>
void add_unique(std::vector<T>& v, const T& x) {
  for (const auto& y : v) {
    if (y == x) return;
  }
  v.push_back(x);
}
// Failure types that say "the network path failed" (as opposed to DNS, an HTTP status or an
// assertion): the signature of a route leak or an ISP outage.
bool connection_failure(const std::string& type);
bool dns_failure_type(const std::string& type);
// NEL types of a connection-level or DNS failure (tcp.*, tls.*, dns.*, …; not http.*, not ok).
bool nel_network_failure(const std::string& type);
// Address-in-prefix, IPv4 or IPv6 ("203.0.113.0/24" covers "203.0.113.10").
bool covers(const std::string& prefix, const std::string& ip);
double percentile(std::vector<float> v, double q);
// Adds the vantage point's ASN, ISP, region and country to the incident's scope.
void add_vantage_point(Incident& incident, const VantagePoint& vp);
// "AS64501, AS64502"
std::string join_asns(const std::vector<std::uint32_t>& asns);
// Weighted browser reports from `asn` in steps [from, to) whose type passes `pick`.
template <typename Pick>
std::map<std::string, double> browser_evidence(const Window& w, std::uint32_t asn, int from, int to,
                                               Pick pick) {
  std::map<std::string, double> out;
  auto it = w.nel.find(asn);
  if (it == w.nel.end()) return out;
  for (const auto& [type, n] : Window::sum(it->second, from, to)) {
    if (pick(type)) out[type] += n;
  }
  return out;
}

}  // namespace vantage::analysis
