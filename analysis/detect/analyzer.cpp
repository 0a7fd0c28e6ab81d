#include "analysis/detect/analyzer.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "common/time.hpp"

namespace vantage::analysis {
namespace {

// Failure types that say "the network path failed" (as opposed to DNS, an HTTP status or an
// assertion): the signature of a route leak or an ISP outage.
bool connection_failure(const std::string& t) {
  return t != "ok" && t.rfind("dns.", 0) != 0 && t != "http.error" && t != "assertion.failed";
}
bool dns_failure(const std::string& t) {
  return t.rfind("dns.", 0) == 0 || t == "assertion.failed";
}

// Address-in-prefix, IPv4 or IPv6 ("203.0.113.0/24" covers "203.0.113.10").
bool covers(const std::string& prefix, const std::string& ip) {
  const auto slash = prefix.find('/');
  if (slash == std::string::npos || ip.empty()) return false;
  unsigned char p[16] = {}, a[16] = {};
  const bool v6 = prefix.find(':') != std::string::npos;
  if (v6 != (ip.find(':') != std::string::npos)) return false;
  if (inet_pton(v6 ? AF_INET6 : AF_INET, prefix.substr(0, slash).c_str(), p) != 1 ||
      inet_pton(v6 ? AF_INET6 : AF_INET, ip.c_str(), a) != 1) {
    return false;
  }
  int bits = -1;
  const char* first = prefix.data() + slash + 1;
  const char* last = prefix.data() + prefix.size();
  const auto [end, ec] = std::from_chars(first, last, bits);
  if (ec != std::errc() || end != last || bits < 0 || bits > (v6 ? 128 : 32)) return false;
  for (int i = 0; bits > 0; ++i, bits -= 8) {
    const unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
    if ((p[i] & mask) != (a[i] & mask)) return false;
  }
  return true;
}

struct VantagePoint {
  std::uint32_t asn = 0;
  std::string isp, region, country;
};

struct Counts {
  int total = 0;
  int failed = 0;
  std::map<std::string, int> types;
  std::set<std::string> failed_ips;  // the addresses failed runs went to
  std::set<std::string> ok_ips;      // the addresses passed runs reached
};

struct SpikeCounts {
  double n = 0;           // requests answered over HTTP (weighted NEL ok + http.error)
  double x4 = 0, x5 = 0;  // 4xx and 5xx error reports
  std::set<std::uint32_t> asns4, asns5;
};

struct SloCounts {
  int total = 0, bad = 0;
  std::vector<float> ms;
};

template <typename T>
void add_unique(std::vector<T>& v, const T& x) {
  if (std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
}

double percentile(std::vector<float> v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size()))) - 1;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

std::string join_asns(const std::vector<std::uint32_t>& v) {
  std::string s;
  for (auto a : v) s += (s.empty() ? "AS" : ", AS") + std::to_string(a);
  return s;
}

class Replay {
 public:
  Replay(const AnalyzerOptions& o, std::int64_t from, std::int64_t to)
      : o_(o), from_(from), to_(to) {}

  int minute(std::int64_t t) const { return static_cast<int>((t - from_) / o_.step_ns); }

  void add(const ProbeResultRow& r) {
    const int m = minute(r.time_ns);
    auto& vp = vps_[r.probe_id];
    vp.asn = r.asn;
    vp.isp = r.isp;
    vp.region = r.region;
    vp.country = r.country;
    kinds_[r.check] = r.check_kind;
    // A dns check with several resolvers gives one result per resolver per run: each resolver
    // is a vantage point of its own.
    const std::string vp_key = r.check_kind == "dns" ? r.probe_id + '\0' + r.server_ip : r.probe_id;
    Counts& c = per_vp_[{r.check, vp_key}][m];
    ++c.total;
    if (r.outcome != "ok") {
      ++c.failed;
      ++c.types[r.outcome];
      if (r.check_kind != "dns" && !r.server_ip.empty()) c.failed_ips.insert(r.server_ip);
    } else if (r.check_kind != "dns" && !r.server_ip.empty()) {
      c.ok_ips.insert(r.server_ip);
    }
    if (r.check_kind == "dns") resolver_[{r.check, vp_key}] = r.server_ip;
    if (r.check_kind != "dns" && !r.server_ip.empty())
      server_ips_[{r.check, r.probe_id}] = r.server_ip;
    targets_[{r.check, r.probe_id}] = r.target;
    check_target_[r.check] = r.target;
    if (r.check_kind == "journey" || r.check_kind == "http") {
      SloCounts& s = slo_[{r.check, r.probe_id}][m];
      ++s.total;
      if (r.outcome != "ok" || r.total_ms > o_.latency_ms) ++s.bad;
      s.ms.push_back(static_cast<float>(r.total_ms));
    }
  }

