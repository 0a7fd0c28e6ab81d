// Detectors of networks that cannot reach a target: outage (every network), reachability_loss
// (some networks; probes, and users' NEL alone), dns_failure. docs/analysis.md#detectors.
#include <algorithm>
#include <cmath>
#include <limits>

#include "analysis/detect/detectors.hpp"

namespace vantage::analysis {
namespace {

// One vantage point's runs of one check over the window, classified.
struct VpRuns {
  std::string key;    // probe id, or "probe\0resolver" for dns checks
  std::string probe;  // probe id
  RunCounts c;
  bool failing = false;  // most runs failed (as counts_as says), none passed since
  bool streak = false;   // its last runs failed, none passed since the first failure
  bool healthy = false;  // few runs failed
  // The last passed run of any of this probe's (non-dns) checks of the check's host, UTC ns: for
  // a dns check, the name resolved right there and then.
  std::int64_t host_ok_ns = std::numeric_limits<std::int64_t>::min();
};

// The runs of every check's vantage points in the window: check -> vantage points.
// A vantage point fails a check when at least fail_ratio of its runs failed in the way
// `counts_as` says, no run of its checks of the same host passed since its first failure, and its
// checks of that host have at least min_results failed runs in a row (one failure, or partial
// loss, is not a loss: `degraded`). A dns check's resolver fails when at least fail_ratio of its
// answers in the window (two at least) failed. It is healthy under ok_ratio.
template <typename CountsAs>
std::map<std::string, std::vector<VpRuns>> classify(const Window& w, const Evaluation& e,
                                                    const HandOver& h, bool dns,
                                                    CountsAs counts_as) {
  const AnalyzerOptions& o = w.options();
  std::map<std::string, std::vector<VpRuns>> by_check;
  // (probe, host) -> the last passed run of any of its checks of that host.
  std::map<std::pair<std::string, std::string>, std::int64_t> host_last_ok;
  for (const auto& [key, per_step] : w.runs) {
    const auto check = w.checks.find(key.first);
    const bool is_dns = check != w.checks.end() && check->second.kind == "dns";
    RunCounts c = Window::sum(per_step, e.from, e.to);
    if (c.total == 0) continue;
    const std::string probe = key.second.substr(0, key.second.find('\0'));
    if (h.silent.count(probe)) continue;  // silent: no evidence either way
    if (!is_dns && check != w.checks.end() && !check->second.host.empty()) {
      auto& last = host_last_ok[{probe, check->second.host}];
      last = std::max(last, c.last_ok_ns);
    }
    if (is_dns != dns) continue;
    by_check[key.first].push_back({key.second, probe, std::move(c)});
  }
  // (probe, host) -> the failed runs in a row of its checks of that host (all its checks fail
  // together when its network loses the host: one probe interval gives several).
  std::map<std::pair<std::string, std::string>, int> host_bad;
  auto host_of = [&](const std::string& check_id) {
    const auto check = w.checks.find(check_id);
    return check == w.checks.end() || check->second.host.empty() ? check_id : check->second.host;
  };
  std::map<const VpRuns*, std::pair<int, std::int64_t>> bad_last_ok;
  for (auto& [check_id, vps] : by_check) {
    const std::string host = host_of(check_id);
    for (auto& vp : vps) {
      if (const auto known = host_last_ok.find({vp.probe, host}); known != host_last_ok.end())
        vp.host_ok_ns = known->second;
      int bad = 0;
      for (const auto& [t, n] : vp.c.types) bad += counts_as(t) ? n : 0;
      std::int64_t last_ok = vp.c.last_ok_ns;
      const auto known = host_last_ok.find({vp.probe, host});
      if (known != host_last_ok.end()) last_ok = std::max(last_ok, known->second);
      vp.streak = bad > 0 && last_ok < vp.c.first_fail_ns;
      if (vp.streak) host_bad[{vp.probe, host}] += bad;
      bad_last_ok[&vp] = {bad, last_ok};
    }
  }
  for (auto& [check_id, vps] : by_check) {
    const std::string host = host_of(check_id);
    for (auto& vp : vps) {
      const auto [bad, last_ok] = bad_last_ok.at(&vp);
      const double ratio = static_cast<double>(bad) / vp.c.total;
      // DNS: most of a resolver's answers in the window wrong or failed (one run per resolver per
      // interval, nothing to corroborate it in the same round).
      vp.failing =
          dns ? vp.c.total >= kMinRunsOfACheck && bad > 0 && ratio >= o.fail_ratio
              : vp.streak && ratio >= o.fail_ratio && host_bad[{vp.probe, host}] >= o.min_results;
      // A network already degraded (partial loss) fails a few runs in a row by chance: it is cut
      // off only when every run of the last two windows failed.
      if (vp.failing && !dns) {
        const auto v = w.vantage_points.find(vp.probe);
        if (v != w.vantage_points.end() &&
            h.open.count({Kind::degraded, "asn=" + std::to_string(v->second.asn)})) {
          const int from2 = e.to - 2 * (e.to - e.from);
          const RunCounts longer = Window::sum(w.runs.at({check_id, vp.key}), from2, e.to);
          vp.failing = longer.total >= 2 * o.min_results && longer.failed == longer.total &&
                       last_ok < w.time_of(from2);
        }
      }
      vp.healthy = !vp.failing && static_cast<double>(vp.c.failed) / vp.c.total < o.ok_ratio;
    }
  }
  return by_check;
}

// The BGP alerts open during the window whose prefix covers one of `ips`: the finding's
// evidence, and claims that keep them from becoming incidents of their own.
void attach_bgp(const Window& w, const Evaluation& e, const std::set<std::string>& ips,
                Finding& f) {
  const std::int64_t t0 = w.time_of(e.from), t1 = w.time_of(e.to);
  for (const auto& [alert_key, spans] : w.bgp_spans) {
    for (const auto& span : spans) {
      if (span.from >= t1 || span.to < t0 ||
          std::none_of(ips.begin(), ips.end(),
                       [&](const std::string& ip) { return covers(span.alert.prefix, ip); })) {
        continue;
      }
      f.claims.insert({alert_key, span.from});
      std::string what = span.alert.alert + " " + span.alert.prefix;
      if (span.alert.leaker_asn) {
        what += " (leaker AS" + std::to_string(span.alert.leaker_asn) + ")";
      } else if (span.alert.origin_asn) {
        what += " (origin AS" + std::to_string(span.alert.origin_asn) + ")";
      }
      add_unique(f.incident.bgp_alerts, what);
    }
  }
}

// --- outage ------------------------------------------------------------------------------------
// A target's host fails, now, from at least outage_share of the vantage points that ran its checks
// in the window (at least two of them, each with its last runs failed; or the only one, with
// min_results failures): one incident for the whole service, whatever the number of checks and
// networks. While it is open it holds as long as one vantage point still fails,
// so networks recovering seconds apart do not become incidents of their own; the checks it
// covers are handed over (reachability, dns, degraded, users' NEL and slo leave them out).
class OutageDetector final : public Detector {
 public:
  const char* name() const override { return "outage"; }
  void evaluate(const Window& w, const Evaluation& e, HandOver& h, Findings& findings) override {
    struct Host {
      std::set<std::string> checks, all, failing, confirmed;
      std::set<std::uint32_t> failing_asns;
      std::map<std::string, int> types;
      std::set<std::string> failed_ips;
      std::vector<std::string> targets;
    };
    std::map<std::string, Host> hosts;
    for (const auto& [check_id, vps] : classify(w, e, h, false, connection_failure)) {
      const auto check = w.checks.find(check_id);
      const std::string host =
          check == w.checks.end() || check->second.host.empty() ? check_id : check->second.host;
      Host& hs = hosts[host];
      hs.checks.insert(check_id);
      for (const auto& vp : vps) {
        hs.all.insert(vp.probe);
        if (vp.failing) hs.confirmed.insert(vp.probe);
        if (!vp.streak) continue;
        hs.failing.insert(vp.probe);
        hs.failing_asns.insert(w.vantage_points.at(vp.probe).asn);
        for (const auto& [t, n] : vp.c.types) {
          if (connection_failure(t)) hs.types[t] += n;
        }
        hs.failed_ips.insert(vp.c.failed_ips.begin(), vp.c.failed_ips.end());
        const auto target = w.target.find({check_id, vp.probe});
        if (target != w.target.end()) add_unique(hs.targets, target->second);
      }
    }
    for (const auto& [host, hs] : hosts) {
      const IncidentKey key{Kind::outage, "target=" + host};
      const double share =
          hs.all.empty() ? 0 : static_cast<double>(hs.failing.size()) / hs.all.size();
      // Agreement is the evidence: with two or more vantage points failing in a row now, one
      // failed run each is enough; a lone vantage point needs min_results of them.
      const bool found =
          share >= w.options().outage_share &&
          (hs.failing.size() >= 2 || (hs.all.size() == 1 && hs.confirmed.size() == 1));
      const bool held = h.open.count(key) && !hs.failing.empty();
      // The runs of every vantage point during the outage, and for a window after it, are the
      // outage's: what fails or crawls while the networks recover is not a loss of its own, nor
      // the SLO's.
      if (found || held) last_active_[host] = e.to;
      const auto active = last_active_.find(host);
      if (active == last_active_.end() || e.to - active->second > e.to - e.from) continue;
      for (const auto& p : hs.all) {
        for (int k = e.from; k < e.to; ++k) h.explained[p].insert(k);
      }
      h.outage_checks.insert(hs.checks.begin(), hs.checks.end());
      h.outage_hosts.insert(host);
      if (!found && !held) continue;
      Finding& f = findings[key];
      Incident& inc = f.incident;
      inc.key = key;
      inc.severity = Severity::page;
      add_unique(inc.targets, host);
      for (const auto& c : hs.checks) add_unique(inc.checks, c);
      for (const auto& p : hs.failing) add_vantage_point(inc, w.vantage_points.at(p));
      for (const auto& [t, n] : hs.types) inc.failure_types[t] += n;
      inc.failing_vantage_points = static_cast<int>(hs.failing.size());
      inc.vantage_points = static_cast<int>(hs.all.size());
      inc.networks = static_cast<int>(hs.failing_asns.size());
      inc.value = share;
      // Users' NEL from every network: connection and DNS failures (they agree, or not).
      for (const auto& [asn, per_step] : w.nel) {
        for (const auto& [t, n] : browser_evidence(w, asn, e.from, e.to, nel_network_failure))
          inc.browser_reports[t] += n;
      }
      attach_bgp(w, e, hs.failed_ips, f);
    }
  }

