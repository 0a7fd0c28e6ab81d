// vantage: the analysis CLI. `vantage bgp dump|scan|generate` (MRT, BMP and RIS Live files, see
// docs/bgp.md); `vantage incidents` (detectors and incidents over a collector store) and
// `vantage generate` (scenario streams for them), see docs/analysis.md. Reports follow (DESIGN §6).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "analysis/app/incident_feed.hpp"
#include "analysis/app/time_arg.hpp"
#include "analysis/cli/bgp_commands.hpp"
#include "analysis/detect/analyzer.hpp"
#include "analysis/generate/generator.hpp"
#include "analysis/notify/notifier.hpp"
#include "analysis/report/isp_report.hpp"
#include "analysis/store/event_store.hpp"
#include "common/config_node.hpp"
#include "common/time.hpp"

namespace {

std::string utc(std::int64_t ns) {
  const std::string s = vantage::format_rfc3339(vantage::from_unix_nanos(ns));
  return s.substr(0, 19) + "Z";  // to the second
}

int generate_events(const std::string& db, const vantage::analysis::GeneratorOptions& o) {
  try {
    const auto sum = vantage::analysis::generate(db, o);
    std::printf(
        "%s: scenario %s, seed %llu: %llu probe results, %llu browser reports, %s to %s\n",
        db.c_str(), o.scenario.c_str(), static_cast<unsigned long long>(o.seed),
        static_cast<unsigned long long>(sum.results), static_cast<unsigned long long>(sum.reports),
        utc(o.start_ns).c_str(),
        utc(o.start_ns + static_cast<std::int64_t>(o.hours * 3600) * 1'000'000'000).c_str());
    if (!sum.fault.empty()) {
      std::printf("fault %s to %s: %s\n", utc(sum.fault_from_ns).c_str(),
                  utc(sum.fault_to_ns).c_str(), sum.fault.c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vantage generate: %s\n", e.what());
    return e.what() == std::string("unknown scenario \"") + o.scenario + "\"" ? 2 : 1;
  }
}

// The range [from, to) of a replay: the given RFC 3339 times, or the store's first and last event.
// Throws std::invalid_argument for a bad time; nullopt when the store is empty.
std::optional<std::pair<std::int64_t, std::int64_t>> replay_range(
    vantage::analysis::EventStore& store, const std::string& from, const std::string& to) {
  auto span = store.time_span();
  if (!span) return std::nullopt;
  // RFC 3339, `now`, or a duration before now (`1h`, `-30m`, `now-2d`).
  const std::int64_t now = vantage::to_unix_nanos(vantage::SystemClock::instance().utc_now());
  auto parse = [&](const std::string& text, std::int64_t fallback, const char* argument) {
    if (text.empty()) return fallback;
    return vantage::analysis::parse_time_arg(text, now, argument);
  };
  // Clamped to what the store holds: a far --from would mean replaying years of empty minutes.
  const std::int64_t f = std::max(parse(from, span->first, "--from"), span->first);
  const std::int64_t t = std::min(parse(to, span->second + 1, "--to"), span->second + 1);
  if (t <= f)
    throw std::invalid_argument("the range holds no data (the store spans " + utc(span->first) +
                                " to " + utc(span->second) + ")");
  return std::pair{f, t};
}

int report_isp(const std::string& db, const std::string& from, const std::string& to,
               const std::string& format, const std::string& output,
               const vantage::analysis::AnalyzerOptions& options) {
  try {
    auto store = vantage::analysis::open_sqlite_store(db);
    const auto range = replay_range(*store, from, to);
    if (!range) {
      std::fprintf(stderr, "vantage report isp: %s holds no results or reports\n", db.c_str());
      return 1;
    }
    const auto report =
        vantage::analysis::build_isp_report(*store, range->first, range->second, options);
    const std::string text = format == "json"   ? vantage::analysis::render_isp_json(report)
                             : format == "html" ? vantage::analysis::render_isp_html(report)
                                                : vantage::analysis::render_isp_text(report);
    if (output.empty() || output == "-") {
      std::fwrite(text.data(), 1, text.size(), stdout);
    } else {
      std::ofstream out(output, std::ios::binary);
      out << text;
      if (!out.flush()) throw std::runtime_error("cannot write " + output);
      std::fprintf(stderr, "vantage report isp: wrote %s (%zu bytes)\n", output.c_str(),
                   text.size());
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vantage report isp: %s\n", e.what());
    return 1;
  }
}

struct NotifyOptions {
  std::vector<std::string> alertmanagers, webhooks;
  std::string runbook_base;
  bool save = true;
};

std::vector<std::unique_ptr<vantage::analysis::Notifier>> make_notifiers(const NotifyOptions& n,
                                                                         int firing_for_s) {
  std::vector<std::unique_ptr<vantage::analysis::Notifier>> out;
  for (const auto& u : n.alertmanagers)
    out.push_back(vantage::analysis::make_alertmanager_notifier(u, n.runbook_base, firing_for_s));
  for (const auto& u : n.webhooks) out.push_back(vantage::analysis::make_webhook_notifier(u));
  return out;
}

// Sends one change to every notifier; returns false when one of them failed (reported).
bool deliver(const std::vector<std::unique_ptr<vantage::analysis::Notifier>>& notifiers,
             const vantage::analysis::IncidentEvent& e, bool refresh_only = false) {
  bool ok = true;
  for (const auto& n : notifiers) {
    if (refresh_only && !n->wants_refresh()) continue;
    std::string error;
    if (!n->notify(e, error)) {
      std::fprintf(stderr, "vantage: %s: %s %s: %s\n", n->describe().c_str(),
                   std::string(vantage::analysis::change_name(e.change)).c_str(),
                   e.incident.id().c_str(), error.c_str());
      ok = false;
    }
  }
  return ok;
}

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

namespace va = vantage::analysis;

// One line per incident change, the same for `watch` and `incidents`:
// "2026-11-22T01:52:00Z OPENED   page   reachability_loss  <title>".
void print_change(std::int64_t time_ns, va::Change change, const va::Incident& i) {
  const char* what = change == va::Change::opened      ? "OPENED"
                     : change == va::Change::escalated ? "ESCALATED"
                                                       : "RESOLVED";
  std::printf("%s %-9s %-6s %-18s %s\n", utc(time_ns).c_str(), what,
              std::string(va::severity_name(i.severity)).c_str(),
              std::string(va::kind_name(i.key.kind)).c_str(), i.title.c_str());
  if (change == va::Change::opened) std::printf("%31s runbook: %s\n", "", i.runbook().c_str());
}

// Continuous analysis: every `interval`, replays from the store's first event, or the last
// `lookback` when the store is older (on the step grid, as `vantage incidents` does: the same
// evaluations, the same open times), prints and notifies what opened, escalated or resolved,
// re-sends open incidents to Alertmanager, and stores the incidents (an upsert).
int watch(const std::string& db, const va::AnalyzerOptions& options, const NotifyOptions& notify,
          std::chrono::nanoseconds interval, std::chrono::nanoseconds lookback,
          std::int64_t settle_ns, const vantage::Clock& clock) {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const int firing_for_s =
      static_cast<int>(std::max<std::int64_t>(60, 3 * interval.count() / 1'000'000'000));
  const auto notifiers = make_notifiers(notify, firing_for_s);
  va::IncidentFeed feed;
  std::fprintf(stderr, "vantage watch: %s every %s over the last %s\n", db.c_str(),
               vantage::format_duration(interval).c_str(),
               vantage::format_duration(lookback).c_str());
  int status = 0;
  while (!g_stop) {
    try {
      auto store = va::open_sqlite_store(db);
      const auto span = store->time_span();
      const std::int64_t now = vantage::to_unix_nanos(clock.utc_now());
      // Settling: late browser reports (received − age) and probe results on their way still
      // arrive for the last moments.
      const std::int64_t to = now - settle_ns;
      std::int64_t from = to - lookback.count();
      if (span) from = std::max(from, span->first);
      from = from / options.step_ns * options.step_ns;
      std::vector<va::Incident> changed;  // to store
      if (span && to > from) {
        const auto result = va::analyze(*store, from, to, options);
        store.reset();
        std::set<va::IncidentKey> sent;
        for (const auto& c : feed.cycle(result, to)) {
          print_change(c.time_ns, c.change, c.incident);
          if (!deliver(notifiers,
                       {c.change == va::Change::opened ? now : c.time_ns, c.change, c.incident}))
            feed.retry(c);  // not delivered everywhere: tried again next cycle
          sent.insert(c.incident.key);
          changed.push_back(c.incident);
        }
        for (const auto& i : feed.ongoing()) {  // Alertmanager: keep them firing
          if (sent.count(i.key)) continue;
          deliver(notifiers, {now, va::Change::opened, i}, /*refresh_only=*/true);
          changed.push_back(i);
        }
      }
      std::fflush(stdout);
      if (notify.save && !changed.empty()) va::save_incidents(db, changed);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "vantage watch: %s\n", e.what());
      status = 1;
    }
    for (auto slept = std::chrono::nanoseconds(0); slept < interval && !g_stop;
         slept += std::chrono::milliseconds(100)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return status;
}

int incidents(const std::string& db, const std::string& from, const std::string& to, bool json,
              const va::AnalyzerOptions& options, const NotifyOptions& notify) {
  try {
    auto store = va::open_sqlite_store(db);
    const auto range = replay_range(*store, from, to);
    if (!range) {
      std::fprintf(stderr, "vantage incidents: %s holds no results or reports\n", db.c_str());
      return json ? (std::printf("[]\n"), 0) : 0;
    }
    // On a grid of whole steps, so that every replay of the same data gives the same incident ids.
    const std::int64_t from_ns = range->first / options.step_ns * options.step_ns;
    const std::int64_t to_ns = range->second;
    const auto result = va::analyze(*store, from_ns, to_ns, options);
    store.reset();
    // Print first; then store and notify (a failure there still exits 1, after the output).
    int status = 0;
    auto side_effects = [&] {
      try {
        if (notify.save) va::save_incidents(db, result.incidents);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "vantage incidents: %s\n", e.what());
        status = 1;
      }
      const auto notifiers = make_notifiers(notify, 600);
      for (const auto& e : result.events) {
        if (!deliver(notifiers, e)) status = 1;
      }
    };
    if (json) {
      std::printf("[");
      for (std::size_t i = 0; i < result.incidents.size(); ++i) {
        std::printf("%s%s", i ? ",\n " : "", va::incident_json(result.incidents[i]).c_str());
      }
      std::printf("]\n");
      std::fflush(stdout);
      side_effects();
      return status;
    }
    std::printf("%s to %s: %llu probe results, %llu browser reports\n\n", utc(from_ns).c_str(),
                utc(to_ns).c_str(), static_cast<unsigned long long>(result.results),
                static_cast<unsigned long long>(result.reports));
    for (const auto& e : result.events) print_change(e.time_ns, e.change, e.incident);
    std::printf("\n%zu incident%s", result.incidents.size(),
                result.incidents.size() == 1 ? "" : "s");
    std::size_t open = 0;
    for (const auto& i : result.incidents) open += i.status != va::Status::resolved;
    std::printf(" (%zu still open)\n", open);
    std::fflush(stdout);
    side_effects();
    return status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vantage incidents: %s\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vantage: analysis of what Vantage's probes, browsers and BGP feeds saw"};
  app.require_subcommand(1);
  auto* bgp = app.add_subcommand("bgp", "BGP: MRT files")->require_subcommand(1);
  namespace cli = vantage::analysis::cli;
  cli::BgpDumpOptions dump_options;
  auto* dump = bgp->add_subcommand(
      "dump", "Print every route entry of MRT files as `bgpdump -m` does (gzip, bzip2 or plain)");
  dump->add_option("files", dump_options.files, "MRT files")->required()->check(CLI::ExistingFile);
  dump->footer(cli::kBgpExitStatuses);
  cli::BgpScanOptions scan_options;
  auto* scan = bgp->add_subcommand("scan",
                                   "Replay MRT files through the monitor and print hijack, leak, "
                                   "upstream, visibility and RPKI alerts");
  scan->add_option("files", scan_options.files,
                   "MRT files, captured BMP streams or RIS Live JSON lines, in time order")
      ->required()
      ->check(CLI::ExistingFile);
  scan->add_option("--prefixes", scan_options.prefixes_file,
                   "Expectations (BGPalerter-like prefixes file, YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  scan->add_option("--as-rel", scan_options.as_rel_file,
                   "CAIDA AS relationships (a|b|-1, a|b|0) for route leaks")
      ->check(CLI::ExistingFile);
  scan->add_option("--vrp", scan_options.vrp_file,
                   "RPKI VRPs (rpki-client/Routinator JSON) for origin validation")
      ->check(CLI::ExistingFile);
  scan->add_flag("--json", scan_options.json,
                 "One JSON object per alert, then a scan_summary object");
  scan->add_option("--min-peers", scan_options.min_peers, "Override options.min_peers")
      ->check(CLI::Range(1, 100000));
  scan->footer(cli::kBgpExitStatuses);
  cli::BgpGenerateOptions generate_options;
  auto* generate =
      bgp->add_subcommand("generate", "Propose a prefixes file for an origin AS from MRT files");
  generate->add_option("files", generate_options.files, "MRT files (RIB dumps)")
      ->required()
      ->check(CLI::ExistingFile);
  generate->add_option("--origin", generate_options.origin, "The origin AS")->required();
  bool json = false;
  std::string db, from, to;
  vantage::analysis::GeneratorOptions gen;
  auto* gen_cmd = app.add_subcommand(
      "generate", "Write a seeded scenario stream (probe results and NEL reports) into a store");
  gen_cmd->add_option("--db", db, "The SQLite store (created when missing)")->required();
  gen_cmd
      ->add_option("--scenario", gen.scenario,
                   "baseline, isp-blackhole, http-4xx-spike, dns-nxdomain, slow-checkout")
      ->check(CLI::IsMember(vantage::analysis::generator_scenarios()));
  gen_cmd->add_option("--seed", gen.seed, "Random seed");
  gen_cmd->add_option("--hours", gen.hours, "Length of the stream")
      ->check(CLI::Range(1.5, 24.0 * 30));
  gen_cmd
      ->add_option("--users-per-minute", gen.users_per_minute,
                   "NEL reports per network per minute (daily mean)")
      ->check(CLI::Range(1.0, 100000.0));
  vantage::analysis::AnalyzerOptions aopts;
  auto* inc_cmd = app.add_subcommand(
      "incidents", "Replay a store through the detectors and print the incidents");
  inc_cmd->add_option("--db", db, "The collector's SQLite store")
      ->required()
      ->check(CLI::ExistingFile);
  inc_cmd->add_option(
      "--from", from,
      "Start: RFC 3339 UTC, or a duration before now (1h, -30m, 2d); default: the first event");
  inc_cmd->add_option("--to", to,
                      "End: RFC 3339 UTC, now, or a duration before now; default: the last event");
  inc_cmd->add_flag("--json", json, "A JSON array of the incidents");

  NotifyOptions nopts;
  std::string step = "60s", window = "5m", interval = "60s", lookback = "6h", settle;
  std::string baseline = "1h", bgp_hold, slo_page = "1h,5m", slo_ticket = "6h,30m";
  auto analysis_flags = [&](CLI::App* cmd) {
    cmd->add_option("--alertmanager", nopts.alertmanagers,
                    "Alertmanager base URL (API v2), e.g. http://127.0.0.1:9093");
    cmd->add_option("--webhook", nopts.webhooks, "POST each change as JSON to this URL");
    cmd->add_option("--runbook-base", nopts.runbook_base,
                    "Prefix for runbook links, e.g. https://git.example.com/vantage/blob/main/");
    cmd->add_flag("!--no-save", nopts.save,
                  "Do not store the incidents in the store's incidents table");
  };
  auto slo_flags = [&](CLI::App* cmd) {
    cmd->add_option("--open-after", aopts.open_after,
                    "Evaluations with a finding before an incident opens")
        ->check(CLI::Range(1, 1000));
    cmd->add_option("--resolve-after", aopts.resolve_after,
                    "Clean evaluations before an incident resolves")
        ->check(CLI::Range(1, 1000));
    cmd->add_option("--slo-objective", aopts.slo_objective,
                    "SLO objective for journeys and http checks")
        ->check(CLI::Range(0.5, 0.99999));
    cmd->add_option("--latency-ms", aopts.latency_ms,
                    "A run slower than this counts against the SLO (ms)");
    cmd->add_option("--step", step, "Evaluation step (default 60s)");
    cmd->add_option("--window", window,
                    "What each evaluation looks at (default 5m; a whole number of steps)");
    cmd->add_option(
        "--baseline", baseline,
        "http_error from users and users' NEL: the period a key's error share is compared with (default 1h)");
    cmd->add_option("--min-results", aopts.min_results,
                    "reachability/DNS/outage: failed results in a row a vantage point needs in "
                    "the window to count as failing (default 3)")
        ->check(CLI::Range(1, 100000));
    cmd->add_option("--min-errors", aopts.min_errors,
                    "http_error from users and users' NEL per network: weighted error reports "
                    "the window needs (default 10)")
        ->check(CLI::Range(1, 1000000));
    cmd->add_option("--slo-page-windows", slo_page,
                    "Burn-rate windows LONG,SHORT of the page alert (default 1h,5m)");
    cmd->add_option("--slo-ticket-windows", slo_ticket,
                    "Burn-rate windows LONG,SHORT of the ticket alert (default 6h,30m)");
    cmd->add_option("--slo-min-runs", aopts.slo_min_runs,
                    "Runs a burn-rate window needs to count (default 10)")
        ->check(CLI::Range(1, 1000000));
    cmd->add_option("--bgp-hold", bgp_hold,
                    "How long a BGP alert no reachability loss carries waits before it is an "
                    "incident (default: --window)");
  };
  analysis_flags(inc_cmd);
  slo_flags(inc_cmd);
  auto* watch_cmd = app.add_subcommand(
      "watch", "Analyse continuously; print, store and notify incidents as they open and resolve");
  watch_cmd->add_option("--db", db, "The collector's SQLite store")
      ->required()
      ->check(CLI::ExistingFile);
  watch_cmd->add_option("--interval", interval, "How often (default 60s)");
  watch_cmd->add_option("--lookback", lookback,
                        "How much history each cycle replays (default 6h, the longest SLO window)");
  watch_cmd->add_option(
      "--settle", settle,
      "How far behind now each cycle stops, for uploads still on their way (default: one --step)");
  analysis_flags(watch_cmd);
  slo_flags(watch_cmd);
  std::string format = "text", output;
  auto* report_cmd =
      app.add_subcommand("report", "Reports over a collector store")->require_subcommand(1);
  auto* isp_cmd = report_cmd->add_subcommand("isp",
                                             "Per ISP: availability, latency per target, top "
                                             "failure types, incidents (text, JSON or HTML)");
  isp_cmd->add_option("--db", db, "The collector's SQLite store")
      ->required()
      ->check(CLI::ExistingFile);
  isp_cmd->add_option(
      "--from", from,
      "Start: RFC 3339 UTC, or a duration before now (1h, -30m, 2d); default: the first event");
  isp_cmd->add_option("--to", to,
                      "End: RFC 3339 UTC, now, or a duration before now; default: the last event");
  isp_cmd->add_option("--format", format, "text, json or html")
      ->check(CLI::IsMember({"text", "json", "html"}));
  isp_cmd->add_option("--output,-o", output, "Write to this file instead of stdout");
  slo_flags(isp_cmd);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (dump->parsed()) return cli::bgp_dump(dump_options);
  if (scan->parsed()) return cli::bgp_scan(scan_options);
  if (generate->parsed()) return cli::bgp_generate(generate_options);
  if (gen_cmd->parsed()) return generate_events(db, gen);
  auto duration = [](const std::string& text, const char* what) {
    const auto d = vantage::parse_duration(text);
    if (!d || d->count() <= 0) {
      std::fprintf(stderr, "vantage: %s: \"%s\" is not a duration like 10s, 5m, 6h\n", what,
                   text.c_str());
      std::exit(2);
    }
    return *d;
  };
  aopts.step_ns = duration(step, "--step").count();
  aopts.window_ns = duration(window, "--window").count();
  if (aopts.window_ns < aopts.step_ns || aopts.window_ns % aopts.step_ns != 0 ||
      aopts.step_ns > 300'000'000'000) {
    std::fprintf(
        stderr,
        "vantage: --window must be a whole number of steps, and --step at most 5m (the SLO's "
        "shortest window)\n");
    return 2;
  }
  aopts.baseline_ns = duration(baseline, "--baseline").count();
  if (!bgp_hold.empty()) aopts.bgp_hold_ns = duration(bgp_hold, "--bgp-hold").count();
  auto windows = [&](const std::string& text, const char* what, std::int64_t& long_ns,
                     std::int64_t& short_ns) {
    const auto comma = text.find(',');
    if (comma == std::string::npos) {
      std::fprintf(stderr, "vantage: %s: \"%s\" is not LONG,SHORT like 1h,5m\n", what,
                   text.c_str());
      std::exit(2);
    }
    long_ns = duration(text.substr(0, comma), what).count();
    short_ns = duration(text.substr(comma + 1), what).count();
    if (short_ns > long_ns) {
      std::fprintf(stderr, "vantage: %s: the short window is longer than the long one\n", what);
      std::exit(2);
    }
  };
  windows(slo_page, "--slo-page-windows", aopts.slo_page_long_ns, aopts.slo_page_short_ns);
  windows(slo_ticket, "--slo-ticket-windows", aopts.slo_ticket_long_ns, aopts.slo_ticket_short_ns);
  if (watch_cmd->parsed()) {
    const std::int64_t settle_ns =
        settle.empty() ? aopts.step_ns : duration(settle, "--settle").count();
    return watch(db, aopts, nopts, duration(interval, "--interval"),
                 duration(lookback, "--lookback"), settle_ns, vantage::SystemClock::instance());
  }
  if (inc_cmd->parsed()) return incidents(db, from, to, json, aopts, nopts);
  if (isp_cmd->parsed()) return report_isp(db, from, to, format, output, aopts);
  return 2;
}
