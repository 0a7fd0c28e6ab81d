#include "analysis/cli/incident_commands.hpp"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "analysis/app/incident_feed.hpp"
#include "analysis/app/time_arg.hpp"
#include "analysis/detect/analyzer.hpp"
#include "analysis/generate/generator.hpp"
#include "analysis/notify/notifier.hpp"
#include "analysis/report/isp_report.hpp"
#include "analysis/store/event_store.hpp"
#include "common/time.hpp"

namespace vantage::analysis::cli {
namespace {}  // namespace
namespace va = vantage::analysis;

static std::string utc(std::int64_t ns) {
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
  } catch (const std::invalid_argument& e) {  // a bad option (an unknown scenario): usage
    std::fprintf(stderr, "vantage generate: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vantage generate: %s\n", e.what());
    return 1;
  }
}

// The range [from, to) of a replay: the given RFC 3339 times, or the store's first and last event.
// Throws std::invalid_argument for a bad time; nullopt when the store is empty.
static std::optional<std::pair<std::int64_t, std::int64_t>> replay_range(
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

static std::vector<std::unique_ptr<vantage::analysis::Notifier>> make_notifiers(
    const NotifyOptions& n, int firing_for_s) {
  std::vector<std::unique_ptr<vantage::analysis::Notifier>> out;
  for (const auto& u : n.alertmanagers)
    out.push_back(vantage::analysis::make_alertmanager_notifier(u, n.runbook_base, firing_for_s));
  for (const auto& u : n.webhooks) out.push_back(vantage::analysis::make_webhook_notifier(u));
  return out;
}

// Sends one change to every notifier; returns false when one of them failed (reported).
static bool deliver(const std::vector<std::unique_ptr<vantage::analysis::Notifier>>& notifiers,
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

static volatile std::sig_atomic_t g_stop = 0;
static void on_signal(int) { g_stop = 1; }

// One line per incident change, the same for `watch` and `incidents`:
// "2026-11-22T01:52:00Z OPENED   page   reachability_loss  <title>".
static void print_change(std::int64_t time_ns, va::Change change, const va::Incident& i) {
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

}  // namespace vantage::analysis::cli
