#include "analysis/detect/tracker.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "common/time.hpp"

namespace vantage::analysis {
namespace {

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

// "tcp.timed_out, tls.failed" — every type, never cut.
std::string types_of(const std::map<std::string, double>& types) {
  std::string s;
  for (const auto& [t, n] : types) s += (s.empty() ? "" : ", ") + t;
  return s;
}

// "AS64501 Northwind Telecom" or "AS64501, AS64502"
std::string networks(const Incident& i) {
  std::string s = join_asns(i.asns);
  if (i.asns.size() == 1 && !i.isps.empty()) s += " " + i.isps.front();
  return s.empty() ? "unknown network" : s;
}

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", 100 * share);
  return buf;
}

// "2026-11-22T01:52:00Z"
std::string utc_second(std::int64_t ns) {
  return format_rfc3339(from_unix_nanos(ns)).substr(0, 19) + "Z";
}

std::string first_target(const Incident& i) {
  if (i.targets.empty()) return i.checks.empty() ? std::string("the service") : i.checks.front();
  return i.targets.front() +
         (i.targets.size() > 1 ? " (+" + std::to_string(i.targets.size() - 1) + ")" : "");
}

}  // namespace

std::string incident_title(const Incident& i) {
  switch (i.key.kind) {
    case Kind::outage:
      return first_target(i) + " down everywhere: unreachable from " +
             std::to_string(i.failing_vantage_points) + " of " + std::to_string(i.vantage_points) +
             " vantage points in " + std::to_string(i.networks) + " networks (" +
             types_of(i.failure_types) + ")";
    case Kind::reachability_loss:
      if (i.failure_types.empty()) {  // users' NEL alone
        return "users in " + networks(i) + " cannot reach the service: " + percent(i.value) +
               " of their requests fail (" + types_of(i.browser_reports) + "; baseline " +
               percent(i.baseline) + ")";
      }
      return first_target(i) + " unreachable from " + networks(i) + " (" +
             types_of(i.failure_types) + ")";
    case Kind::dns_failure:
      return "DNS fails for " + first_target(i) + " in " + networks(i) + " (" +
             types_of(i.failure_types) + ")";
    case Kind::degraded:
      return networks(i) + " degraded: " + percent(i.value) +
             " of runs failed or slow (other networks " + percent(i.baseline) + "; " +
             types_of(i.failure_types) + ")";
    case Kind::http_error: {
      const std::string endpoint = i.endpoints.empty() ? std::string("/") : i.endpoints.front();
      std::string codes;
      for (int s : i.statuses) codes += (codes.empty() ? "" : ", ") + std::to_string(s);
      if (!i.statuses.empty() && i.failing_vantage_points > 0) {
        return codes + " on " + endpoint + " from " +
               (i.vantage_points > 0 && i.failing_vantage_points >= i.vantage_points
                    ? "every vantage point (" + networks(i) + ")"
                    : networks(i));
      }
      const std::string cls =
          codes.empty() ? i.key.scope.substr(i.key.scope.rfind('=') + 1) : codes;
      return cls + " on " + endpoint + " for users in " + join(i.countries) + " (" + networks(i) +
             "): " + percent(i.value) + " of requests (baseline " + percent(i.baseline) + ")";
    }
    case Kind::slo_burn: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.1fx", i.value);
      std::string what = i.checks.empty() ? i.key.scope : i.checks.front();
      std::string why;
      for (std::size_t k = 1; k < i.checks.size(); ++k)
        why += (why.empty() ? "" : ", ") + i.checks[k];
      return what + " burning its error budget " + buf + (why.empty() ? "" : " (" + why + ")") +
             (i.failure_types.empty() ? "" : ": " + types_of(i.failure_types)) +
             (i.asns.empty() ? "" : " from " + networks(i));
    }
    case Kind::vantage_point_silent: {
      const std::string probe = i.probes.empty() ? i.key.scope : i.probes.front();
      std::string where = networks(i);
      if (i.asns.empty()) where.clear();
      if (!i.regions.empty()) where += (where.empty() ? "" : ", ") + i.regions.front();
      return "vantage point " + probe + (where.empty() ? "" : " (" + where + ")") +
             " silent: no heartbeat since " + utc_second(i.last_heartbeat_ns) +
             " (expected every " +
             format_duration(std::chrono::nanoseconds(i.heartbeat_interval_ns)) + ")";
    }
    default: {
      std::string what(kind_name(i.key.kind).substr(4));
      std::replace(what.begin(), what.end(), '_', ' ');
      return what + " of " + join(i.prefixes) +
             (i.asns.empty() ? "" : " (" + join_asns(i.asns) + ")") +
             " seen in BGP; no vantage point lost reachability";
    }
  }
}

std::string incident_summary(const Incident& i) {
  std::string s;
  if (i.key.kind == Kind::vantage_point_silent) {
    return "last heartbeat " + utc_second(i.last_heartbeat_ns) + ", expected every " +
           format_duration(std::chrono::nanoseconds(i.heartbeat_interval_ns)) +
           "; its results are no evidence for other incidents while it is silent";
  }
  if (i.vantage_points > 0) {
    s = "from " + std::to_string(i.failing_vantage_points) + " of " +
        std::to_string(i.vantage_points) + " vantage points";
  }
  if (!i.asns.empty()) s += (s.empty() ? "" : " ") + std::string("in ") + join_asns(i.asns);
  if (!i.failure_types.empty()) s += (s.empty() ? "" : "; ") + types_of(i.failure_types);
  double users = 0;
  for (const auto& [t, n] : i.browser_reports) users += n;
  if (users > 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0f users' reports (", users);
    s += (s.empty() ? "" : "; ") + std::string(buf) + types_of(i.browser_reports) + ")";
  }
  if (!i.bgp_alerts.empty())
    s += (s.empty() ? "" : "; ") + std::string("BGP: ") + join(i.bgp_alerts);
  return s;
}

