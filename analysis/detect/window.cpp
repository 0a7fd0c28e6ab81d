#include "analysis/detect/window.hpp"

#include <algorithm>

namespace vantage::analysis {

void RunCounts::merge(const RunCounts& b) {
  total += b.total;
  failed += b.failed;
  slow += b.slow;
  for (const auto& [t, n] : b.types) types[t] += n;
  failed_ips.insert(b.failed_ips.begin(), b.failed_ips.end());
  ok_ips.insert(b.ok_ips.begin(), b.ok_ips.end());
  first_fail_ns = std::min(first_fail_ns, b.first_fail_ns);
  last_ok_ns = std::max(last_ok_ns, b.last_ok_ns);
  last_fail_ns = std::max(last_fail_ns, b.last_fail_ns);
  first_bad_end_ns = std::min(first_bad_end_ns, b.first_bad_end_ns);
  for (const auto& [k, n] : b.http_errors) http_errors[k] += n;
  failed_steps.insert(b.failed_steps.begin(), b.failed_steps.end());
  ok_ms.insert(ok_ms.end(), b.ok_ms.begin(), b.ok_ms.end());
}

void SpikeCounts::merge(const SpikeCounts& b) {
  n += b.n;
  x4 += b.x4;
  x5 += b.x5;
  asns4.insert(b.asns4.begin(), b.asns4.end());
  asns5.insert(b.asns5.begin(), b.asns5.end());
  statuses4.insert(b.statuses4.begin(), b.statuses4.end());
  statuses5.insert(b.statuses5.begin(), b.statuses5.end());
}

void SloCounts::merge(const SloCounts& b) {
  total += b.total;
  bad += b.bad;
  ms.insert(ms.end(), b.ms.begin(), b.ms.end());
}

std::string path_of(const std::string& url) {
  const auto scheme = url.find("://");
  const auto start = scheme == std::string::npos ? 0 : url.find('/', scheme + 3);
  if (start == std::string::npos) return "/";
  const auto end = url.find_first_of("?#", start);
  std::string path = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  return path.empty() ? "/" : path;
}

Window::Window(const AnalyzerOptions& options, std::int64_t from_ns, std::int64_t to_ns)
    : o_(options), from_(from_ns), to_(to_ns) {}

void Window::add(const ProbeResultRow& r) {
  if (!heartbeats.empty() && in_silence(r.probe_id, r.time_ns)) {
    const auto& hb = heartbeats.at(r.probe_id);
    const auto next =
        std::lower_bound(hb.begin(), hb.end(), r.time_ns,
                         [](const Heartbeat& h, std::int64_t x) { return h.received_ns < x; });
    const std::int64_t interval = std::prev(next)->interval_ns;  // in_silence: one before t
    const bool live = r.received_ns > 0 && r.received_ns - r.time_ns < kSilentIntervals * interval;
    if (!live) {
      ++silent_runs;
      return;
    }
    auto& live_times = live_in_silence[r.probe_id];
    live_times.insert(std::upper_bound(live_times.begin(), live_times.end(), r.time_ns), r.time_ns);
  }
  const int m = step_of(r.time_ns);
  first_step_ = std::min(first_step_, m);
  auto& vp = vantage_points[r.probe_id];
  vp.id = r.probe_id;
  vp.asn = r.asn;
  vp.isp = r.isp;
  vp.region = r.region;
  vp.country = r.country;
  CheckInfo& check = checks[r.check];
  check.kind = r.check_kind;
  check.target = r.target;
  if (!r.host.empty()) check.host = r.host;
  const bool dns = r.check_kind == "dns";
  // A dns check with several resolvers gives one result per resolver per run: each resolver is a
  // vantage point of its own.
  const std::string key = dns ? r.probe_id + '\0' + r.server_ip : r.probe_id;
  RunCounts& c = runs[{r.check, key}][m];
  ++c.total;
  if (r.outcome != "ok" || r.total_ms > o_.latency_ms) {
    c.first_bad_end_ns = std::min(
        c.first_bad_end_ns, r.time_ns + static_cast<std::int64_t>(std::max(0.0, r.total_ms) * 1e6));
  }
  if (r.outcome != "ok") {
    ++c.failed;
    ++c.types[r.outcome];
    c.first_fail_ns = std::min(c.first_fail_ns, r.time_ns);
    c.last_fail_ns = std::max(c.last_fail_ns, r.time_ns);
    if (!dns && !r.server_ip.empty()) c.failed_ips.insert(r.server_ip);
    if (r.outcome == "http.error" && r.status_code && *r.status_code >= 400) {
      ++c.http_errors[{*r.status_code, path_of(r.failed_url.empty() ? r.target : r.failed_url)}];
    }
    if (!r.step.empty()) c.failed_steps.insert(r.step);
  } else {
    c.last_ok_ns = std::max(c.last_ok_ns, r.time_ns);
    if (!dns && !r.server_ip.empty()) c.ok_ips.insert(r.server_ip);
    if (r.total_ms > o_.latency_ms) ++c.slow;
    c.ok_ms.push_back(static_cast<float>(r.total_ms));
  }
  if (dns) resolver[{r.check, key}] = r.server_ip;
  if (!dns && !r.server_ip.empty()) server_ip[{r.check, r.probe_id}] = r.server_ip;
  target[{r.check, r.probe_id}] = r.target;
  if (r.check_kind == "journey" || r.check_kind == "http") {
    SloCounts& s = slo[{r.check, r.probe_id}][m];
    ++s.total;
    if (r.outcome != "ok" || r.total_ms > o_.latency_ms) ++s.bad;
    s.ms.push_back(static_cast<float>(r.total_ms));
  }
}

void Window::add(const BrowserReportRow& r) {
  const int m = step_of(r.time_ns);
  first_step_ = std::min(first_step_, m);
  if (r.asn) {
    auto& names = asn_names[r.asn];
    if (names.first.empty()) names = {r.isp, r.country};
  }
  if (r.type != "network-error") {
    if (r.type == "http_error") nel[r.asn][m]["agent http_error"] += r.weight;
    return;
  }
  nel[r.asn][m][r.nel_type] += r.weight;
  // Per endpoint × country: the requests that got an HTTP answer (NEL "ok" and "http.error";
  // weighted: successes are sampled) and the error reports (counted: failures are reported at
  // failure_fraction, normally 1).
  if (r.nel_type != "ok" && r.nel_type != "http.error") return;
  SpikeCounts& k = spike_counts(r.url, r.country)[m];
  k.n += r.weight;
  if (r.nel_type == "http.error" && r.status_code && *r.status_code >= 400) {
    (*r.status_code < 500 ? k.x4 : k.x5) += 1;
    (*r.status_code < 500 ? k.asns4 : k.asns5).insert(r.asn);
    (*r.status_code < 500 ? k.statuses4 : k.statuses5).insert(*r.status_code);
  }
}

void Window::add(const BgpAlertRow& a) {
  auto& spans = bgp_spans[a.alert_key];
  constexpr auto kOpen = std::numeric_limits<std::int64_t>::max();
  if (a.status == "open") {
    if (!spans.empty() && spans.back().to == kOpen) return;  // already open
    spans.push_back({a, a.time_ns, kOpen});
  } else if (!spans.empty() && spans.back().to == kOpen) {
    spans.back().to = a.time_ns;
  } else {  // opened before what was read
    spans.push_back({a, std::numeric_limits<std::int64_t>::min(), a.time_ns});
  }
}

void Window::add(const HeartbeatRow& r) {
  heartbeats[r.probe_id].push_back(
      {r.received_ns, r.interval_ns > 0 ? r.interval_ns : kDefaultHeartbeatInterval});
  VantagePoint& vp = heartbeat_vantage_points[r.probe_id];
  vp.id = r.probe_id;
  if (r.asn) vp.asn = r.asn;
  if (!r.isp.empty()) vp.isp = r.isp;
  if (!r.region.empty()) vp.region = r.region;
  if (!r.country.empty()) vp.country = r.country;
}

std::optional<Silence> Window::silence(const std::string& probe, std::int64_t t) const {
  const auto it = heartbeats.find(probe);
  if (it == heartbeats.end()) return std::nullopt;
  const auto& hb = it->second;
  // The last heartbeat received before t.
  auto next = std::lower_bound(hb.begin(), hb.end(), t, [](const Heartbeat& h, std::int64_t x) {
    return h.received_ns < x;
  });
  if (next == hb.begin()) return std::nullopt;
  const Heartbeat& last = *std::prev(next);
  const std::int64_t since = last.received_ns + kSilentIntervals * last.interval_ns;
  if (t < since) return std::nullopt;
  return Silence{last.received_ns, since, last.interval_ns};
}

bool Window::live_between(const std::string& probe, std::int64_t after_ns,
                          std::int64_t until_ns) const {
  const auto it = live_in_silence.find(probe);
  if (it == live_in_silence.end()) return false;
  const auto first = std::upper_bound(it->second.begin(), it->second.end(), after_ns);
  return first != it->second.end() && *first <= until_ns;
}

bool Window::in_silence(const std::string& probe, std::int64_t t) const {
  const auto it = heartbeats.find(probe);
  if (it == heartbeats.end()) return false;
  const auto& hb = it->second;
  // The first heartbeat at or after t; the one before it is the last before t.
  const auto next =
      std::lower_bound(hb.begin(), hb.end(), t,
                       [](const Heartbeat& h, std::int64_t x) { return h.received_ns < x; });
  if (next == hb.begin()) return false;  // before the first heartbeat read
  const Heartbeat& last = *std::prev(next);
  const std::int64_t until = next == hb.end() ? to_ : next->received_ns;
  return until - last.received_ns >= kSilentIntervals * last.interval_ns;
}

// The per-step counts of (endpoint of `url`, country), found without building a key per row.
std::map<int, SpikeCounts>& Window::spike_counts(const std::string& url,
                                                 const std::string& country) {
  const auto scheme = url.find("://");
  const auto path = scheme == std::string::npos ? 0 : url.find('/', scheme + 3);
  key_buf_.assign(url, path == std::string::npos ? url.size() : path);
  if (path == std::string::npos) key_buf_ += '/';
  key_buf_ += '\0';
  key_buf_ += country;
  auto it = spike_index_.find(key_buf_);
  if (it != spike_index_.end()) return *it->second;
  const auto sep = key_buf_.find('\0');
  auto& counts = spikes[{key_buf_.substr(0, sep), key_buf_.substr(sep + 1)}];
  spike_index_.emplace(key_buf_, &counts);
  return counts;
}

}  // namespace vantage::analysis
