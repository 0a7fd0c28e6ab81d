// Detectors of a service answering badly: http_error (probes' statuses and users' error
// spikes), degraded (one network's partial failure or slowness), slo_burn, and BGP alerts no
// traffic has shown (bgp_*). docs/analysis.md#detectors.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

#include "analysis/detect/detectors.hpp"

namespace vantage::analysis {
namespace {

std::string status_class(int status) { return status < 500 ? "4xx" : "5xx"; }

// --- http_error --------------------------------------------------------------------------------
// HTTP error answers on one endpoint (a URL path, ids templated), one incident per endpoint and
// status class, from two sources that merge under one key:
//   probes — a vantage point's runs of a check got the same 4xx/5xx on the same request in at
//     least fail_ratio of its runs (min_results runs): "403 on /api/products from AS64503";
//   users — the share of 4xx or 5xx among one endpoint's answered requests in one country (NEL,
//     weighted) against the same key's share over the previous `baseline`: a one-sided Poisson
//     test (z >= z_min), at least min_errors reports, min_share and twice the baseline share.
// 5xx, or a 4xx seen from outage_share of the vantage points, pages; a 4xx is a ticket. The
// vantage points' runs it explains are left out of the SLO.
class HttpErrorDetector final : public Detector {
 public:
  const char* name() const override { return "http_error"; }
  void evaluate(const Window& w, const Evaluation& e, HandOver& h, Findings& findings) override {
    probes(w, e, h, findings);
    users(w, e, h, findings);
    // Baselines frozen for keys that are no longer anomalous are released.
    for (auto it = spike_keys_.begin(); it != spike_keys_.end();) {
      if (findings.count(it->first) || h.open.count(it->first)) {
        ++it;
        continue;
      }
      for (const auto& k : it->second) frozen_.erase(k);
      it = spike_keys_.erase(it);
    }
  }

 private:
  void probes(const Window& w, const Evaluation& e, HandOver& h, Findings& findings) {
    const AnalyzerOptions& o = w.options();
    struct Seen {
      std::set<std::string> probes, all;
      std::set<int> statuses;
      std::set<std::string> checks;
      std::map<std::string, double> types;
    };
    std::map<IncidentKey, Seen> seen;
    std::map<std::string, std::set<std::string>> ran;  // check -> vantage points that ran it
    for (const auto& [key, per_step] : w.runs) {
      const auto check = w.checks.find(key.first);
      if (check == w.checks.end() || check->second.kind == "dns") continue;
      if (h.silent.count(key.second)) continue;  // silent: no evidence either way
      const RunCounts c = Window::sum(per_step, e.from, e.to);
      if (c.total == 0) continue;
      ran[key.first].insert(key.second);
      if (c.total < kMinRunsOfACheck || c.http_errors.empty()) continue;
      // Per endpoint and class: this vantage point's error runs.
      std::map<std::pair<std::string, std::string>, std::pair<int, std::set<int>>> per_endpoint;
      for (const auto& [status_path, n] : c.http_errors) {
        auto& [runs, statuses] =
            per_endpoint[{status_path.second, status_class(status_path.first)}];
        runs += n;
        statuses.insert(status_path.first);
      }
      for (const auto& [endpoint_class, runs_statuses] : per_endpoint) {
        const auto& [runs, statuses] = runs_statuses;
        if (static_cast<double>(runs) / c.total < o.fail_ratio) continue;
        const IncidentKey k{Kind::http_error, "endpoint=" + endpoint_class.first +
                                                  " status=" + endpoint_class.second};
        Seen& s = seen[k];
        s.probes.insert(key.second);
        s.statuses.insert(statuses.begin(), statuses.end());
        std::string check_name = key.first;
        if (check->second.kind == "journey" && !c.failed_steps.empty())
          check_name += " step " + *c.failed_steps.begin();
        s.checks.insert(check_name);
        for (int status : statuses) {
          for (const auto& [sp, n] : c.http_errors) {
            if (sp.first == status && sp.second == endpoint_class.first)
              s.types["http.error " + std::to_string(status)] += n;
          }
        }
        for (int m = e.from; m < e.to; ++m) h.explained[key.second].insert(m);
      }
    }
    // Per endpoint, in order: an error every vantage point sees is an incident of that endpoint;
    // one some networks see joins the finding or open incident of the same class those networks
    // already have (a WAF rule blocking /api/ for one network is one incident, whatever paths).
    for (const auto& [key, s] : seen) {
      const std::string endpoint = key.scope.substr(9, key.scope.rfind(" status=") - 9);
      const std::string cls = key.scope.substr(key.scope.rfind('=') + 1);
      std::set<std::string> all;
      for (const auto& c : s.checks) {
        const auto r = ran.find(c.substr(0, c.find(" step ")));
        if (r != ran.end()) all.insert(r->second.begin(), r->second.end());
      }
      const bool everywhere =
          !all.empty() && static_cast<double>(s.probes.size()) / all.size() >= o.outage_share;
      std::set<std::uint32_t> asns;
      for (const auto& p : s.probes) asns.insert(w.vantage_points.at(p).asn);
      const IncidentKey home = home_of(w, h, findings, key, cls, endpoint, asns, !everywhere);
      Finding& f = findings[home];
      Incident& inc = f.incident;
      inc.key = home;
      add_unique(inc.endpoints, endpoint);
      for (const auto& c : s.checks) add_unique(inc.checks, c);
      for (int status : s.statuses) add_unique(inc.statuses, status);
      std::sort(inc.statuses.begin(), inc.statuses.end());
      for (const auto& p : s.probes) add_vantage_point(inc, w.vantage_points.at(p));
      for (const auto& [t, n] : s.types) inc.failure_types[t] += n;
      inc.failing_vantage_points =
          std::max(inc.failing_vantage_points, static_cast<int>(s.probes.size()));
      inc.vantage_points = std::max(inc.vantage_points, static_cast<int>(all.size()));
      const Severity sev = cls == "5xx" || everywhere ? Severity::page : Severity::ticket;
      inc.severity = std::max(inc.severity, sev);
    }
  }

