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
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<std::pair<std::string, double>> top(const std::map<std::string, double>& m, std::size_t n) {
  std::vector<std::pair<std::string, double>> v(m.begin(), m.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (v.size() > n) v.resize(n);
  return v;
}

bool touches(const Incident& i, std::uint32_t asn) {
  return std::find(i.asns.begin(), i.asns.end(), asn) != i.asns.end();
}

}  // namespace

void LatencyHistogram::add(double ms) {
  if (buckets_.empty()) buckets_.assign(kBuckets, 0);
  std::size_t b = 0;
  if (ms > kMinMs) b = static_cast<std::size_t>(std::min(static_cast<double>(kBuckets - 1), std::log(ms / kMinMs) / kLogGrowth));
  ++buckets_[b];
  ++count_;
}

double LatencyHistogram::quantile(double q) const {
  if (!count_) return 0;
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  std::uint64_t seen = 0;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    seen += buckets_[b];
    if (seen >= rank) return kMinMs * std::pow(kGrowth, static_cast<double>(b) + 0.5);  // bucket middle
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

double IspStats::browser_availability() const { return browser_total > 0 ? browser_ok / browser_total : 1.0; }

IspReport build_isp_report(EventStore& store, std::int64_t from_ns, std::int64_t to_ns, const AnalyzerOptions& options) {
  IspReport report;
  report.from_ns = from_ns;
  report.to_ns = to_ns;
  // About 48 points on the availability chart, in whole minutes.
  report.bucket_ns = std::max<std::int64_t>(60'000'000'000, (to_ns - from_ns) / 48 / 60'000'000'000 * 60'000'000'000);
  std::map<std::uint32_t, IspStats> by_asn;
  // One pass: the detectors and the report see the same rows.
  auto on_result = [&](const ProbeResultRow& r) {
    IspStats& s = by_asn[r.asn];
    s.asn = r.asn;
    if (s.isp.empty()) s.isp = r.isp;
    if (s.country.empty()) s.country = r.country;
    if (std::find(s.vantage_points.begin(), s.vantage_points.end(), r.probe_id) == s.vantage_points.end()) {
      s.vantage_points.push_back(r.probe_id);
    }
    TargetStats& t = s.targets[r.check_kind == "dns" ? r.check + " (dns)" : r.target];
    ++t.runs;
    const bool ok = r.outcome == "ok";
    t.ok += ok;
    t.latency.add(r.total_ms);
    if (!ok) s.failure_types[r.outcome] += 1;
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
      s.browser_failures[r.nel_type + (r.status_code.value_or(0) > 0 ? " " + std::to_string(*r.status_code) : "")] +=
          r.weight;
    }
  };
  report.analysis = analyze(store, from_ns, to_ns, options, on_result, on_report);
  for (auto& [asn, s] : by_asn) {
    for (const auto& i : report.analysis.incidents) {
      if (touches(i, asn)) s.incidents.push_back(&i);
    }
    report.isps.push_back(std::move(s));
  }
  return report;
}

std::string render_isp_text(const IspReport& r) {
  std::string out = "Per-ISP reachability, " + utc(r.from_ns) + " to " + utc(r.to_ns) + "\n\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-8s %-18s %-3s %9s %9s  %-36s %s\n", "ASN", "ISP", "cc", "probes", "users",
                "top failures", "incidents");
  out += line;
  for (const auto& s : r.isps) {
    std::string failures;
    std::map<std::string, double> all = s.failure_types;
    for (const auto& [k, v] : s.browser_failures) all[k] += v;
    for (const auto& [k, v] : top(all, 2)) failures += (failures.empty() ? "" : ", ") + k + " " + fmt("%.0f", v);
    std::string incidents;
    for (const auto* i : s.incidents) incidents += (incidents.empty() ? "" : ", ") + i->kind;
    const std::string probes = s.targets.empty() ? "-" : fmt("%.2f%%", 100 * s.availability());
    const std::string users = s.browser_total > 0 ? fmt("%.2f%%", 100 * s.browser_availability()) : "-";
    std::snprintf(line, sizeof line, "AS%-6u %-18.18s %-3s %9s %9s  %-36.36s %s\n", s.asn, s.isp.c_str(),
                  s.country.c_str(), probes.c_str(), users.c_str(), failures.c_str(),
                  incidents.empty() ? "-" : incidents.c_str());
    out += line;
  }
  out += "\n(probes: share of probe runs that passed; users: weighted share of NEL reports that succeeded)\n\n";
  out += "Latency per ISP and target (probe runs, ms)\n";
  for (const auto& s : r.isps) {
    for (const auto& [target, t] : s.targets) {
      std::snprintf(line, sizeof line, "  AS%-6u %-40.40s runs %6llu  ok %7.2f%%  p50 %7.0f  p95 %7.0f\n", s.asn,
                    target.c_str(), static_cast<unsigned long long>(t.runs),
                    100.0 * static_cast<double>(t.ok) / static_cast<double>(std::max<std::uint64_t>(1, t.runs)),
                    t.latency.quantile(0.5), t.latency.quantile(0.95));
      out += line;
    }
  }
  if (!r.analysis.incidents.empty()) {
    out += "\nIncidents\n";
    for (const auto& i : r.analysis.incidents) {
      out += "  " + utc(i.opened_ns) + " – " + (i.resolved_ns ? utc(i.resolved_ns) : std::string("open")) + "  " +
             i.severity + "  " + i.kind + ": " + i.title + "\n";
    }
  }
  return out;
}