  void add(const BrowserReportRow& r) {
    const int m = minute(r.time_ns);
    if (r.type != "network-error") {
      if (r.type == "http_error") nel_[r.asn][m]["agent http_error"] += r.weight;
      return;
    }
    if (r.nel_type != "ok") nel_[r.asn][m][r.nel_type] += r.weight;
    // Per endpoint × country: the requests that got an HTTP answer (NEL "ok" and "http.error";
    // weighted: successes are sampled) and the error reports (counted: failures are reported at
    // failure_fraction, normally 1).
    if (r.nel_type != "ok" && r.nel_type != "http.error") return;
    SpikeCounts& k = spike_counts(r.url, r.country)[m];
    k.n += r.weight;
    if (r.nel_type == "http.error" && r.status_code && *r.status_code >= 400) {
      (*r.status_code < 500 ? k.x4 : k.x5) += 1;
      (*r.status_code < 500 ? k.asns4 : k.asns5).insert(r.asn);
    }
  }

  // BGP alert transitions in time order: each open..resolved episode is one span.
  void add(const BgpAlertRow& a) {
    auto& spans = bgp_spans_[a.alert_key];
    if (a.status == "open") {
      if (!spans.empty() && spans.back().to == std::numeric_limits<std::int64_t>::max())
        return;  // already open
      spans.push_back({a, a.time_ns, std::numeric_limits<std::int64_t>::max()});
    } else if (!spans.empty() && spans.back().to == std::numeric_limits<std::int64_t>::max()) {
      spans.back().to = a.time_ns;
    } else {
      spans.push_back(
          {a, std::numeric_limits<std::int64_t>::min(), a.time_ns});  // opened before what was read
    }
  }

  AnalysisResult run() {
    AnalysisResult out;
    out.from_ns = from_;
    out.to_ns = to_;
    const int last = static_cast<int>((to_ - from_) / o_.step_ns);  // the last whole step
    const int w = static_cast<int>(o_.window_ns / o_.step_ns);
    // Evaluations at whole steps only, never past the end of the range: a step still filling is
    // evaluated once it is complete (by the next `vantage watch` cycle), so times and ids stay on
    // the grid from one replay to the next.
    for (int m = w; m <= last; ++m) {
      const std::int64_t t = from_ + static_cast<std::int64_t>(m) * o_.step_ns;
      findings_.clear();
      failing_probes_.clear();
      evidence_asns_.clear();
      evaluation_ = m;
      elsewhere_only_.clear();
      reachability(m - w, m);
      dns(m - w, m);
      dns_takes_over();
      spikes(m - w, m);
      slo(m);
      bgp(t);
      transitions(t, out);
    }
    for (auto& [key, st] : state_) {
      if (st.open) out.incidents.push_back(st.incident);
    }
    std::sort(out.incidents.begin(), out.incidents.end(),
              [](const Incident& a, const Incident& b) { return a.opened_ns < b.opened_ns; });
    return out;
  }

 private:
  template <typename Map>
  static auto sum(const Map& per_minute, int from, int to) {
    typename Map::mapped_type total{};
    for (auto it = per_minute.lower_bound(from); it != per_minute.end() && it->first < to; ++it) {
      merge(total, it->second);
    }
    return total;
  }
  static void merge(Counts& a, const Counts& b) {
    a.total += b.total;
    a.failed += b.failed;
    for (const auto& [t, n] : b.types) a.types[t] += n;
    a.failed_ips.insert(b.failed_ips.begin(), b.failed_ips.end());
    a.ok_ips.insert(b.ok_ips.begin(), b.ok_ips.end());
  }
  static void merge(SpikeCounts& a, const SpikeCounts& b) {
    a.n += b.n;
    a.x4 += b.x4;
    a.x5 += b.x5;
    a.asns4.insert(b.asns4.begin(), b.asns4.end());
    a.asns5.insert(b.asns5.begin(), b.asns5.end());
  }
  static void merge(SloCounts& a, const SloCounts& b) {
    a.total += b.total;
    a.bad += b.bad;
    a.ms.insert(a.ms.end(), b.ms.begin(), b.ms.end());
  }
  static void merge(std::map<std::string, double>& a, const std::map<std::string, double>& b) {
    for (const auto& [k, v] : b) a[k] += v;
  }