  // Where evidence of an HTTP error (class `cls` on `endpoint` from `asns`) belongs: a finding of
  // this evaluation or an open incident of the same class on the same endpoint, or — when it is
  // localized — one that already holds one of its networks and is not everywhere; else `key`.
  static IncidentKey home_of(const Window& w, const HandOver& h, const Findings& findings,
                             const IncidentKey& key, const std::string& cls,
                             const std::string& endpoint, const std::set<std::uint32_t>& asns,
                             bool localized) {
    auto fits = [&](const IncidentKey& k, const Incident& i) {
      if (k.kind != Kind::http_error || !k.scope.ends_with("status=" + cls)) return false;
      if (std::find(i.endpoints.begin(), i.endpoints.end(), endpoint) != i.endpoints.end())
        return true;
      const bool everywhere = i.vantage_points > 0 &&
                              static_cast<double>(i.failing_vantage_points) / i.vantage_points >=
                                  w.options().outage_share;
      return localized && !everywhere &&
             std::any_of(i.asns.begin(), i.asns.end(), [&](auto a) { return asns.count(a) > 0; });
    };
    if (findings.count(key) || h.open.count(key)) return key;
    for (const auto& [k, f] : findings) {
      if (fits(k, f.incident)) return k;
    }
    for (const auto& [k, i] : h.open) {
      if (fits(k, i)) return k;
    }
    return key;
  }