 private:
  std::map<std::string, int> last_active_;  // host -> the last evaluation it was found or held
};

// --- reachability_loss and dns_failure (probes) -----------------------------------------------
// A vantage point fails a check while others reach it: one incident per failing network
// (reachability) or resolver (DNS), whatever it breaks. A finding needs a healthy vantage point
// that passed since the failures began: without one the failure may be everywhere (outage).
class LocalizedDetector : public Detector {
 protected:
  template <typename CountsAs>
  void localized(const Window& w, const Evaluation& e, HandOver& h, Findings& findings, bool dns,
                 CountsAs counts_as) {
    for (const auto& [check_id, vps] : classify(w, e, h, dns, counts_as)) {
      if (h.outage_checks.count(check_id)) continue;  // the outage's
      // Failing in a row and not explained yet: the SLO waits for a finding, one window at most
      // (a lone vantage point's failures are the SLO's after that).
      for (const auto& vp : vps) {
        if (!vp.streak) continue;
        const int since = w.step_of(vp.c.first_fail_ns);
        if (e.to - since > e.to - e.from) continue;
        for (int k = since; k < e.to; ++k) h.pending[vp.probe].insert(k);
      }
      std::int64_t failing_since = std::numeric_limits<std::int64_t>::max();
      for (const auto& vp : vps) {
        if (vp.failing) failing_since = std::min(failing_since, vp.c.first_fail_ns);
      }
      if (failing_since == std::numeric_limits<std::int64_t>::max()) continue;
      // A fresh contrast: a healthy vantage point that passed after the first failure (before
      // it, a change at the service that reaches every vantage point a probe interval apart
      // would look local to the first to see it). For a resolver, any of that vantage point's
      // checks of the same name that passed since counts: the name resolved right there, then
      // (its dns check may run only once an interval, just before the failing one).
      int healthy = 0;
      std::set<std::string> healthy_ips;  // the addresses healthy vantage points reached
      for (const auto& vp : vps) {
        const std::int64_t fresh = dns ? std::max(vp.c.last_ok_ns, vp.host_ok_ns) : vp.c.last_ok_ns;
        if (!vp.healthy || fresh < failing_since) continue;
        ++healthy;
        healthy_ips.insert(vp.c.ok_ips.begin(), vp.c.ok_ips.end());
      }
      if (healthy == 0) continue;  // failing everywhere, or not known yet
      for (const auto& vp_runs : vps) {
        if (!vp_runs.failing) continue;
        const std::string& probe = vp_runs.probe;
        const RunCounts& c = vp_runs.c;
        const VantagePoint& vp = w.vantage_points.at(probe);
        for (int k = e.from; k < e.to; ++k) h.explained[probe].insert(k);
        // Failing at addresses no healthy vantage point reached: a wrong DNS answer, most likely.
        // The dns checks get a whole window to say so before this counts here, and while a DNS
        // failure from this network was seen in the last window it is its part.
        const bool elsewhere =
            !dns && !c.failed_ips.empty() && !healthy_ips.empty() &&
            std::none_of(c.failed_ips.begin(), c.failed_ips.end(),
                         [&](const std::string& ip) { return healthy_ips.count(ip) > 0; });
        if (elsewhere) {
          const auto known = suspect_since_.find({check_id, probe});
          const int since = known == suspect_since_.end() ? e.to : known->second;
          suspects_now_[{check_id, probe}] = since;
          const auto dns_seen = h.dns_seen.find(vp.asn);
          if (e.to - since < e.to - e.from ||
              (dns_seen != h.dns_seen.end() && e.to - dns_seen->second <= e.to - e.from)) {
            continue;
          }
        }
        const std::string resolver = dns ? w.resolver.at({check_id, vp_runs.key}) : std::string();
        const IncidentKey key =
            dns ? IncidentKey{Kind::dns_failure, "resolver=" + resolver}
                : IncidentKey{Kind::reachability_loss, "asn=" + std::to_string(vp.asn)};
        const bool first = !findings.count(key);
        Finding& finding = findings[key];
        if (!dns) {
          if (first || h.elsewhere_only.count(key)) {
            if (elsewhere) {
              h.elsewhere_only.insert(key);
            } else {
              h.elsewhere_only.erase(key);
            }
          }
          h.unreachable_asns.insert(vp.asn);
        }
        Incident& inc = finding.incident;
        inc.key = key;
        inc.severity = Severity::page;
        const auto t = w.target.find({check_id, probe});
        const std::string target = t == w.target.end() ? check_id : t->second;
        add_unique(inc.targets, dns ? target + " via " + resolver : target);
        add_unique(inc.checks, check_id);
        add_vantage_point(inc, vp);
        for (const auto& [type, n] : c.types) inc.failure_types[type] += n;
        auto& probes = failing_probes_[key];
        probes.insert(probe);
        inc.failing_vantage_points = static_cast<int>(probes.size());
        inc.vantage_points = std::max(inc.vantage_points, static_cast<int>(vps.size()));
        inc.value = std::max(inc.value, static_cast<double>(c.failed) / c.total);
        if (!dns) {
          // The addresses its failed runs went to (else the last one it connected to).
          std::set<std::string> ips = c.failed_ips;
          if (ips.empty()) {
            const auto ip = w.server_ip.find({check_id, probe});
            if (ip != w.server_ip.end()) ips.insert(ip->second);
          }
          attach_bgp(w, e, ips, finding);
        }
        if (evidence_asns_[key].insert(vp.asn).second) {  // each ASN's users once
          for (const auto& [type, n] :
               browser_evidence(w, vp.asn, e.from, e.to, [&](const std::string& type) {
                 return dns ? type.rfind("dns.", 0) == 0
                            : (type.rfind("tcp.", 0) == 0 || type.rfind("tls.", 0) == 0);
               })) {
            inc.browser_reports[type] += n;
          }
        }
      }
    }
  }
  void begin() {
    failing_probes_.clear();
    evidence_asns_.clear();
    suspects_now_.clear();
  }
  void end() { suspect_since_.swap(suspects_now_); }  // only the vantage points still suspect