  // Weighted browser reports from `asn` in the window whose NEL type passes `pick`.
  template <typename Pick>
  std::map<std::string, double> browser_evidence(std::uint32_t asn, int from, int to,
                                                 Pick pick) const {
    std::map<std::string, double> out;
    auto it = nel_.find(asn);
    if (it == nel_.end()) return out;
    for (const auto& [type, n] : sum(it->second, from, to)) {
      if (pick(type)) out[type] += n;
    }
    return out;
  }

  struct Finding {
    Incident incident;
    bool immediate = false;  // opens on its first evaluation (bgp_<alert>: after its hold)
    // reachability_loss: the BGP alert episodes (alert key, start) it carries; they become its
    // evidence for good once its incident is open.
    std::set<std::pair<std::string, std::int64_t>> claims;
  };

  // The per-minute counts of (endpoint of `url`, country), found without building a key per row.
  std::map<int, SpikeCounts>& spike_counts(const std::string& url, const std::string& country) {
    const auto scheme = url.find("://");
    const auto path = scheme == std::string::npos ? 0 : url.find('/', scheme + 3);
    key_buf_.assign(url, path == std::string::npos ? url.size() : path);
    if (path == std::string::npos) key_buf_ += '/';
    key_buf_ += '\0';
    key_buf_ += country;
    auto it = spike_index_.find(key_buf_);
    if (it != spike_index_.end()) return *it->second;
    const auto sep = key_buf_.find('\0');
    auto& counts = spikes_by_country_[{key_buf_.substr(0, sep), key_buf_.substr(sep + 1)}];
    spike_index_.emplace(key_buf_, &counts);
    return counts;
  }