  void users(const Window& w, const Evaluation& e, HandOver& h, Findings& findings) {
    const AnalyzerOptions& o = w.options();
    // The baseline ends one window before the current one: the minutes just before a spike is
    // detected already hold some of it.
    const int b = w.steps(o.baseline_ns);
    const int gap = e.to - e.from;
    if (e.from - gap - b < w.first_data_step()) return;  // no baseline yet
    for (const auto& [endpoint_country, per_step] : w.spikes) {
      const auto& [endpoint, country] = endpoint_country;
      const SpikeCounts now = Window::sum(per_step, e.from, e.to);
      for (int cls = 4; cls <= 5; ++cls) {
        const std::string cls_name = cls == 4 ? "4xx" : "5xx";
        const IncidentKey key{Kind::http_error, "endpoint=" + endpoint + " status=" + cls_name};
        const std::string base_key = key.scope + " country=" + country;
        const double x = cls == 4 ? now.x4 : now.x5;
        if (now.n <= 0 || x < o.min_errors) continue;
        double p0;
        if (auto f = frozen_.find(base_key); f != frozen_.end()) {
          p0 = f->second;
        } else {
          const SpikeCounts base = Window::sum(per_step, e.from - gap - b, e.from - gap);
          const double x0 = cls == 4 ? base.x4 : base.x5;
          p0 = std::max(base.n > 0 ? x0 / base.n : 0.0, 0.001);
        }
        // Error reports are counts (every failure is reported): a Poisson test of x against the
        // λ = p0 · requests the baseline share predicts.
        const double p = x / now.n;
        const double lambda = p0 * now.n;
        const double z = (x - lambda) / std::sqrt(std::max(lambda, 1.0));
        if (z < o.z_min || p < 2 * p0 || p < o.min_share) continue;
        frozen_.emplace(base_key, p0);
        spike_keys_[key].insert(base_key);
        const auto& spike_asns = cls == 4 ? now.asns4 : now.asns5;
        const IncidentKey home = home_of(w, h, findings, key, cls_name, endpoint, spike_asns, true);
        if (home != key) spike_keys_[home].insert(base_key);
        Finding& f = findings[home];
        Incident& inc = f.incident;
        inc.key = home;
        inc.severity = std::max(inc.severity, cls == 5 ? Severity::page : Severity::ticket);
        add_unique(inc.endpoints, endpoint);
        add_unique(inc.countries, country);
        // The vantage points in that country and those networks see the same errors: their runs
        // belong to this incident, not to the SLO.
        for (const auto& [probe, vp] : w.vantage_points) {
          if (vp.country != country || !spike_asns.count(vp.asn)) continue;
          for (int m = e.from; m < e.to; ++m) h.explained[probe].insert(m);
        }
        for (auto asn : spike_asns) {
          add_unique(inc.asns, asn);
          const auto names = w.asn_names.find(asn);
          if (names != w.asn_names.end() && !names->second.first.empty())
            add_unique(inc.isps, names->second.first);
        }
        inc.browser_reports["http.error " + cls_name] += x;
        for (int status : cls == 4 ? now.statuses4 : now.statuses5)
          add_unique(inc.statuses, status);
        std::sort(inc.statuses.begin(), inc.statuses.end());
        inc.value = std::max(inc.value, p);
        inc.baseline = p0;
      }
    }
  }