 private:
  std::map<IncidentKey, std::set<std::string>> failing_probes_;   // this evaluation
  std::map<IncidentKey, std::set<std::uint32_t>> evidence_asns_;  // this evaluation
  // (check, probe) -> the step since which it fails at an address no healthy vantage point
  // reached
  std::map<std::pair<std::string, std::string>, int> suspect_since_, suspects_now_;
};

class ReachabilityDetector final : public LocalizedDetector {
 public:
  const char* name() const override { return "reachability_loss"; }
  void evaluate(const Window& w, const Evaluation& e, HandOver& h, Findings& findings) override {
    begin();
    localized(w, e, h, findings, false, connection_failure);
    end();
  }
};

// A network whose resolver answers wrongly cannot reach what it was pointed at: the DNS failure
// is the incident, the connection failures behind it (reachability findings made only of runs to
// addresses no healthy vantage point reached) are its consequence.
class DnsDetector final : public LocalizedDetector {
 public:
  const char* name() const override { return "dns_failure"; }
  void evaluate(const Window& w, const Evaluation& e, HandOver& h, Findings& findings) override {
    begin();
    localized(w, e, h, findings, true, dns_failure_type);
    std::set<std::uint32_t> dns_asns;
    for (const auto& [key, f] : findings) {
      if (key.kind == Kind::dns_failure)
        dns_asns.insert(f.incident.asns.begin(), f.incident.asns.end());
    }
    for (auto asn : dns_asns) h.dns_seen[asn] = h.evaluation;
    for (auto it = findings.begin(); it != findings.end();) {
      const Incident& inc = it->second.incident;
      const bool taken =
          it->first.kind == Kind::reachability_loss && h.elsewhere_only.count(it->first) &&
          std::all_of(inc.asns.begin(), inc.asns.end(), [&](auto a) { return dns_asns.count(a); });
      it = taken ? findings.erase(it) : std::next(it);
    }
    end();
  }
};

// --- reachability_loss from users' NEL alone ---------------------------------------------------
// Users come from thousands of networks and probes sit in a handful: a network whose users'
// connection-level and DNS failures (NEL tcp.*, tls.*, dns.*, …, weighted by 1/sampling) jump
// against its own baseline and stand well above the other networks' is a reachability loss even
// with no probe there. A one-sided Poisson test of the failure reports against the count the
// baseline share predicts (z >= z_min), at least min_errors reports, at least min_share, twice
// the baseline share and twice the other networks' share. Merges with a probe finding for the
// same network (one key). An outage explains every network's users: nothing here then.
class UsersDetector final : public Detector {
 public:
  const char* name() const override { return "users_reachability"; }
  void evaluate(const Window& w, const Evaluation& e, HandOver& h, Findings& findings) override {
    const AnalyzerOptions& o = w.options();
    const int b = w.steps(o.baseline_ns);
    const int gap = e.to - e.from;
    if (!h.outage_hosts.empty()) return;
    if (e.from - gap - b < w.first_data_step()) return;  // no baseline yet
    struct Traffic {
      double total = 0, bad = 0;
      std::map<std::string, double> types;
    };
    // Networks with vantage points that ran checks in the window (true: their last runs passed).
    std::map<std::uint32_t, bool> probes_reach;
    for (const auto& [key, per_step] : w.runs) {
      const auto check = w.checks.find(key.first);
      if (check == w.checks.end() || check->second.kind == "dns") continue;
      if (h.silent.count(key.second)) continue;  // a silent vantage point judges nothing
      const RunCounts c = Window::sum(per_step, e.from, e.to);
      if (c.total == 0) continue;
      const auto vp = w.vantage_points.find(key.second);
      if (vp == w.vantage_points.end()) continue;
      auto [it, inserted] = probes_reach.emplace(vp->second.asn, true);
      it->second = it->second && c.last_ok_ns > c.last_fail_ns;
    }
    std::map<std::uint32_t, Traffic> now;
    Traffic all;
    for (const auto& [asn, per_step] : w.nel) {
      if (asn == 0) continue;  // no ASN known: not a network
      Traffic& t = now[asn];
      for (const auto& [type, n] : Window::sum(per_step, e.from, e.to)) {
        if (type.rfind("agent ", 0) == 0) continue;
        t.total += n;
        if (nel_network_failure(type)) {
          t.bad += n;
          t.types[type] += n;
        }
      }
      all.total += t.total;
      all.bad += t.bad;
    }
    for (const auto& [asn, t] : now) {
      const auto reach = probes_reach.find(asn);
      // A network with vantage points is theirs to judge (its users' reports corroborate their
      // findings): a DNS failure or a loss there is found by its probes, late reports of one that
      // is over open nothing. Users alone speak for the networks no probe sits in.
      if (t.bad < o.min_errors || t.total <= 0 || reach != probes_reach.end()) {
        if (!findings.count({Kind::reachability_loss, "asn=" + std::to_string(asn)}))
          frozen_.erase(asn);
        continue;
      }
      double p0;
      if (auto f = frozen_.find(asn); f != frozen_.end()) {
        p0 = f->second;
      } else {
        double total0 = 0, bad0 = 0;
        for (const auto& [type, n] : Window::sum(w.nel.at(asn), e.from - gap - b, e.from - gap)) {
          if (type.rfind("agent ", 0) == 0) continue;
          total0 += n;
          if (nel_network_failure(type)) bad0 += n;
        }
        p0 = std::max(total0 > 0 ? bad0 / total0 : 0.0, 0.001);
      }
      const double others_total = all.total - t.total, others_bad = all.bad - t.bad;
      const double others = others_total > 0 ? others_bad / others_total : 0.0;
      const double p = t.bad / t.total;
      const double lambda = p0 * t.total;
      const double z = (t.bad - lambda) / std::sqrt(std::max(lambda, 1.0));
      if (z < o.z_min || p < o.min_share || p < 2 * p0 || p < 2 * others) continue;
      frozen_.emplace(asn, p0);  // the loss must not become its own baseline
      const IncidentKey key{Kind::reachability_loss, "asn=" + std::to_string(asn)};
      Finding& f = findings[key];
      Incident& inc = f.incident;
      inc.key = key;
      inc.severity = Severity::page;
      add_unique(inc.asns, asn);
      const auto names = w.asn_names.find(asn);
      if (names != w.asn_names.end()) {
        if (!names->second.first.empty()) add_unique(inc.isps, names->second.first);
        if (!names->second.second.empty()) add_unique(inc.countries, names->second.second);
      }
      // Only networks without vantage points get here: the users' reports are the evidence.
      inc.browser_reports = t.types;
      inc.value = p;
      inc.users = t.bad;
      inc.baseline = p0;
      h.unreachable_asns.insert(asn);
    }
  }

 private:
  std::map<std::uint32_t, double> frozen_;  // ASN -> its baseline share, while anomalous
};

}  // namespace

std::unique_ptr<Detector> make_outage_detector() { return std::make_unique<OutageDetector>(); }
std::unique_ptr<Detector> make_reachability_detector() {
  return std::make_unique<ReachabilityDetector>();
}
std::unique_ptr<Detector> make_dns_detector() { return std::make_unique<DnsDetector>(); }
std::unique_ptr<Detector> make_users_detector() { return std::make_unique<UsersDetector>(); }

}  // namespace vantage::analysis