  // A vantage point fails a check when most of its results in the window failed in the way
  // `counts_as` says; the finding needs others that reach the same check.
  template <typename CountsAs>
  void localized(int from, int to, bool dns_checks, CountsAs counts_as) {
    std::map<std::string, std::vector<std::pair<std::string, Counts>>> by_check;
    for (const auto& [key, per_minute] : per_vp_) {
      const bool is_dns = kinds_[key.first] == "dns";
      if (is_dns != dns_checks) continue;
      Counts c = sum(per_minute, from, to);
      if (c.total == 0) continue;
      by_check[key.first].push_back({key.second, c});
    }
    for (const auto& [check, vps] : by_check) {
      std::vector<std::pair<std::string, Counts>> failing;
      int healthy = 0;
      std::set<std::string> healthy_ips;  // the addresses healthy vantage points reached
      for (const auto& [probe, c] : vps) {
        int bad = 0;
        for (const auto& [t, n] : c.types) bad += counts_as(t) ? n : 0;
        const double ratio = static_cast<double>(bad) / c.total;
        if (c.total >= o_.min_results && ratio >= o_.fail_ratio) {
          failing.push_back({probe, c});
        } else if (static_cast<double>(c.failed) / c.total < o_.ok_ratio) {
          ++healthy;
          healthy_ips.insert(c.ok_ips.begin(), c.ok_ips.end());
        }
      }
      if (failing.empty() || healthy == 0) continue;  // nothing failing, or failing everywhere
      for (const auto& [vp_key, c] : failing) {
        const std::string probe = vp_key.substr(0, vp_key.find('\0'));
        const VantagePoint& vp = vps_[probe];
        for (int k = from; k < to; ++k) explained_[probe].insert(k);
        // Failing at addresses no healthy vantage point reached: a wrong DNS answer, most likely.
        // The dns checks get a whole window to say so before this counts here, and while a DNS
        // failure from this network was seen in the last window it is its part.
        const bool elsewhere =
            !dns_checks && !c.failed_ips.empty() && !healthy_ips.empty() &&
            std::none_of(c.failed_ips.begin(), c.failed_ips.end(),
                         [&](const std::string& ip) { return healthy_ips.count(ip) > 0; });
        {
          if (elsewhere) {
            const auto known = dns_suspect_since_.find({check, probe});
            const int since = known == dns_suspect_since_.end() ? to : known->second;
            suspects_now_[{check, probe}] = since;
            const auto dns_seen = dns_seen_.find(vp.asn);
            if (to - since < to - from ||
                (dns_seen != dns_seen_.end() && to - dns_seen->second <= to - from)) {
              continue;
            }
          }
        }
        // One incident per failing network (reachability) or resolver (DNS), whatever it breaks.
        const std::string resolver = resolver_[{check, vp_key}];
        const std::string key = dns_checks ? "dns_failure resolver=" + resolver
                                           : "reachability_loss asn=" + std::to_string(vp.asn);
        Finding& finding = findings_[key];
        if (!dns_checks && !elsewhere_only_.count(key)) elsewhere_only_[key] = true;
        if (!dns_checks && !elsewhere) elsewhere_only_[key] = false;
        Incident& inc = finding.incident;
        inc.id = key;
        inc.kind = dns_checks ? "dns_failure" : "reachability_loss";
        inc.severity = "page";
        const std::string& target = targets_[{check, probe}];
        add_unique(inc.targets, dns_checks ? target + " via " + resolver : target);
        add_unique(inc.asns, vp.asn);
        add_unique(inc.isps, vp.isp);
        add_unique(inc.regions, vp.region);
        add_unique(inc.countries, vp.country);
        for (const auto& [t, n] : c.types) inc.failure_types[t] += n;
        failing_probes_[key].insert(probe);
        inc.failing_vantage_points = static_cast<int>(failing_probes_[key].size());
        inc.vantage_points = static_cast<int>(vps.size());
        inc.value = std::max(inc.value, static_cast<double>(c.failed) / c.total);
        if (!dns_checks) {
          // The addresses its failed runs went to (else the last one it connected to).
          std::set<std::string> ips = c.failed_ips;
          if (ips.empty()) ips.insert(server_ips_[{check, probe}]);
          const std::int64_t t0 = from_ + static_cast<std::int64_t>(from) * o_.step_ns;
          const std::int64_t t1 = from_ + static_cast<std::int64_t>(to) * o_.step_ns;
          for (const auto& [alert_key, spans] : bgp_spans_) {
            for (const auto& span : spans) {
              if (span.from >= t1 || span.to < t0 ||
                  std::none_of(ips.begin(), ips.end(), [&](const std::string& ip) {
                    return covers(span.alert.prefix, ip);
                  })) {
                continue;
              }
              finding.claims.insert({alert_key, span.from});
              std::string what = span.alert.alert + " " + span.alert.prefix;
              if (span.alert.leaker_asn) {
                what += " (leaker AS" + std::to_string(span.alert.leaker_asn) + ")";
              } else if (span.alert.origin_asn) {
                what += " (origin AS" + std::to_string(span.alert.origin_asn) + ")";
              }
              add_unique(inc.bgp_alerts, what);
            }
          }
        }
        if (std::find(evidence_asns_[key].begin(), evidence_asns_[key].end(), vp.asn) ==
            evidence_asns_[key].end()) {
          evidence_asns_[key].push_back(
              vp.asn);  // each ASN's users once, however many probes it has
          for (const auto& [t, n] :
               browser_evidence(vp.asn, from, to, [&](const std::string& type) {
                 return dns_checks ? type.rfind("dns.", 0) == 0
                                   : (type.rfind("tcp.", 0) == 0 || type.rfind("tls.", 0) == 0);
               })) {
            inc.browser_reports[t] += n;
          }
        }
      }
    }
  }

  void reachability(int from, int to) {
    suspects_now_.clear();
    localized(from, to, false, connection_failure);
    dns_suspect_since_.swap(suspects_now_);  // only the vantage points still suspect now
  }
  void dns(int from, int to) { localized(from, to, true, dns_failure); }

  // A network whose resolver answers wrongly cannot reach what it was pointed at: the DNS failure
  // is the incident, the connection failures behind it are its consequence (still explained).
  void dns_takes_over() {
    std::set<std::uint32_t> dns_asns;
    for (const auto& [key, f] : findings_) {
      if (f.incident.kind == "dns_failure")
        dns_asns.insert(f.incident.asns.begin(), f.incident.asns.end());
    }
    for (auto asn : dns_asns) dns_seen_[asn] = evaluation_;
    for (auto it = findings_.begin(); it != findings_.end();) {
      const Incident& inc = it->second.incident;
      const bool taken =
          inc.kind == "reachability_loss" && elsewhere_only_[it->first] &&
          std::all_of(inc.asns.begin(), inc.asns.end(), [&](auto a) { return dns_asns.count(a); });
      it = taken ? findings_.erase(it) : std::next(it);
    }
  }