void IncidentTracker::update(std::int64_t t, const Findings& findings,
                             std::vector<IncidentEvent>& events, std::vector<Incident>& resolved) {
  const std::size_t first_event = events.size();
  for (const auto& [key, f] : findings) {
    if (f.ended_ns) {  // over, at a time the detector knows: resolved at once, then
      const auto it = state_.find(key);
      if (it != state_.end() && it->second.open) {
        Incident& inc = it->second.incident;
        inc.status = Status::resolved;
        inc.resolved_ns = f.ended_ns;
        events.push_back({f.ended_ns, Change::resolved, inc});
        resolved.push_back(inc);
      }
      if (it != state_.end()) state_.erase(it);
      continue;
    }
    State& st = state_[key];
    st.clear = 0;
    ++st.seen;
    if (!st.open) {
      if (st.seen >= open_after_ || f.immediate) {
        st.open = true;
        st.incident = f.incident;
        st.incident.key = key;
        st.incident.status = Status::open;
        st.incident.opened_severity = st.incident.severity;
        st.incident.opened_ns = f.since_ns ? f.since_ns : t;
        st.incident.resolved_ns = 0;
        st.incident.title = incident_title(st.incident);
        st.incident.summary = incident_summary(st.incident);
        events.push_back({st.incident.opened_ns, Change::opened, st.incident});
      }
      continue;
    }
    // Ongoing: widen the scope with what this evaluation saw; keep the worst figures.
    Incident& inc = st.incident;
    const Incident& now = f.incident;
    inc.status = Status::ongoing;
    for (const auto& x : now.targets) add_unique(inc.targets, x);
    for (const auto& x : now.checks) add_unique(inc.checks, x);
    for (const auto& x : now.asns) add_unique(inc.asns, x);
    for (const auto& x : now.isps) add_unique(inc.isps, x);
    for (const auto& x : now.regions) add_unique(inc.regions, x);
    for (const auto& x : now.countries) add_unique(inc.countries, x);
    for (const auto& x : now.endpoints) add_unique(inc.endpoints, x);
    for (const auto& x : now.prefixes) add_unique(inc.prefixes, x);
    for (const auto& x : now.statuses) add_unique(inc.statuses, x);
    for (const auto& x : now.probes) add_unique(inc.probes, x);
    std::sort(inc.statuses.begin(), inc.statuses.end());
    for (const auto& [k, v] : now.failure_types)
      inc.failure_types[k] = std::max(inc.failure_types[k], v);
    for (const auto& [k, v] : now.browser_reports)
      inc.browser_reports[k] = std::max(inc.browser_reports[k], v);
    for (const auto& x : now.bgp_alerts) add_unique(inc.bgp_alerts, x);
    inc.failing_vantage_points = std::max(inc.failing_vantage_points, now.failing_vantage_points);
    inc.vantage_points = std::max(inc.vantage_points, now.vantage_points);
    inc.networks = std::max(inc.networks, now.networks);
    inc.users = std::max(inc.users, now.users);
    inc.value = std::max(inc.value, now.value);
    if (now.baseline > 0 && inc.baseline <= 0) inc.baseline = now.baseline;
    inc.p95_ms = std::max(inc.p95_ms, now.p95_ms);
    inc.p99_ms = std::max(inc.p99_ms, now.p99_ms);
    inc.summary = incident_summary(inc);
    if (now.severity > inc.severity) {
      inc.severity = now.severity;
      events.push_back({t, Change::escalated, inc});
    }
  }
  // The BGP alerts an open (or now opening) incident carries are its evidence for good.
  for (const auto& [key, f] : findings) {
    const auto it = state_.find(key);
    if (it != state_.end() && it->second.open) claimed_.insert(f.claims.begin(), f.claims.end());
  }
  for (auto it = state_.begin(); it != state_.end();) {
    State& st = it->second;
    if (const auto f = findings.find(it->first); f != findings.end() && !f->second.ended_ns) {
      ++it;
      continue;
    }
    st.seen = 0;
    if (!st.open) {
      it = state_.erase(it);
      continue;
    }
    if (++st.clear >= resolve_after_) {
      st.incident.status = Status::resolved;
      st.incident.resolved_ns = t;
      events.push_back({t, Change::resolved, st.incident});
      resolved.push_back(st.incident);
      it = state_.erase(it);
      continue;
    }
    ++it;
  }
  // In time order: a silence opens or ends between two evaluations, before the others' changes.
  std::stable_sort(
      events.begin() + static_cast<std::ptrdiff_t>(first_event), events.end(),
      [](const IncidentEvent& a, const IncidentEvent& b) { return a.time_ns < b.time_ns; });
}

std::map<IncidentKey, Incident> IncidentTracker::open_by_key() const {
  std::map<IncidentKey, Incident> out;
  for (const auto& [key, st] : state_) {
    if (st.open) out.emplace(key, st.incident);
  }
  return out;
}

std::vector<Incident> IncidentTracker::open_incidents() const {
  std::vector<Incident> out;
  for (const auto& [key, st] : state_) {
    if (st.open) out.push_back(st.incident);
  }
  return out;
}

}  // namespace vantage::analysis
