#include "analysis/report/isp_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/time.hpp"

namespace vantage::analysis {
namespace {

constexpr double kMinMs = 0.1;
constexpr double kGrowth = 1.05;
const double kLogGrowth = std::log(kGrowth);
constexpr std::size_t kBuckets = 330;  // 0.1 ms · 1.05^330 ≈ 1,000 s

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string utc(std::int64_t ns) { return format_rfc3339(from_unix_nanos(ns)).substr(0, 16) + "Z"; }

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

constexpr const char* kUnknownNetwork = "unknown network";

// Most frequent first (ties by name, so that the output is stable).
std::vector<std::pair<std::string, double>> ranked(const std::map<std::string, double>& m) {
  std::vector<std::pair<std::string, double>> v(m.begin(), m.end());
  std::stable_sort(v.begin(), v.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return v;
}

std::vector<std::pair<std::string, double>> top(const std::map<std::string, double>& m,
                                                std::size_t n) {
  auto v = ranked(m);
  if (v.size() > n) v.resize(n);
  return v;
}

// Terminal columns of UTF-8 text: one per code point (the report's non-ASCII characters, "×"
// and "–", are one column wide).
std::size_t columns(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// The first `width` columns of `s`, cut between code points (GeoIP names are not all ASCII).
std::string clip(const std::string& s, std::size_t width) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && n++ == width) return s.substr(0, i);
  }
  return s;
}

std::string pad(std::string s, std::size_t width) {
  const std::size_t n = columns(s);
  if (n < width) s.append(width - n, ' ');
  return s;
}

// "tcp.timed_out ×61627, http.error 502 ×796 +3 more": as many whole entries as fit in `width`
// columns, the rest counted — a failure type is never cut (the first entry is shown whole even
// when it alone is wider).
std::string fit_list(const std::vector<std::pair<std::string, double>>& items, std::size_t width) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const std::string entry = items[i].first + " ×" + fmt("%.0f", items[i].second);
    const std::string with = out.empty() ? entry : out + ", " + entry;
    const std::size_t left = items.size() - i - 1;
    const std::string more = left ? " +" + std::to_string(left) + " more" : "";
    if (!out.empty() && columns(with) + columns(more) > width) {
      return out + " +" + std::to_string(items.size() - i) + " more";
    }
    out = with;
  }
  return out;
}

bool has_url(const ProbeResultRow& r) {
  return (r.check_kind == "http" || r.check_kind == "journey") && !r.target.empty();
}

// Where a probe run's latency and availability are counted: an http check's or a journey's URL;
// for the other kinds the check id, kind and host name — "expired-cert (tls expired.example.com)"
// — (a tls or tcp check's URL-less target is an address, which names nothing, and a run that
// failed before connecting has none).
std::string target_key(const ProbeResultRow& r) {
  if (has_url(r)) return r.target;
  std::string what = r.check_kind;
  if (!r.host.empty()) what += (what.empty() ? "" : " ") + r.host;
  return what.empty() ? r.check : r.check + " (" + what + ")";
}

// A probe run's failure type as the report shows it: with the status code for HTTP errors, as
// for browsers' NEL reports ("http.error 403").
std::string failure_key(const ProbeResultRow& r) {
  if (r.outcome == "http.error" && r.status_code.value_or(0) > 0) {
    return r.outcome + " " + std::to_string(*r.status_code);
  }
  return r.outcome;
}

bool touches(const Incident& i, std::uint32_t asn) {
  return std::find(i.asns.begin(), i.asns.end(), asn) != i.asns.end();
}

}  // namespace

void LatencyHistogram::add(double ms) {
  if (buckets_.empty()) buckets_.assign(kBuckets, 0);
  std::size_t b = 0;
  if (ms > kMinMs)
    b = static_cast<std::size_t>(
        std::min(static_cast<double>(kBuckets - 1), std::log(ms / kMinMs) / kLogGrowth));
  ++buckets_[b];
  ++count_;
}

double LatencyHistogram::quantile(double q) const {
  if (!count_) return 0;
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  std::uint64_t seen = 0;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    seen += buckets_[b];
    if (seen >= rank)
      return kMinMs * std::pow(kGrowth, static_cast<double>(b) + 0.5);  // bucket middle
  }
  return kMinMs * std::pow(kGrowth, static_cast<double>(kBuckets));
}