  // BGP alerts open for the hold that no reachability finding carried during their episode.
  void bgp(std::int64_t t) {
    const std::int64_t hold = o_.bgp_hold_ns > 0 ? o_.bgp_hold_ns : o_.window_ns;
    for (const auto& [alert_key, spans] : bgp_spans_) {
      for (const auto& span : spans) {
        if (span.from > t || span.to <= t) continue;
        const bool held =
            span.from == std::numeric_limits<std::int64_t>::min() || t - span.from >= hold;
        if (!held || claimed_bgp_.count({alert_key, span.from})) continue;
        // A reachability finding carrying it now (even one not yet open) holds it back too.
        if (std::any_of(findings_.begin(), findings_.end(), [&](const auto& f) {
              return f.second.claims.count({alert_key, span.from}) > 0;
            })) {
          continue;
        }
        const BgpAlertRow& a = span.alert;
        std::string id = "bgp_" + a.alert + " prefix=" + a.prefix;
        if (a.leaker_asn) {
          id += " leaker=AS" + std::to_string(a.leaker_asn);
        } else if (a.origin_asn) {
          id += " origin=AS" + std::to_string(a.origin_asn);
        }
        Finding& f = findings_[id];
        f.immediate = true;  // the hold was its confirmation
        Incident& inc = f.incident;
        inc.id = id;
        inc.kind = "bgp_" + a.alert;
        // The monitor's confidence decides (a likely prepend typo is not a page); older records
        // carry none.
        inc.severity = !a.severity.empty() ? a.severity
                       : a.alert == "unexpected_upstream" || a.alert == "rpki_invalid" ||
                               a.alert == "private_origin"
                           ? "ticket"
                           : "page";
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

  void spikes(int from, int to) {
    // The baseline ends one window before the current one: the minutes just before a spike is
    // detected already hold some of it.
    const int b = static_cast<int>(o_.baseline_ns / o_.step_ns);
    const int gap = to - from;
    if (from - gap - b < 0) return;  // no baseline yet
    for (const auto& [key, per_minute] : spikes_by_country_) {
      const SpikeCounts now = sum(per_minute, from, to);
      for (int cls = 4; cls <= 5; ++cls) {
        const std::string cls_name = cls == 4 ? "4xx" : "5xx";
        const std::string id = "http_error_spike endpoint=" + key.first + " status=" + cls_name;
        const std::string base_key = id + " country=" + key.second;
        const double x = cls == 4 ? now.x4 : now.x5;
        if (now.n <= 0 || x < o_.min_errors) continue;
        double p0;
        if (auto f = frozen_baseline_.find(base_key); f != frozen_baseline_.end()) {
          p0 = f->second;
        } else {
          const SpikeCounts base = sum(per_minute, from - gap - b, from - gap);
          const double x0 = cls == 4 ? base.x4 : base.x5;
          p0 = std::max(base.n > 0 ? x0 / base.n : 0.0, 0.001);
        }
        // Error reports are counts (every failure is reported): a Poisson test of x against the
        // λ = p0 · requests the baseline share predicts.
        const double p = x / now.n;
        const double lambda = p0 * now.n;
        const double z = (x - lambda) / std::sqrt(std::max(lambda, 1.0));
        if (z < o_.z_min || p < 2 * p0 || p < o_.min_share) continue;
        frozen_baseline_.emplace(base_key, p0);
        spike_keys_[id].insert(base_key);
        Incident& inc = findings_[id].incident;
        inc.id = id;
        inc.kind = "http_error_spike";
        inc.severity = cls == 5 ? "page" : "ticket";
        add_unique(inc.endpoints, key.first);
        add_unique(inc.countries, key.second);
        // The vantage points in that country and those networks see the same errors: their runs
        // belong to this incident, not to the SLO.
        const auto& spike_asns = cls == 4 ? now.asns4 : now.asns5;
        for (const auto& [probe, vp] : vps_) {
          if (vp.country != key.second || !spike_asns.count(vp.asn)) continue;
          for (int k = from; k < to; ++k) explained_[probe].insert(k);
        }
        for (auto asn : cls == 4 ? now.asns4 : now.asns5) add_unique(inc.asns, asn);
        inc.browser_reports["http.error " + cls_name] += x;
        inc.value = std::max(inc.value, p);
        inc.baseline = p0;
      }
    }
  }

  void slo(int m) {
    auto minutes = [&](std::int64_t ns) { return static_cast<int>(ns / o_.step_ns); };
    const double budget = 1 - o_.slo_objective;
    std::map<std::string, std::vector<const std::pair<const std::pair<std::string, std::string>,
                                                      std::map<int, SloCounts>>*>>
        by_check;
    for (const auto& entry : slo_) by_check[entry.first.first].push_back(&entry);
    for (const auto& [check, vps] : by_check) {
      // The minutes in which a localised incident explained a vantage point's failures are left
      // out: they belong to that incident, not to the service's SLO.
      auto window = [&](std::int64_t span_ns) {
        SloCounts c;
        for (const auto* vp : vps) {
          const auto explained = explained_.find(vp->first.second);
          for (auto it = vp->second.lower_bound(m - minutes(span_ns));
               it != vp->second.end() && it->first < m; ++it) {
            if (explained != explained_.end() && explained->second.count(it->first)) continue;
            merge(c, it->second);
          }
        }
        return c;
      };
      auto burn = [&](const SloCounts& c) {
        return c.total >= o_.slo_min_runs ? static_cast<double>(c.bad) / c.total / budget : 0.0;
      };
      const SloCounts hour = window(o_.slo_page_long_ns);
      const double b5m = burn(window(o_.slo_page_short_ns)), b1h = burn(hour);
      const double b30m = burn(window(o_.slo_ticket_short_ns)),
                   b6h = burn(window(o_.slo_ticket_long_ns));
      const bool page = b1h >= 14.4 && b5m >= 14.4;
      const bool ticket = b6h >= 6 && b30m >= 6;
      if (!page && !ticket) continue;
      const std::string id = "slo_burn check=" + check;
      Incident& inc = findings_[id].incident;
      inc.id = id;
      inc.kind = "slo_burn";
      inc.severity = page ? "page" : "ticket";
      add_unique(inc.targets, check_target_[check]);
      inc.value = page ? std::min(b1h, b5m) : std::min(b6h, b30m);
      inc.p95_ms = percentile(hour.ms, 0.95);
      inc.p99_ms = percentile(hour.ms, 0.99);
    }
  }

  struct State {
    Incident incident;
    int seen = 0, clear = 0;
    bool open = false;
  };

  static std::string title(const Incident& i) {
    if (i.kind == "reachability_loss" || i.kind == "dns_failure") {
      std::string types;
      for (const auto& [t, n] : i.failure_types) types += (types.empty() ? "" : ", ") + t;
      return (i.kind == "dns_failure" ? "DNS fails for " : "unreachable: ") +
             (i.targets.empty() ? std::string() : i.targets.front()) +
             (i.targets.size() > 1 ? " (+" + std::to_string(i.targets.size() - 1) + ")" : "") +
             " from " + std::to_string(i.failing_vantage_points) + " of " +
             std::to_string(i.vantage_points) + " vantage points in " + join_asns(i.asns) +
             (i.isps.empty() ? "" : " " + i.isps.front()) + " (" + types + ")";
    }
    if (i.kind == "http_error_spike") {
      std::string where;
      for (const auto& c : i.countries) where += (where.empty() ? "" : ", ") + c;
      char buf[160];
      std::snprintf(buf, sizeof buf, " in %s: %.1f%% (baseline %.1f%%)", where.c_str(),
                    100 * i.value, 100 * i.baseline);
      const auto status = i.id.find("status=");
      return i.id.substr(status + 7, 3) + " spike on " + i.endpoints.front() + buf;
    }
    if (i.kind.rfind("bgp_", 0) == 0) {
      std::string what = i.kind.substr(4);
      std::replace(what.begin(), what.end(), '_', ' ');
      std::string prefixes;
      for (const auto& p : i.prefixes) prefixes += (prefixes.empty() ? "" : ", ") + p;
      return what + " of " + prefixes + (i.asns.empty() ? "" : " (" + join_asns(i.asns) + ")") +
             " seen in BGP; no vantage point lost reachability";
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, " burning its error budget %.1fx (p95 %.0f ms, p99 %.0f ms)",
                  i.value, i.p95_ms, i.p99_ms);
    return (i.targets.empty() ? i.id : i.targets.front()) + buf;
  }

  void transitions(std::int64_t t, AnalysisResult& out) {
    for (auto& [key, f] : findings_) {
      State& st = state_[key];
      st.clear = 0;
      ++st.seen;
      if (!st.open) {
        if (st.seen >= o_.open_after || f.immediate) {
          st.open = true;
          st.incident = f.incident;
          st.incident.id = key + " @" + format_rfc3339(from_unix_nanos(t)).substr(0, 19) + "Z";
          st.incident.status = "open";
          st.incident.opened_severity = st.incident.severity;
          st.incident.opened_ns = t;
          st.incident.resolved_ns = 0;
          st.incident.runbook =
              "docs/runbooks/" +
              (f.incident.kind.rfind("bgp_", 0) == 0 ? std::string("bgp") : f.incident.kind) +
              ".md";
          st.incident.title = title(st.incident);
          out.events.push_back({t, "opened", st.incident});
        }
        continue;
      }
      // Ongoing: widen the scope with what this evaluation saw; keep the worst figures.
      Incident& inc = st.incident;
      inc.status = "ongoing";
      for (const auto& x : f.incident.targets) add_unique(inc.targets, x);
      for (const auto& x : f.incident.asns) add_unique(inc.asns, x);
      for (const auto& x : f.incident.isps) add_unique(inc.isps, x);
      for (const auto& x : f.incident.regions) add_unique(inc.regions, x);
      for (const auto& x : f.incident.countries) add_unique(inc.countries, x);
      for (const auto& x : f.incident.endpoints) add_unique(inc.endpoints, x);
      for (const auto& x : f.incident.prefixes) add_unique(inc.prefixes, x);
      for (const auto& [k, v] : f.incident.failure_types)
        inc.failure_types[k] = std::max(inc.failure_types[k], v);
      for (const auto& [k, v] : f.incident.browser_reports)
        inc.browser_reports[k] = std::max(inc.browser_reports[k], v);
      for (const auto& x : f.incident.bgp_alerts) add_unique(inc.bgp_alerts, x);
      inc.failing_vantage_points =
          std::max(inc.failing_vantage_points, f.incident.failing_vantage_points);
      inc.value = std::max(inc.value, f.incident.value);
      if (f.incident.severity == "page") inc.severity = "page";
      inc.p95_ms = std::max(inc.p95_ms, f.incident.p95_ms);
      inc.p99_ms = std::max(inc.p99_ms, f.incident.p99_ms);
      inc.title = title(inc);
    }
    // The BGP alerts an open (or now opening) incident carries are its evidence for good.
    for (const auto& [key, f] : findings_) {
      if (state_[key].open) claimed_bgp_.insert(f.claims.begin(), f.claims.end());
    }
    for (auto& [key, st] : state_) {
      if (findings_.count(key)) continue;
      st.seen = 0;
      if (!st.open) {
        for (const auto& k : spike_keys_[key]) frozen_baseline_.erase(k);
        spike_keys_.erase(key);
        continue;
      }
      if (++st.clear >= o_.resolve_after) {
        st.open = false;
        st.incident.status = "resolved";
        st.incident.resolved_ns = t;
        out.events.push_back({t, "resolved", st.incident});
        out.incidents.push_back(st.incident);
        for (const auto& k : spike_keys_[key]) frozen_baseline_.erase(k);
        spike_keys_.erase(key);
      }
    }
  }

  AnalyzerOptions o_;
  std::int64_t from_, to_;
  std::map<std::string, VantagePoint> vps_;
  std::map<std::string, std::string> kinds_, check_target_;  // check -> kind, last target
  std::map<std::pair<std::string, std::string>, std::string> targets_;  // (check, probe) -> target
  std::map<std::pair<std::string, std::string>, std::map<int, Counts>> per_vp_;  // (check, probe)
  std::map<std::pair<std::string, std::string>, std::string> resolver_;
  std::map<std::pair<std::string, std::string>, std::string>
      server_ips_;  // (check, probe) -> address
  struct BgpSpan {
    BgpAlertRow alert;
    std::int64_t from = std::numeric_limits<std::int64_t>::min();
    std::int64_t to = std::numeric_limits<std::int64_t>::max();
  };
  std::map<std::string, std::vector<BgpSpan>> bgp_spans_;  // alert_key -> its open episodes
  std::map<std::uint32_t, std::map<int, std::map<std::string, double>>>
      nel_;  // asn -> minute -> type
  std::map<std::pair<std::string, std::string>, std::map<int, SpikeCounts>> spikes_by_country_;
  std::unordered_map<std::string, std::map<int, SpikeCounts>*> spike_index_;  // "endpoint\0country"
  std::string key_buf_;
  std::map<std::pair<std::string, std::string>, std::map<int, SloCounts>> slo_;  // (check, probe)
  std::map<std::string, std::set<int>> explained_;  // probe -> minutes a localised finding explains
  // (check, probe) -> the step since which it fails at an address no healthy vantage point reached
  std::map<std::pair<std::string, std::string>, int> dns_suspect_since_;
  std::map<std::pair<std::string, std::string>, int> suspects_now_;  // this evaluation's
  std::map<std::uint32_t, int> dns_seen_;  // ASN -> the last evaluation with a dns_failure from it
  std::map<std::string, bool>
      elsewhere_only_;  // this evaluation: a reachability finding made only of such
  int evaluation_ = 0;
  std::set<std::pair<std::string, std::int64_t>>
      claimed_bgp_;  // (alert key, episode start) a reachability loss carried
  std::map<std::string, Finding> findings_;
  std::map<std::string, std::set<std::string>> failing_probes_;      // finding -> vantage points
  std::map<std::string, std::vector<std::uint32_t>> evidence_asns_;  // finding -> ASNs counted
  // http_error_spike: the baseline share of a key, frozen when the key first looks anomalous and
  // kept while its incident lasts, so that the spike does not become its own baseline.
  std::map<std::string, double> frozen_baseline_;
  std::map<std::string, std::set<std::string>> spike_keys_;  // incident key -> its baseline keys
  std::map<std::string, State> state_;
};

}  // namespace

AnalysisResult analyze(EventStore& store, std::int64_t from_ns, std::int64_t to_ns,
                       const AnalyzerOptions& options,
                       const std::function<void(const ProbeResultRow&)>& on_result,
                       const std::function<void(const BrowserReportRow&)>& on_report) {
  Replay replay(options, from_ns, to_ns);
  std::uint64_t results = 0, reports = 0;
  store.scan_results(from_ns, to_ns, [&](const ProbeResultRow& r) {
    ++results;
    replay.add(r);
    if (on_result) on_result(r);
  });
  store.scan_reports(from_ns, to_ns, [&](const BrowserReportRow& r) {
    ++reports;
    replay.add(r);
    if (on_report) on_report(r);
  });
  // BGP alerts from a day before: one opened earlier may still be open (its resolution, if any,
  // comes later; one resolved without its opening in sight counts from the start).
  const std::int64_t day = 86'400'000'000'000;
  store.scan_bgp_alerts(
      from_ns > std::numeric_limits<std::int64_t>::min() + day ? from_ns - day : from_ns, to_ns,
      [&](const BgpAlertRow& a) { replay.add(a); });
  AnalysisResult out = replay.run();
  out.results = results;
  out.reports = reports;
  return out;
}

std::string incident_json(const Incident& i) {
  nlohmann::json j{{"id", i.id},
                   {"kind", i.kind},
                   {"severity", i.severity},
                   {"status", i.status},
                   {"title", i.title},
                   {"runbook", i.runbook},
                   {"opened", format_rfc3339(from_unix_nanos(i.opened_ns))},
                   {"scope",
                    {{"targets", i.targets},
                     {"asns", i.asns},
                     {"isps", i.isps},
                     {"regions", i.regions},
                     {"countries", i.countries},
                     {"endpoints", i.endpoints},
                     {"prefixes", i.prefixes}}},
                   {"evidence",
                    {{"failure_types", i.failure_types},
                     {"browser_reports", i.browser_reports},
                     {"failing_vantage_points", i.failing_vantage_points},
                     {"bgp_alerts", i.bgp_alerts},
                     {"vantage_points", i.vantage_points}}}};
  if (i.resolved_ns) j["resolved"] = format_rfc3339(from_unix_nanos(i.resolved_ns));
  if (i.kind == "http_error_spike") {
    j["evidence"]["share"] = i.value;
    j["evidence"]["baseline_share"] = i.baseline;
  }
  if (i.kind == "slo_burn") {
    j["evidence"]["burn_rate"] = i.value;
    j["evidence"]["p95_ms"] = i.p95_ms;
    j["evidence"]["p99_ms"] = i.p99_ms;
  }
  if (i.kind == "reachability_loss" || i.kind == "dns_failure")
    j["evidence"]["failure_ratio"] = i.value;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace vantage::analysis
