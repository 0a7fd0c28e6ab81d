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
#include "analysis/cli/fleet_command.hpp"
#include "analysis/cli/incident_commands.hpp"
#include "analysis/cli/prune_command.hpp"
#include "analysis/detect/analyzer.hpp"
#include "analysis/generate/generator.hpp"
#include "analysis/notify/notifier.hpp"
#include "analysis/report/isp_report.hpp"
#include "analysis/store/event_store.hpp"
#include "common/config_node.hpp"
#include "common/time.hpp"
#include "common/version.hpp"

int main(int argc, char** argv) {
  using namespace vantage::analysis::cli;
  CLI::App app{"vantage: analysis of what Vantage's probes, browsers and BGP feeds saw"};
  app.set_version_flag("--version", vantage::version_line("vantage"));
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
                   "The scenario (docs/analysis.md, the scenario generator)")
      ->check(CLI::IsMember(vantage::analysis::generator_scenarios()));
  gen_cmd->add_option("--seed", gen.seed, "Random seed");
  gen_cmd->add_option("--hours", gen.hours, "Length of the stream")
      ->check(CLI::Range(1.5, 24.0 * 30));
  gen_cmd
      ->add_option("--users-per-minute", gen.users_per_minute,
                   "NEL reports per network per minute (daily mean)")
      ->check(CLI::Range(1.0, 100000.0));
  std::string fleet_format = "text", fleet_now;
  auto* fleet_cmd = app.add_subcommand(
      "fleet", "List the vantage points: last seen, version, config drift, spool, silent");
  fleet_cmd->add_option("--db", db, "The collector's SQLite store")
      ->required()
      ->check(CLI::ExistingFile);
  fleet_cmd->add_option("--format", fleet_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  fleet_cmd->add_option("--now", fleet_now,
                        "The time to judge ages at: RFC 3339 UTC, now, or a duration before now");
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
  std::string baseline = "1h", bgp_hold, degraded_window, slo_page = "1h,5m", slo_ticket = "6h,30m";
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
    cmd->add_option("--baseline", baseline,
                    "http_error from users and users' NEL: the period a key's error share is "
                    "compared with (default 1h)");
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
    cmd->add_option(
        "--degraded-window", degraded_window,
        "degraded: the period a network's bad share is taken over (default: 6 windows)");
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
  cli::PruneCommand prune_cmd(app);
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
  if (prune_cmd.parsed()) return prune_cmd.run(vantage::SystemClock::instance());
  if (fleet_cmd->parsed())
    return fleet(db, fleet_format, fleet_now, vantage::SystemClock::instance());
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
  if (!degraded_window.empty())
    aopts.degraded_window_ns = duration(degraded_window, "--degraded-window").count();
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