  // The baseline share of an (endpoint, class, country), frozen when it first looks anomalous
  // and kept while its incident lasts, so that the spike does not become its own baseline.
  std::map<std::string, double> frozen_;
  std::map<IncidentKey, std::set<std::string>> spike_keys_;  // incident key -> its baseline keys
};

// --- degraded ----------------------------------------------------------------------------------
// One network's runs (all its vantage points' non-DNS checks) over the degraded window: the share
// of bad runs — failed, or passed slower than latency_ms — reaches degraded_share and twice the
// other networks'. Partial loss and slowness, not a cut: a network with a reachability loss or
// an outage is left out. Once open it holds while the share stays above half of degraded_share,
// so 30 % loss does not flap.
class DegradedDetector final : public Detector {
 public:
  const char* name() const override { return "degraded"; }
  void evaluate(const Window& w, const Evaluation& e, HandOver& h, Findings& findings) override {
    const AnalyzerOptions& o = w.options();
    const int span = o.degraded_window_ns > 0 ? w.steps(o.degraded_window_ns) : 6 * (e.to - e.from);
    const int from = e.to - span;
    struct Net {
      int total = 0, bad = 0;
      std::set<std::string> probes, checks, hosts;
      std::map<std::string, double> types;
      std::vector<float> ms;
    };
    // One vantage point's runs of one check over the span, less the steps another incident
    // explains (a loss, a wrong DNS answer, an HTTP error: those are its, not a degradation).
    // One vantage point's runs of one check over the span, less the steps another incident
    // explains (a loss, a wrong DNS answer, an HTTP error: those are its, not a degradation).
    struct Part {
      std::string check, probe;
      std::uint32_t asn = 0;
      const std::map<int, RunCounts>* per_step = nullptr;
      RunCounts c;
      int bad = 0;
      // The step in which its first bad run in the span ended (not began: a journey is stamped
      // with its start, and another network's run begun meanwhile may have passed the failing
      // step before the failure began).
      int first_bad = std::numeric_limits<int>::max();
    };
    const auto bad_of = [](const RunCounts& rc) {
      int bad = rc.slow;
      for (const auto& [t, k] : rc.types) {
        if (connection_failure(t)) bad += k;
      }
      return bad;
    };
    const auto unexplained = [&](const std::string& probe, int step) {
      const auto explained = h.explained.find(probe);
      return explained == h.explained.end() || !explained->second.count(step);
    };
    std::vector<Part> parts;
    for (const auto& [key, per_step] : w.runs) {
      const auto check = w.checks.find(key.first);
      if (check == w.checks.end() || check->second.kind == "dns") continue;
      if (h.outage_checks.count(key.first)) continue;
      if (h.silent.count(key.second)) continue;  // silent: no evidence either way
      Part part{key.first, key.second, w.vantage_points.at(key.second).asn, &per_step, {}, 0};
      for (auto it = per_step.lower_bound(from); it != per_step.end() && it->first < e.to; ++it) {
        if (!unexplained(key.second, it->first)) continue;
        part.c.merge(it->second);
        if (bad_of(it->second) > 0) {
          const std::int64_t end = it->second.first_bad_end_ns;
          part.first_bad = std::min(part.first_bad, end == std::numeric_limits<std::int64_t>::max()
                                                        ? it->first
                                                        : std::max(it->first, w.step_of(end)));
        }
      }
      if (part.c.total == 0) continue;
      part.bad = bad_of(part.c);
      parts.push_back(std::move(part));
    }
    // A network's bad runs of a check are its evidence only against a fresh contrast: another
    // network that began the same check after the first of them had ended and stayed healthy (bad
    // share under degraded_share / 2 since then). A check every network that ran it since sees slow
    // or failing (a slow checkout step deployed) is the service's, not this network's; and a change
    // at the service reaches the vantage points a probe interval apart, so the first to run the
    // check must not look degraded before the others had their turn.
    std::map<std::string, std::vector<const Part*>> by_check;
    for (const Part& part : parts) by_check[part.check].push_back(&part);
    // confirmed: such a contrast exists; pending: no other network began the check since (its
    // turn has not come); refuted: the others that did are not healthy either. An open
    // incident keeps its pending evidence (a 6 s journey must not resolve it while the others'
    // next runs are still to come); an opening needs it confirmed.
    enum class Contrast { confirmed, pending, refuted };
    const auto contrast = [&](const Part& part) {
      if (part.bad == 0) return Contrast::confirmed;
      std::map<std::uint32_t, std::pair<int, int>> since;  // other network: runs, bad
      for (const Part* other_part : by_check.at(part.check)) {
        const Part& other = *other_part;
        if (other.asn == part.asn) continue;
        auto& [total, bad] = since[other.asn];
        for (auto it = other.per_step->upper_bound(part.first_bad);
             it != other.per_step->end() && it->first < e.to; ++it) {
          if (!unexplained(other.probe, it->first)) continue;
          total += it->second.total;
          bad += bad_of(it->second);
        }
      }
      bool ran = false;
      for (const auto& [asn, net] : since) {
        const auto& [total, bad] = net;
        if (total == 0) continue;
        ran = true;
        if (static_cast<double>(bad) / total < o.degraded_share / 2) return Contrast::confirmed;
      }
      // No other network runs this check at all: nothing can ever contrast it.
      if (since.empty()) return Contrast::refuted;
      return ran ? Contrast::refuted : Contrast::pending;
    };
    std::set<std::string> all_probes;
    std::map<std::uint32_t, Net> nets;
    for (const Part& part : parts) {
      const auto check = w.checks.find(part.check);
      all_probes.insert(part.probe);
      const Contrast c = contrast(part);
      if (c == Contrast::refuted) continue;
      if (c == Contrast::pending &&
          !h.open.count({Kind::degraded, "asn=" + std::to_string(part.asn)})) {
        continue;
      }
      Net& n = nets[part.asn];
      n.total += part.c.total;
      for (const auto& [t, k] : part.c.types) {
        if (connection_failure(t)) n.types[t] += k;
      }
      if (part.c.slow) n.types["slow"] += part.c.slow;
      n.bad += part.bad;
      n.probes.insert(part.probe);
      if (part.bad > 0) {
        n.checks.insert(part.check);
        n.hosts.insert(check->second.host.empty() ? check->second.target : check->second.host);
      }
      n.ms.insert(n.ms.end(), part.c.ok_ms.begin(), part.c.ok_ms.end());
    }
    int all_total = 0, all_bad = 0;
    for (const auto& [asn, n] : nets) {
      all_total += n.total;
      all_bad += n.bad;
    }
    for (const auto& [asn, n] : nets) {
      if (h.unreachable_asns.count(asn)) continue;
      const IncidentKey key{Kind::degraded, "asn=" + std::to_string(asn)};
      const double share = n.total > 0 ? static_cast<double>(n.bad) / n.total : 0;
      const int others_total = all_total - n.total;
      const double others =
          others_total > 0 ? static_cast<double>(all_bad - n.bad) / others_total : 0;
      const bool found = others_total > 0 && n.total >= 2 * o.min_results &&
                         n.bad > o.min_results && share >= o.degraded_share &&
                         share >= 2 * others && others < o.degraded_share / 2;
      const bool held = h.open.count(key) && share >= o.degraded_share / 2 && share > others;
      if (!found && !held) continue;
      Finding& f = findings[key];
      Incident& inc = f.incident;
      inc.key = key;
      inc.severity = Severity::ticket;
      for (const auto& p : n.probes) add_vantage_point(inc, w.vantage_points.at(p));
      for (const auto& [t, k] : n.types) inc.failure_types[t] += k;
      inc.failing_vantage_points = static_cast<int>(n.probes.size());
      inc.vantage_points = static_cast<int>(all_probes.size());
      for (const auto& c : n.checks) add_unique(inc.checks, c);
      for (const auto& t : n.hosts) add_unique(inc.targets, t);
      inc.value = share;
      inc.baseline = others;
      inc.p95_ms = percentile(n.ms, 0.95);
      // Its runs are the degradation's, not the SLO's.
      for (const auto& p : n.probes) {
        for (int k = from; k < e.to; ++k) h.degraded_steps[p].insert(k);
      }
    }
  }
};

// The network whose runs hold most of the bad ones (at least two thirds), with a bad share at
// least degraded_share and twice the others', while the others stay under half of it.
std::optional<std::uint32_t> concentrated(const std::map<std::uint32_t, SloCounts>& by_asn,
                                          const SloCounts& all, const AnalyzerOptions& o) {
  if (by_asn.size() < 2 || all.bad == 0) return std::nullopt;
  for (const auto& [asn, n] : by_asn) {
    if (n.total == 0 || 3 * n.bad < 2 * all.bad) continue;
    const int others_total = all.total - n.total;
    if (others_total <= 0) return std::nullopt;
    const double share = static_cast<double>(n.bad) / n.total;
    const double others = static_cast<double>(all.bad - n.bad) / others_total;
    if (share >= o.degraded_share && share >= 2 * others && others < o.degraded_share / 2)
      return asn;
  }
  return std::nullopt;
}

// --- slo_burn ----------------------------------------------------------------------------------
// Journeys and http checks against an SLO (a run is good when it passed within latency_ms):
// multi-window, multi-burn-rate alerts after the Google SRE workbook (page: >= 14.4 over the
// long and short page windows; ticket: >= 6 over the ticket windows), a window counting only
// with slo_min_runs runs. The steps another incident explains are left out, and an outage's
// checks entirely (the outage is the incident).
class SloDetector final : public Detector {
 public:
  const char* name() const override { return "slo_burn"; }
  void evaluate(const Window& w, const Evaluation& e, HandOver& h, Findings& findings) override {
    const AnalyzerOptions& o = w.options();
    const int m = e.to;
    const double budget = 1 - o.slo_objective;
    std::map<std::string, std::vector<const std::pair<const std::pair<std::string, std::string>,
                                                      std::map<int, SloCounts>>*>>
        by_check;
    for (const auto& entry : w.slo) {
      if (!h.silent.count(entry.first.second))  // silent: no evidence either way
        by_check[entry.first.first].push_back(&entry);
    }
    for (const auto& [check, vps] : by_check) {
      if (h.outage_checks.count(check)) continue;
      // The runs of the window no other incident explains; `by_asn`, when given, gets them per
      // network too.
      auto window = [&](std::int64_t span_ns,
                        std::map<std::uint32_t, SloCounts>* by_asn = nullptr) {
        SloCounts c;
        for (const auto* vp : vps) {
          SloCounts* mine =
              by_asn ? &(*by_asn)[w.vantage_points.at(vp->first.second).asn] : nullptr;
          const auto explained = h.explained.find(vp->first.second);
          const auto pending = h.pending.find(vp->first.second);
          const auto degraded = h.degraded_steps.find(vp->first.second);
          for (auto it = vp->second.lower_bound(m - w.steps(span_ns));
               it != vp->second.end() && it->first < m; ++it) {
            if (explained != h.explained.end() && explained->second.count(it->first)) continue;
            if (pending != h.pending.end() && pending->second.count(it->first)) continue;
            if (degraded != h.degraded_steps.end() && degraded->second.count(it->first)) continue;
            c.merge(it->second);
            if (mine) mine->merge(it->second);
          }
        }
        return c;
      };
      // A tier's windows count with slo_min_runs runs each and data over at least half of its
      // short window (the long one takes what there is).
      auto burn = [&](const SloCounts& c, std::int64_t short_ns) {
        const int span = w.steps(short_ns);
        const int covered = m - std::max(w.first_data_step(), m - span);
        if (c.total < o.slo_min_runs || 2 * covered < span) return 0.0;
        return static_cast<double>(c.bad) / c.total / budget;
      };
      const SloCounts hour = window(o.slo_page_long_ns);
      const double b5m = burn(window(o.slo_page_short_ns), o.slo_page_short_ns),
                   b1h = burn(hour, o.slo_page_short_ns);
      const double b30m = burn(window(o.slo_ticket_short_ns), o.slo_ticket_short_ns),
                   b6h = burn(window(o.slo_ticket_long_ns), o.slo_ticket_short_ns);
      const bool page = b1h >= 14.4 && b5m >= 14.4;
      const bool ticket = b6h >= 6 && b30m >= 6;
      if (!page && !ticket) continue;
      // A burn that comes from one network, worse than the others while they are healthy, is
      // that network's degradation, not the service's: handed to `degraded` under its key (the
      // degraded detector, slower to be sure, finds the same incident).
      std::map<std::uint32_t, SloCounts> by_asn;
      const SloCounts all = window(page ? o.slo_page_long_ns : o.slo_ticket_long_ns, &by_asn);
      if (const auto worst = concentrated(by_asn, all, o); worst) {
        const IncidentKey key{Kind::degraded, "asn=" + std::to_string(*worst)};
        Incident& inc = findings[key].incident;
        inc.key = key;
        const SloCounts& n = by_asn.at(*worst);
        const int others_total = all.total - n.total;
        inc.value = std::max(inc.value, static_cast<double>(n.bad) / n.total);
        if (inc.baseline <= 0 && others_total > 0)
          inc.baseline = static_cast<double>(all.bad - n.bad) / others_total;
        inc.p95_ms = std::max(inc.p95_ms, static_cast<double>(percentile(n.ms, 0.95)));
        for (const auto* vp : vps) {
          const VantagePoint& v = w.vantage_points.at(vp->first.second);
          if (v.asn != *worst) continue;
          add_vantage_point(inc, v);
          const auto runs = w.runs.find({check, vp->first.second});
          if (runs == w.runs.end()) continue;
          const RunCounts c = Window::sum(runs->second, m - w.steps(o.slo_page_short_ns), m);
          for (const auto& [t, k] : c.types) {
            if (connection_failure(t))
              inc.failure_types[t] = std::max(inc.failure_types[t], double(k));
          }
          if (c.slow)
            inc.failure_types["slow"] = std::max(inc.failure_types["slow"], double(c.slow));
        }
        add_unique(inc.checks, check);
        continue;
      }
      const IncidentKey key{Kind::slo_burn, "check=" + check};
      Incident& inc = findings[key].incident;
      inc.key = key;
      inc.severity = page ? Severity::page : Severity::ticket;
      const auto info = w.checks.find(check);
      if (info != w.checks.end()) add_unique(inc.targets, info->second.target);
      add_unique(inc.checks, check);
      inc.value = page ? std::min(b1h, b5m) : std::min(b6h, b30m);
      inc.p95_ms = percentile(hour.ms, 0.95);
      inc.p99_ms = percentile(hour.ms, 0.99);
      // What failed, so the incident says why the budget burns.
      for (const auto* vp : vps) {
        const RunCounts c = Window::sum(w.runs.count({check, vp->first.second})
                                            ? w.runs.at({check, vp->first.second})
                                            : std::map<int, RunCounts>{},
                                        m - w.steps(o.slo_page_short_ns), m);
        for (const auto& [t, n] : c.types) inc.failure_types[t] += n;
        if (c.slow) inc.failure_types["slow"] += c.slow;
        if (c.failed || c.slow) {
          add_vantage_point(inc, w.vantage_points.at(vp->first.second));
          ++inc.failing_vantage_points;
          for (const auto& s : c.failed_steps) add_unique(inc.checks, check + " step " + s);
        }
      }
      inc.vantage_points = static_cast<int>(vps.size());
    }
  }
};

// --- bgp_<alert> -------------------------------------------------------------------------------
// BGP alerts open for the hold that no reachability finding carried during their episode: a BGP
// event nobody's traffic has (yet) shown. The monitor's confidence decides the severity.
class BgpDetector final : public Detector {
 public:
  const char* name() const override { return "bgp"; }
  void evaluate(const Window& w, const Evaluation& e, HandOver& h, Findings& findings) override {
    const AnalyzerOptions& o = w.options();
    const std::int64_t t = e.time_ns;
    const std::int64_t hold = o.bgp_hold_ns > 0 ? o.bgp_hold_ns : o.window_ns;
    for (const auto& [alert_key, spans] : w.bgp_spans) {
      for (const auto& span : spans) {
        if (span.from > t || span.to <= t) continue;
        const bool held =
            span.from == std::numeric_limits<std::int64_t>::min() || t - span.from >= hold;
        if (!held || h.claimed_bgp.count({alert_key, span.from})) continue;
        // A finding carrying it now (even one not yet open) holds it back too.
        if (std::any_of(findings.begin(), findings.end(), [&](const auto& f) {
              return f.second.claims.count({alert_key, span.from}) > 0;
            })) {
          continue;
        }
        const BgpAlertRow& a = span.alert;
        std::string scope = "prefix=" + a.prefix;
        if (a.leaker_asn) {
          scope += " leaker=AS" + std::to_string(a.leaker_asn);
        } else if (a.origin_asn) {
          scope += " origin=AS" + std::to_string(a.origin_asn);
        }
        const IncidentKey key{bgp_kind(a.alert), scope};
        Finding& f = findings[key];
        f.immediate = true;  // the hold was its confirmation
        Incident& inc = f.incident;
        inc.key = key;
        // The monitor's confidence decides (a likely prepend typo is not a page); older records
        // carry none.
        const auto sev = parse_severity(a.severity);
        inc.severity = sev ? *sev
                       : a.alert == "unexpected_upstream" || a.alert == "rpki_invalid" ||
                               a.alert == "private_origin"
                           ? Severity::ticket
                           : Severity::page;
        add_unique(inc.prefixes, a.prefix);
        if (a.leaker_asn) add_unique(inc.asns, a.leaker_asn);
        if (a.origin_asn) add_unique(inc.asns, a.origin_asn);
        std::string what = a.alert + " " + a.prefix;
        if (a.leaker_asn) {
          what += " (leaker AS" + std::to_string(a.leaker_asn) + ")";
        } else if (a.origin_asn) {
          what += " (origin AS" + std::to_string(a.origin_asn) + ")";
        }
        add_unique(inc.bgp_alerts, what);
      }
    }
  }
};

}  // namespace

std::unique_ptr<Detector> make_http_error_detector() {
  return std::make_unique<HttpErrorDetector>();
}
std::unique_ptr<Detector> make_degraded_detector() { return std::make_unique<DegradedDetector>(); }
std::unique_ptr<Detector> make_slo_detector() { return std::make_unique<SloDetector>(); }
std::unique_ptr<Detector> make_bgp_detector() { return std::make_unique<BgpDetector>(); }

}  // namespace vantage::analysis