double IspStats::availability() const {
  std::uint64_t runs = 0, ok = 0;
  for (const auto& [t, s] : targets) {
    runs += s.runs;
    ok += s.ok;
  }
  return runs ? static_cast<double>(ok) / static_cast<double>(runs) : 1.0;
}

std::string IspStats::label() const {
  if (asn == 0) return isp.empty() ? kUnknownNetwork : isp;
  return "AS" + std::to_string(asn) + (isp.empty() ? "" : " " + isp);
}

double IspStats::browser_availability() const {
  return browser_total > 0 ? browser_ok / browser_total : 1.0;
}

IspReport build_isp_report(EventStore& store, std::int64_t from_ns, std::int64_t to_ns,
                           const AnalyzerOptions& options) {
  IspReport report;
  report.from_ns = from_ns;
  report.to_ns = to_ns;
  // About 48 points on the availability chart, in whole minutes.
  report.bucket_ns = std::max<std::int64_t>(
      60'000'000'000, (to_ns - from_ns) / 48 / 60'000'000'000 * 60'000'000'000);
  std::map<std::uint32_t, IspStats> by_asn;
  // One pass: the detectors and the report see the same rows.
  auto on_result = [&](const ProbeResultRow& r) {
    IspStats& s = by_asn[r.asn];
    s.asn = r.asn;
    if (s.isp.empty()) s.isp = r.isp;
    if (s.country.empty()) s.country = r.country;
    if (std::find(s.vantage_points.begin(), s.vantage_points.end(), r.probe_id) ==
        s.vantage_points.end()) {
      s.vantage_points.push_back(r.probe_id);
    }
    // A URL target is looked up without building a key (most runs are http checks and journeys).
    TargetStats& t = has_url(r) ? s.targets[r.target] : s.targets[target_key(r)];
    if (t.check.empty()) {
      t.check = r.check;
      t.kind = r.check_kind;
    }
    ++t.runs;
    const bool ok = r.outcome == "ok";
    t.ok += ok;
    if (ok) {
      t.latency.add(r.total_ms);
    } else {
      const std::string failure = failure_key(r);
      s.failure_types[failure] += 1;
      t.failure_types[failure] += 1;
    }
    auto& point = s.series[from_ns + (r.time_ns - from_ns) / report.bucket_ns * report.bucket_ns];
    point.first += 1;
    point.second += ok;
  };
  auto on_report = [&](const BrowserReportRow& r) {
    if (r.type != "network-error") return;
    IspStats& s = by_asn[r.asn];
    s.asn = r.asn;
    if (s.isp.empty()) s.isp = r.isp;
    if (s.country.empty()) s.country = r.country;
    s.browser_total += r.weight;
    if (r.nel_type == "ok") {
      s.browser_ok += r.weight;
    } else {
      s.browser_failures[r.nel_type + (r.status_code.value_or(0) > 0
                                           ? " " + std::to_string(*r.status_code)
                                           : "")] += r.weight;
    }
  };
  report.analysis = analyze(store, from_ns, to_ns, options, on_result, on_report);
  for (auto& [asn, s] : by_asn) {
    if (asn == 0 && s.isp.empty()) s.isp = kUnknownNetwork;
    for (const auto& i : report.analysis.incidents) {
      if (asn != 0 && touches(i, asn)) s.incidents.push_back(&i);
    }
    report.isps.push_back(std::move(s));
  }
  // The unknown network (ASN 0: users GeoIP could not place) last, after the named ones.
  std::stable_partition(report.isps.begin(), report.isps.end(),
                        [](const IspStats& s) { return s.asn != 0; });
  return report;
}

std::string render_isp_text(const IspReport& r) {
  std::string out = "Per-ISP reachability, " + utc(r.from_ns) + " to " + utc(r.to_ns) + "\n\n";
  constexpr std::size_t kFailureColumns = 44;
  char line[512];
  std::snprintf(line, sizeof line, "%-8s %-18s %-3s %9s %9s  ", "ASN", "ISP", "cc", "probes",
                "users");
  out += line + pad("top failures", kFailureColumns) + " incidents\n";
  for (const auto& s : r.isps) {
    std::map<std::string, double> all = s.failure_types;
    for (const auto& [k, v] : s.browser_failures) all[k] += v;
    const std::string failures = fit_list(ranked(all), kFailureColumns);
    std::string incidents;
    for (const auto* i : s.incidents)
      incidents += (incidents.empty() ? "" : ", ") + std::string(kind_name(i->key.kind));
    const std::string probes = s.targets.empty() ? "-" : fmt("%.2f%%", 100 * s.availability());
    const std::string users =
        s.browser_total > 0 ? fmt("%.2f%%", 100 * s.browser_availability()) : "-";
    const std::string asn = s.asn ? "AS" + std::to_string(s.asn) : "-";
    std::snprintf(line, sizeof line, "%-8s %s %-3s %9s %9s  ", asn.c_str(),
                  pad(clip(s.isp, 18), 18).c_str(), s.country.empty() ? "-" : s.country.c_str(),
                  probes.c_str(), users.c_str());
    out += line + pad(failures.empty() ? "-" : failures, kFailureColumns) + " " +
           (incidents.empty() ? "-" : incidents) + "\n";
  }
  out +=
      "\n(probes: share of probe runs that passed; users: weighted share of NEL reports that "
      "succeeded;"
      "\n failures: probe runs and weighted NEL reports, ×count)\n\n";
  out +=
      "Latency per ISP and target (probe runs; p50/p95 of the runs that passed, ms; then the "
      "failed runs by type)\n";
  for (const auto& s : r.isps) {
    for (const auto& [target, t] : s.targets) {
      const std::string asn = s.asn ? "AS" + std::to_string(s.asn) : "-";
      const std::string p50 = t.latency.count() ? fmt("%7.0f", t.latency.quantile(0.5)) : "      -";
      const std::string p95 =
          t.latency.count() ? fmt("%7.0f", t.latency.quantile(0.95)) : "      -";
      std::snprintf(line, sizeof line, "  %-8s %-40s runs %6llu  ok %7.2f%%  p50 %s  p95 %s",
                    asn.c_str(), target.c_str(), static_cast<unsigned long long>(t.runs),
                    100.0 * static_cast<double>(t.ok) /
                        static_cast<double>(std::max<std::uint64_t>(1, t.runs)),
                    p50.c_str(), p95.c_str());
      out += line;
      if (!t.failure_types.empty()) out += "  " + fit_list(ranked(t.failure_types), 40);
      out += "\n";
    }
  }
  if (!r.analysis.incidents.empty()) {
    out += "\nIncidents\n";
    for (const auto& i : r.analysis.incidents) {
      out += "  " + utc(i.opened_ns) + " – " +
             (i.resolved_ns ? utc(i.resolved_ns) : std::string("open")) + "  " +
             std::string(severity_name(i.severity)) + "  " + std::string(kind_name(i.key.kind)) +
             ": " + i.title + "\n";
    }
  }
  return out;
}

std::string render_isp_json(const IspReport& r) {
  nlohmann::json isps = nlohmann::json::array();
  for (const auto& s : r.isps) {
    nlohmann::json targets = nlohmann::json::object();
    for (const auto& [name, t] : s.targets) {
      const bool passed = t.latency.count() > 0;  // percentiles of the runs that passed
      targets[name] = {
          {"check", t.check},
          {"kind", t.kind},
          {"runs", t.runs},
          {"ok", t.ok},
          {"availability", t.runs ? static_cast<double>(t.ok) / static_cast<double>(t.runs) : 1.0},
          {"p50_ms", passed ? nlohmann::json(t.latency.quantile(0.5)) : nlohmann::json()},
          {"p95_ms", passed ? nlohmann::json(t.latency.quantile(0.95)) : nlohmann::json()},
          {"failure_types", t.failure_types}};
    }
    nlohmann::json series = nlohmann::json::array();
    for (const auto& [t, p] : s.series) {
      series.push_back(
          {{"time", format_rfc3339(from_unix_nanos(t))}, {"runs", p.first}, {"ok", p.second}});
    }
    nlohmann::json incidents = nlohmann::json::array();
    for (const auto* i : s.incidents) incidents.push_back(i->id());
    isps.push_back(
        {{"asn", s.asn},
         {"isp", s.isp},
         {"country", s.country},
         {"vantage_points", s.vantage_points},
         {"availability", s.targets.empty() ? nlohmann::json() : nlohmann::json(s.availability())},
         {"browser_availability",
          s.browser_total > 0 ? nlohmann::json(s.browser_availability()) : nlohmann::json()},
         {"browser_reports", s.browser_total},
         {"failure_types", s.failure_types},
         {"browser_failures", s.browser_failures},
         {"targets", targets},
         {"series", series},
         {"incidents", incidents}});
  }
  nlohmann::json incidents = nlohmann::json::array();
  for (const auto& i : r.analysis.incidents)
    incidents.push_back(nlohmann::json::parse(incident_json(i)));
  nlohmann::json j{{"from", format_rfc3339(from_unix_nanos(r.from_ns))},
                   {"to", format_rfc3339(from_unix_nanos(r.to_ns))},
                   {"isps", isps},
                   {"incidents", incidents}};
  return j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string render_isp_html(const IspReport& r) {
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                  "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  std::string h = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Vantage: per-ISP reachability</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 24px}
th,td{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00020;font-weight:600}
.sev-page{color:#b00020}.sev-ticket{color:#b26a00}
svg text{font:11px system-ui,sans-serif}
.f{white-space:nowrap}
</style></head><body>
)";
  h += "<h1>Per-ISP reachability</h1>\n<p>" + html_escape(utc(r.from_ns)) + " to " +
       html_escape(utc(r.to_ns)) + " · " + std::to_string(r.analysis.results) + " probe results, " +
       std::to_string(r.analysis.reports) + " browser reports</p>\n";
  // Summary table.
  h += "<h2>ISPs</h2>\n<table id=\"isps\"><tr><th>ASN</th><th>ISP</th><th>country</th><th>probe "
       "availability</th>"
       "<th>user availability (NEL)</th><th>top failure types</th><th>incidents</th></tr>\n";
  for (const auto& s : r.isps) {
    std::map<std::string, double> all = s.failure_types;
    for (const auto& [k, v] : s.browser_failures) all[k] += v;
    std::string failures;
    for (const auto& [k, v] : top(all, 3))
      failures += std::string(failures.empty() ? "" : ", ") + "<span class=\"f\">" +
                  html_escape(k) + " ×" + fmt("%.0f", v) +
                  "</span>";  // one failure type never wraps
    if (all.size() > 3) failures += " +" + std::to_string(all.size() - 3) + " more";
    std::string incidents;
    for (const auto* i : s.incidents) {
      incidents += (incidents.empty() ? "" : "<br>") + std::string("<span class=\"sev-") +
                   std::string(severity_name(i->severity)) + "\">" +
                   html_escape(std::string(kind_name(i->key.kind))) + "</span>";
    }
    const bool bad = s.availability() < 0.99;
    h += "<tr class=\"isp\" data-asn=\"" + std::to_string(s.asn) + "\"><td>" +
         (s.asn ? "AS" + std::to_string(s.asn) : std::string("–")) + "</td><td>" +
         html_escape(s.isp) + "</td><td>" + html_escape(s.country) + "</td><td class=\"n" +
         (bad ? " bad" : "") + "\">" +
         (s.targets.empty() ? std::string("–") : fmt("%.2f%%", 100 * s.availability())) +
         "</td><td class=\"n\">" +
         (s.browser_total > 0 ? fmt("%.2f%%", 100 * s.browser_availability()) : std::string("–")) +
         "</td><td>" + failures + "</td><td>" + (incidents.empty() ? "–" : incidents) +
         "</td></tr>\n";
  }
  h += "</table>\n";
  // Availability over time: one line per ISP.
  const int W = 900, H = 260, L = 50, B = 30, T = 10;
  const double span = static_cast<double>(std::max<std::int64_t>(1, r.to_ns - r.from_ns));
  auto x = [&](std::int64_t t) {
    return L + (W - L - 10) * static_cast<double>(t - r.from_ns) / span;
  };
  double lo = 1.0;
  for (const auto& s : r.isps) {
    for (const auto& [t, p] : s.series) lo = std::min(lo, p.first > 0 ? p.second / p.first : 1.0);
  }
  lo = std::max(0.0, std::floor(lo * 10) / 10 - 0.0001);
  auto y = [&](double a) { return T + (H - T - B) * (1 - (a - lo) / std::max(1e-9, 1 - lo)); };
  h += "<h2>Probe availability over time</h2>\n<svg id=\"availability\" width=\"" +
       std::to_string(W) + "\" height=\"" +
       std::to_string(H + 20 * static_cast<int>((r.isps.size() + 3) / 4)) + "\" role=\"img\">\n";
  for (double a : {lo, (lo + 1) / 2, 1.0}) {
    h += "<line x1=\"" + std::to_string(L) + "\" x2=\"" + std::to_string(W - 10) + "\" y1=\"" +
         fmt("%.1f", y(a)) + "\" y2=\"" + fmt("%.1f", y(a)) +
         "\" stroke=\"#ddd\"/><text x=\"2\" y=\"" + fmt("%.1f", y(a) + 4) + "\">" +
         fmt("%.0f%%", 100 * a) + "</text>\n";
  }
  h += "<text x=\"" + std::to_string(L) + "\" y=\"" + std::to_string(H - 8) + "\">" +
       html_escape(utc(r.from_ns)) + "</text><text x=\"" + std::to_string(W - 130) + "\" y=\"" +
       std::to_string(H - 8) + "\">" + html_escape(utc(r.to_ns)) + "</text>\n";
  for (std::size_t i = 0; i < r.isps.size(); ++i) {
    const auto& s = r.isps[i];
    if (s.series.empty()) continue;
    const char* color = kColors[i % 8];
    // One line per run of consecutive buckets: a bucket without probe runs (a silence: the
    // vantage points stopped reporting) breaks the line instead of bridging it; a lone bucket
    // is a dot.
    std::string points;
    std::size_t count = 0;
    double last_x = 0, last_y = 0;
    auto flush = [&] {
      if (count == 1) {
        h += "<circle class=\"point\" cx=\"" + fmt("%.1f", last_x) + "\" cy=\"" +
             fmt("%.1f", last_y) + "\" r=\"2\" fill=\"" + color + "\"/>\n";
      } else if (count > 1) {
        h += std::string("<polyline fill=\"none\" stroke=\"") + color +
             "\" stroke-width=\"2\" points=\"" + points + "\"/>\n";
      }
      points.clear();
      count = 0;
    };
    std::int64_t previous = 0;
    for (const auto& [t, p] : s.series) {
      if (count > 0 && t - previous > r.bucket_ns) flush();
      last_x = x(t + r.bucket_ns / 2);
      last_y = y(p.first > 0 ? p.second / p.first : 1.0);
      points += fmt("%.1f", last_x) + "," + fmt("%.1f", last_y) + " ";
      ++count;
      previous = t;
    }
    flush();
    const int lx = L + static_cast<int>(i % 4) * 210, ly = H + 12 + 20 * static_cast<int>(i / 4);
    h += "<rect x=\"" + std::to_string(lx) + "\" y=\"" + std::to_string(ly - 9) +
         "\" width=\"12\" height=\"3\" fill=\"" + color + "\"/><text x=\"" +
         std::to_string(lx + 16) + "\" y=\"" + std::to_string(ly) + "\">" + html_escape(s.label()) +
         "</text>\n";
  }
  h += "</svg>\n";
  // Failure types per ISP: horizontal bars (probe results and weighted NEL reports).
  h += "<h2>Failure types</h2>\n";
  double max_failures = 1;
  for (const auto& s : r.isps) {
    for (const auto& [k, v] : s.failure_types) max_failures = std::max(max_failures, v);
    for (const auto& [k, v] : s.browser_failures) max_failures = std::max(max_failures, v);
  }
  for (const auto& s : r.isps) {
    std::vector<std::pair<std::string, double>> rows;
    for (const auto& [k, v] : top(s.failure_types, 4)) rows.push_back({"probes: " + k, v});
    for (const auto& [k, v] : top(s.browser_failures, 4)) rows.push_back({"users: " + k, v});
    if (rows.empty()) continue;
    h += "<h3>" + html_escape(s.label()) +
         "</h3>\n<svg class=\"failures\" width=\"700\" height=\"" +
         std::to_string(18 * rows.size() + 4) + "\">\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const double w = 380 * std::log1p(rows[i].second) / std::log1p(max_failures);
      h += "<text x=\"0\" y=\"" + std::to_string(18 * i + 13) + "\">" + html_escape(rows[i].first) +
           "</text><rect x=\"260\" y=\"" + std::to_string(18 * i + 3) + "\" width=\"" +
           fmt("%.1f", std::max(1.0, w)) + "\" height=\"12\" fill=\"#d62728\"/><text x=\"" +
           fmt("%.1f", 266 + w) + "\" y=\"" + std::to_string(18 * i + 13) + "\">" +
           fmt("%.0f", rows[i].second) + "</text>\n";
    }
    h += "</svg>\n";
  }
  // Latency: per target, one bar pair per ISP (p50 light, p95 dark), on a log scale.
  {
    std::map<std::string, std::vector<std::pair<const IspStats*, const TargetStats*>>> by_target;
    double max_ms = 1;
    for (const auto& s : r.isps) {
      for (const auto& [target, t] : s.targets) {
        by_target[target].push_back({&s, &t});
        max_ms = std::max(max_ms, t.latency.quantile(0.95));
      }
    }
    h += "<h2>Latency per ISP (probe runs that passed: p50 light, p95 dark)</h2>\n";
    auto bar = [&](double ms) { return 420 * std::log1p(ms) / std::log1p(max_ms); };
    for (const auto& [target, rows] : by_target) {
      h += "<h3>" + html_escape(target) + "</h3>\n<svg class=\"latency\" width=\"760\" height=\"" +
           std::to_string(22 * rows.size() + 4) + "\">\n";
      for (std::size_t i = 0; i < rows.size(); ++i) {
        const double p50 = rows[i].second->latency.quantile(0.5),
                     p95 = rows[i].second->latency.quantile(0.95);
        const std::string top_y = std::to_string(22 * i + 3);
        const std::string name = "<text x=\"0\" y=\"" + std::to_string(22 * i + 15) + "\">" +
                                 html_escape(rows[i].first->label()) + "</text>";
        if (rows[i].second->latency.count() == 0) {
          h += name + "<text x=\"200\" y=\"" + std::to_string(22 * i + 15) +
               "\">no run passed</text>\n";
          continue;
        }
        h += name + "<rect x=\"200\" y=\"" + top_y + "\" width=\"" +
             fmt("%.1f", std::max(1.0, bar(p95))) +
             "\" height=\"16\" fill=\"#1f4e79\"/><rect x=\"200\" y=\"" + top_y + "\" width=\"" +
             fmt("%.1f", std::max(1.0, bar(p50))) +
             "\" height=\"16\" fill=\"#9ecae1\"/><text x=\"" + fmt("%.1f", 206 + bar(p95)) +
             "\" y=\"" + std::to_string(22 * i + 15) + "\">" + fmt("%.0f", p50) + " / " +
             fmt("%.0f", p95) + " ms</text>\n";
      }
      h += "</svg>\n";
    }
  }
  // Latency table.
  h += "<h2>Latency per ISP and target (probe runs; percentiles of the runs that "
       "passed)</h2>\n<table id=\"latency\">"
       "<tr><th>ASN</th><th>target</th><th>runs</th><th>ok</th><th>p50 ms (passed)</th><th>p95 ms "
       "(passed)</th><th>failed runs</th></tr>\n";
  for (const auto& s : r.isps) {
    for (const auto& [target, t] : s.targets) {
      const bool passed = t.latency.count() > 0;
      h += "<tr><td>" + (s.asn ? "AS" + std::to_string(s.asn) : std::string("–")) + "</td><td>" +
           html_escape(target) + "</td><td class=\"n\">" + std::to_string(t.runs) +
           "</td><td class=\"n\">" +
           fmt("%.2f%%", 100.0 * static_cast<double>(t.ok) /
                             static_cast<double>(std::max<std::uint64_t>(1, t.runs))) +
           "</td><td class=\"n\">" +
           (passed ? fmt("%.0f", t.latency.quantile(0.5)) : std::string("–")) +
           "</td><td class=\"n\">" +
           (passed ? fmt("%.0f", t.latency.quantile(0.95)) : std::string("–")) + "</td><td>" +
           (t.failure_types.empty() ? std::string("–")
                                    : html_escape(fit_list(ranked(t.failure_types), 80))) +
           "</td></tr>\n";
    }
  }
  h += "</table>\n<h2>Incidents</h2>\n<table "
       "id=\"incidents\"><tr><th>opened</th><th>resolved</th><th>severity</th><th>kind</th>"
       "<th>what</th><th>runbook</th></tr>\n";
  for (const auto& i : r.analysis.incidents) {
    h += "<tr><td>" + html_escape(utc(i.opened_ns)) + "</td><td>" +
         (i.resolved_ns ? html_escape(utc(i.resolved_ns)) : "open") + "</td><td class=\"sev-" +
         std::string(severity_name(i.severity)) + "\">" + std::string(severity_name(i.severity)) +
         "</td><td>" + html_escape(std::string(kind_name(i.key.kind))) + "</td><td>" +
         html_escape(i.title) + "</td><td>" + html_escape(i.runbook()) + "</td></tr>\n";
  }
  if (r.analysis.incidents.empty()) h += "<tr><td colspan=\"6\">none</td></tr>\n";
  h += "</table>\n<p>Made by <code>vantage report isp</code>.</p>\n</body></html>\n";
  return h;
}

}  // namespace vantage::analysis