std::string render_isp_json(const IspReport& r) {
  nlohmann::json isps = nlohmann::json::array();
  for (const auto& s : r.isps) {
    nlohmann::json targets = nlohmann::json::object();
    for (const auto& [name, t] : s.targets) {
      targets[name] = {{"runs", t.runs},
                       {"ok", t.ok},
                       {"availability", t.runs ? static_cast<double>(t.ok) / static_cast<double>(t.runs) : 1.0},
                       {"p50_ms", t.latency.quantile(0.5)},
                       {"p95_ms", t.latency.quantile(0.95)}};
    }
    nlohmann::json series = nlohmann::json::array();
    for (const auto& [t, p] : s.series) {
      series.push_back({{"time", format_rfc3339(from_unix_nanos(t))}, {"runs", p.first}, {"ok", p.second}});
    }
    nlohmann::json incidents = nlohmann::json::array();
    for (const auto* i : s.incidents) incidents.push_back(i->id);
    isps.push_back({{"asn", s.asn},
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
  for (const auto& i : r.analysis.incidents) incidents.push_back(nlohmann::json::parse(incident_json(i)));
  nlohmann::json j{{"from", format_rfc3339(from_unix_nanos(r.from_ns))},
                   {"to", format_rfc3339(from_unix_nanos(r.to_ns))},
                   {"isps", isps},
                   {"incidents", incidents}};
  return j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string render_isp_html(const IspReport& r) {
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
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
</style></head><body>
)";
  h += "<h1>Per-ISP reachability</h1>\n<p>" + html_escape(utc(r.from_ns)) + " to " + html_escape(utc(r.to_ns)) +
       " · " + std::to_string(r.analysis.results) + " probe results, " + std::to_string(r.analysis.reports) +
       " browser reports</p>\n";
  // Summary table.
  h += "<h2>ISPs</h2>\n<table id=\"isps\"><tr><th>ASN</th><th>ISP</th><th>country</th><th>probe availability</th>"
       "<th>user availability (NEL)</th><th>top failure types</th><th>incidents</th></tr>\n";
  for (const auto& s : r.isps) {
    std::map<std::string, double> all = s.failure_types;
    for (const auto& [k, v] : s.browser_failures) all[k] += v;
    std::string failures;
    for (const auto& [k, v] : top(all, 3)) failures += (failures.empty() ? "" : ", ") + html_escape(k) + " (" + fmt("%.0f", v) + ")";
    std::string incidents;
    for (const auto* i : s.incidents) {
      incidents += (incidents.empty() ? "" : "<br>") + std::string("<span class=\"sev-") + i->severity + "\">" +
                   html_escape(i->kind) + "</span>";
    }
    const bool bad = s.availability() < 0.99;
    h += "<tr class=\"isp\" data-asn=\"" + std::to_string(s.asn) + "\"><td>AS" + std::to_string(s.asn) + "</td><td>" +
         html_escape(s.isp) + "</td><td>" + html_escape(s.country) + "</td><td class=\"n" + (bad ? " bad" : "") + "\">" +
         (s.targets.empty() ? std::string("–") : fmt("%.2f%%", 100 * s.availability())) + "</td><td class=\"n\">" +
         (s.browser_total > 0 ? fmt("%.2f%%", 100 * s.browser_availability()) : std::string("–")) +
         "</td><td>" + failures + "</td><td>" + (incidents.empty() ? "–" : incidents) + "</td></tr>\n";
  }
  h += "</table>\n";
  // Availability over time: one line per ISP.
  const int W = 900, H = 260, L = 50, B = 30, T = 10;
  const double span = static_cast<double>(std::max<std::int64_t>(1, r.to_ns - r.from_ns));
  auto x = [&](std::int64_t t) { return L + (W - L - 10) * static_cast<double>(t - r.from_ns) / span; };
  double lo = 1.0;
  for (const auto& s : r.isps) {
    for (const auto& [t, p] : s.series) lo = std::min(lo, p.first > 0 ? p.second / p.first : 1.0);
  }
  lo = std::max(0.0, std::floor(lo * 10) / 10 - 0.0001);
  auto y = [&](double a) { return T + (H - T - B) * (1 - (a - lo) / std::max(1e-9, 1 - lo)); };
  h += "<h2>Probe availability over time</h2>\n<svg id=\"availability\" width=\"" + std::to_string(W) + "\" height=\"" +
       std::to_string(H + 20 * static_cast<int>((r.isps.size() + 3) / 4)) + "\" role=\"img\">\n";
  for (double a : {lo, (lo + 1) / 2, 1.0}) {
    h += "<line x1=\"" + std::to_string(L) + "\" x2=\"" + std::to_string(W - 10) + "\" y1=\"" + fmt("%.1f", y(a)) +
         "\" y2=\"" + fmt("%.1f", y(a)) + "\" stroke=\"#ddd\"/><text x=\"2\" y=\"" + fmt("%.1f", y(a) + 4) + "\">" +
         fmt("%.0f%%", 100 * a) + "</text>\n";
  }
  h += "<text x=\"" + std::to_string(L) + "\" y=\"" + std::to_string(H - 8) + "\">" + html_escape(utc(r.from_ns)) +
       "</text><text x=\"" + std::to_string(W - 130) + "\" y=\"" + std::to_string(H - 8) + "\">" +
       html_escape(utc(r.to_ns)) + "</text>\n";
  for (std::size_t i = 0; i < r.isps.size(); ++i) {
    const auto& s = r.isps[i];
    if (s.series.empty()) continue;
    std::string points;
    for (const auto& [t, p] : s.series) {
      points += fmt("%.1f", x(t + r.bucket_ns / 2)) + "," + fmt("%.1f", y(p.first > 0 ? p.second / p.first : 1.0)) + " ";
    }
    const char* color = kColors[i % 8];
    h += std::string("<polyline fill=\"none\" stroke=\"") + color + "\" stroke-width=\"2\" points=\"" + points + "\"/>\n";
    const int lx = L + static_cast<int>(i % 4) * 210, ly = H + 12 + 20 * static_cast<int>(i / 4);
    h += "<rect x=\"" + std::to_string(lx) + "\" y=\"" + std::to_string(ly - 9) + "\" width=\"12\" height=\"3\" fill=\"" +
         color + "\"/><text x=\"" + std::to_string(lx + 16) + "\" y=\"" + std::to_string(ly) + "\">AS" +
         std::to_string(s.asn) + " " + html_escape(s.isp) + "</text>\n";
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
    h += "<h3>AS" + std::to_string(s.asn) + " " + html_escape(s.isp) + "</h3>\n<svg class=\"failures\" width=\"700\" height=\"" +
         std::to_string(18 * rows.size() + 4) + "\">\n";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const double w = 380 * std::log1p(rows[i].second) / std::log1p(max_failures);
      h += "<text x=\"0\" y=\"" + std::to_string(18 * i + 13) + "\">" + html_escape(rows[i].first) + "</text><rect x=\"260\" y=\"" +
           std::to_string(18 * i + 3) + "\" width=\"" + fmt("%.1f", std::max(1.0, w)) + "\" height=\"12\" fill=\"#d62728\"/><text x=\"" +
           fmt("%.1f", 266 + w) + "\" y=\"" + std::to_string(18 * i + 13) + "\">" + fmt("%.0f", rows[i].second) + "</text>\n";
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
    h += "<h2>Latency per ISP (probe runs: p50 light, p95 dark)</h2>\n";
    auto bar = [&](double ms) { return 420 * std::log1p(ms) / std::log1p(max_ms); };
    for (const auto& [target, rows] : by_target) {
      h += "<h3>" + html_escape(target) + "</h3>\n<svg class=\"latency\" width=\"760\" height=\"" +
           std::to_string(22 * rows.size() + 4) + "\">\n";
      for (std::size_t i = 0; i < rows.size(); ++i) {
        const double p50 = rows[i].second->latency.quantile(0.5), p95 = rows[i].second->latency.quantile(0.95);
        const std::string top_y = std::to_string(22 * i + 3);
        h += "<text x=\"0\" y=\"" + std::to_string(22 * i + 15) + "\">AS" + std::to_string(rows[i].first->asn) + " " +
             html_escape(rows[i].first->isp) + "</text><rect x=\"200\" y=\"" + top_y + "\" width=\"" +
             fmt("%.1f", std::max(1.0, bar(p95))) + "\" height=\"16\" fill=\"#1f4e79\"/><rect x=\"200\" y=\"" + top_y +
             "\" width=\"" + fmt("%.1f", std::max(1.0, bar(p50))) + "\" height=\"16\" fill=\"#9ecae1\"/><text x=\"" +
             fmt("%.1f", 206 + bar(p95)) + "\" y=\"" + std::to_string(22 * i + 15) + "\">" + fmt("%.0f", p50) + " / " +
             fmt("%.0f", p95) + " ms</text>\n";
      }
      h += "</svg>\n";
    }
  }
  // Latency table.
  h += "<h2>Latency per ISP and target (probe runs)</h2>\n<table id=\"latency\"><tr><th>ASN</th><th>target</th><th>runs</th>"
       "<th>ok</th><th>p50 ms</th><th>p95 ms</th></tr>\n";
  for (const auto& s : r.isps) {
    for (const auto& [target, t] : s.targets) {
      h += "<tr><td>AS" + std::to_string(s.asn) + "</td><td>" + html_escape(target) + "</td><td class=\"n\">" +
           std::to_string(t.runs) + "</td><td class=\"n\">" +
           fmt("%.2f%%", 100.0 * static_cast<double>(t.ok) / static_cast<double>(std::max<std::uint64_t>(1, t.runs))) +
           "</td><td class=\"n\">" + fmt("%.0f", t.latency.quantile(0.5)) + "</td><td class=\"n\">" +
           fmt("%.0f", t.latency.quantile(0.95)) + "</td></tr>\n";
    }
  }
  h += "</table>\n<h2>Incidents</h2>\n<table id=\"incidents\"><tr><th>opened</th><th>resolved</th><th>severity</th><th>kind</th>"
       "<th>what</th><th>runbook</th></tr>\n";
  for (const auto& i : r.analysis.incidents) {
    h += "<tr><td>" + html_escape(utc(i.opened_ns)) + "</td><td>" + (i.resolved_ns ? html_escape(utc(i.resolved_ns)) : "open") +
         "</td><td class=\"sev-" + i.severity + "\">" + i.severity + "</td><td>" + html_escape(i.kind) + "</td><td>" +
         html_escape(i.title) + "</td><td>" + html_escape(i.runbook) + "</td></tr>\n";
  }
  if (r.analysis.incidents.empty()) h += "<tr><td colspan=\"6\">none</td></tr>\n";
  h += "</table>\n<p>Made by <code>vantage report isp</code>.</p>\n</body></html>\n";
  return h;
}

}  // namespace vantage::analysis
