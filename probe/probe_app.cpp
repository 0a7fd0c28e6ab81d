#include "probe/probe_app.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/config_node.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/version.hpp"
#include "probe/fleet/config_client.hpp"
#include "probe/fleet/heartbeat.hpp"
#include "probe/net/curl_multi.hpp"
#include "probe/resolver_pool.hpp"
#include "probe/scheduler.hpp"
#include "probe/sinks/collector_sink.hpp"
#include "probe/sinks/jsonl_sink.hpp"
#include "probe/sinks/metrics_server.hpp"
#include "probe/sinks/metrics_sink.hpp"

namespace vantage::probe {

namespace asio = boost::asio;

ProbeApp::ProbeApp(ProbeConfig config, AppOptions options)
    : config_(std::move(config)), options_(std::move(options)) {}

ProbeApp::~ProbeApp() = default;

bool ProbeApp::request_reload() {
  std::lock_guard lock(reload_mutex_);
  if (!io_ || !reload_) return false;
  asio::post(*io_, [this] {
    std::function<void()> reload;
    {
      std::lock_guard inner(reload_mutex_);
      reload = reload_;
    }
    if (reload) reload();
  });
  return true;
}

namespace {

std::string join_ids(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ",") + id;
  return out;
}

// Keys of a reloaded configuration that a running probe cannot take (they keep their old value).
std::vector<std::string> restart_keys(const ProbeConfig& now, const ProbeConfig& next) {
  std::vector<std::string> keys;
  const Vantage& a = now.vantage;
  const Vantage& b = next.vantage;
  if (a.probe_id != b.probe_id || a.region != b.region || a.country != b.country ||
      a.city != b.city || a.asn != b.asn || a.isp != b.isp) {
    keys.push_back("vantage_point");
  }
  if (now.metrics.has_value() != next.metrics.has_value()) {
    keys.push_back("metrics");
  } else if (now.metrics && (now.metrics->listen_address != next.metrics->listen_address ||
                             now.metrics->listen_port != next.metrics->listen_port)) {
    keys.push_back("metrics.listen");
  }
  if (now.output_file != next.output_file) keys.push_back("output.file");
  if (now.scheduler.max_concurrency != next.scheduler.max_concurrency)
    keys.push_back("scheduler.max_concurrency");
  if (now.scheduler.shutdown_grace != next.scheduler.shutdown_grace)
    keys.push_back("scheduler.shutdown_grace");
  if (now.collector.has_value() != next.collector.has_value()) {
    keys.push_back("collector");
  } else if (now.collector) {
    // The central-configuration poller and the heartbeat sender are made at start and end for
    // good when a reload turns them off: turning them on needs a restart.
    if (now.collector->config_url.empty() && !next.collector->config_url.empty())
      keys.push_back("collector.config_url");
    if (now.collector->heartbeat_interval.count() <= 0 &&
        next.collector->heartbeat_interval.count() > 0)
      keys.push_back("collector.heartbeat_interval");
  }
  return keys;
}

}  // namespace

int ProbeApp::run() {
  asio::io_context io(1);
  net::CurlMulti curl(io);
  ResolverPool resolvers(io);
  IdGenerator ids;
  Services services{io,     curl, resolvers, ids, SystemClock::instance(), {}, &config_.vantage,
                    nullptr};

  sinks::Fanout fanout;
  std::optional<std::string> output = options_.output ? options_.output : config_.output_file;
  if (!output && options_.once) output = "-";
  std::shared_ptr<sinks::JsonLinesSink> jsonl;
  if (output) {
    jsonl = std::make_shared<sinks::JsonLinesSink>(*output);
    fanout.add(jsonl);
  }
  std::shared_ptr<sinks::CollectorSink> collector;
  if (config_.collector) {
    collector = std::make_shared<sinks::CollectorSink>(*config_.collector);
    fanout.add(collector);
  }
  auto metrics = std::make_shared<sinks::MetricsSink>(config_.vantage);
  fanout.add(metrics);
  services.metrics = metrics.get();  // checks add their own families at start()

  SchedulerOptions sopts;
  sopts.max_concurrency = config_.scheduler.max_concurrency;
  sopts.shutdown_grace = config_.scheduler.shutdown_grace;
  sopts.once = options_.once;
  Scheduler scheduler(services, config_.vantage, fanout, sopts);
  // The checks as configured now (replaced by reloads), by id, and those whose start() was
  // called and shutdown() not yet (a removed check is shut down when its loop has ended).
  std::map<std::string, std::shared_ptr<Check>> current;
  std::map<Check*, std::shared_ptr<Check>> started;
  std::uint64_t reloads_ok = 0, reloads_failed = 0;
  double last_reload_success = 0;  // Unix seconds

  metrics->add_gauge("vantage_probe_checks_configured", "Checks in the probe's configuration",
                     [&current] { return static_cast<double>(current.size()); });
  metrics->add_labelled_counter("vantage_probe_config_reloads_total",
                                "Configuration reloads (SIGHUP), by result", "result", [&] {
                                  return std::map<std::string, double>{
                                      {"ok", static_cast<double>(reloads_ok)},
                                      {"failed", static_cast<double>(reloads_failed)}};
                                });
  metrics->add_gauge("vantage_probe_config_last_reload_success_timestamp_seconds",
                     "When the configuration was last loaded successfully (start or reload), "
                     "Unix seconds",
                     [&last_reload_success] { return last_reload_success; });
  metrics->add_gauge("vantage_probe_checks_in_flight", "Check runs in progress",
                     [&scheduler] { return scheduler.stats().in_flight; });
  metrics->add_counter("vantage_probe_runs_total", "Check attempts started",
                       [&scheduler] { return static_cast<double>(scheduler.stats().runs); });
  metrics->add_counter(
      "vantage_probe_skipped_runs_total",
      "Scheduled runs skipped because the previous run of the check overran",
      [&scheduler] { return static_cast<double>(scheduler.stats().skipped_runs); });
  metrics->add_gauge("vantage_probe_curl_transfers", "libcurl transfers in progress",
                     [&curl] { return static_cast<double>(curl.in_flight()); });
  if (jsonl) {
    metrics->add_counter("vantage_probe_output_dropped_total",
                         "Result lines dropped because the output could not keep up",
                         [jsonl] { return static_cast<double>(jsonl->dropped()); });
  }
  if (collector) {
    const auto* st = &collector->stats();
    metrics->add_gauge("vantage_probe_spool_bytes", "Bytes in the collector spool on disk",
                       [st] { return static_cast<double>(st->spool_bytes.load()); });
    metrics->add_gauge("vantage_probe_spool_results",
                       "Results spooled and not yet acknowledged by the collector",
                       [st] { return static_cast<double>(st->spool_results.load()); });
    metrics->add_counter("vantage_probe_uploaded_results_total",
                         "Results acknowledged by the collector",
                         [st] { return static_cast<double>(st->uploaded.load()); });
    metrics->add_counter("vantage_probe_upload_requests_total",
                         "Upload requests sent to the collector",
                         [st] { return static_cast<double>(st->upload_requests.load()); });
    metrics->add_counter("vantage_probe_upload_errors_total",
                         "Upload requests that failed (network error, 5xx, 429, 401/403)",
                         [st] { return static_cast<double>(st->upload_errors.load()); });
    metrics->add_labelled_counter(
        "vantage_probe_dropped_results_total",
        "Results lost before the collector acknowledged them", "reason", [st] {
          return std::map<std::string, double>{
              {"spool_full", static_cast<double>(st->dropped_spool_full.load())},
              {"spool_error", static_cast<double>(st->dropped_spool_error.load())},
              {"queue_full", static_cast<double>(st->dropped_queue_full.load())}};
        });
    metrics->add_gauge(
        "vantage_probe_spool_write_failing",
        "1 while the collector spool cannot write to its disk (full or failing): new results are "
        "dropped or acknowledgements not persisted; 0 once a write succeeds again",
        [st] { return st->spool_write_failing.load() ? 1.0 : 0.0; });
    metrics->add_labelled_counter(
        "vantage_probe_spool_write_errors_total",
        "Failed writes to the collector spool, by file (segment: results, cursor: "
        "acknowledgements, rejected: refused batches)",
        "file", [st] {
          return std::map<std::string, double>{
              {"segment", static_cast<double>(st->segment_write_errors.load())},
              {"cursor", static_cast<double>(st->cursor_write_errors.load())},
              {"rejected", static_cast<double>(st->rejected_write_errors.load())}};
        });
    metrics->add_labelled_counter(
        "vantage_probe_collector_sender_failures_total",
        "Exceptions that ended the collector sender's send or sync loop (each loop is restarted "
        "after a back-off)",
        "loop", [st] {
          return std::map<std::string, double>{
              {"send", static_cast<double>(st->send_loop_failures.load())},
              {"sync", static_cast<double>(st->sync_loop_failures.load())}};
        });
    metrics->add_gauge("vantage_probe_upload_batch_limit",
                       "Results per upload now (halved when the collector answers 413, grown "
                       "back after deliveries)",
                       [st] { return static_cast<double>(st->batch_limit.load()); });
    metrics->add_counter(
        "vantage_probe_rejected_results_total",
        "Results the collector refused (malformed, or one result too large; kept in "
        "spool/rejected)",
        [st] { return static_cast<double>(st->rejected.load()); });
  }
  metrics->add_gauge("vantage_probe_build_info", "Build information (always 1)",
                     {{"version", std::string(vantage::version())},
                      {"revision", std::string(vantage::revision())}},
                     [] { return 1.0; });

  std::unique_ptr<sinks::MetricsServer> metrics_server;
  if (config_.metrics && !options_.once) {
    metrics_server = std::make_unique<sinks::MetricsServer>(
        io, config_.metrics->listen_address, config_.metrics->listen_port,
        [metrics] { return metrics->render(); });
    log::info("metrics.listening",
              {{"address", config_.metrics->listen_address}, {"port", metrics_server->port()}});
  }

  asio::signal_set signals(io);
  int signal_count = 0;
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        // A --once run has nothing to reload into: it goes on (SIGHUP's default would kill it).
        log::info("probe.signal",
                  {{"signal", sig}, {"action", options_.once ? "ignored (--once)" : "reload"}});
        if (!options_.once) request_reload();
        wait_signal();
        return;
      }
      ++signal_count;
      log::info("probe.signal", {{"signal", sig}, {"count", signal_count}});
      if (signal_count == 1) {
        scheduler.stop();
        wait_signal();
      } else {
        log::warn("probe.stopping_now", {});
        io.stop();
      }
    });
  };
  if (options_.handle_signals) {
    signals.add(SIGTERM);
    signals.add(SIGINT);
    signals.add(SIGHUP);
    wait_signal();
  }

  const Vantage record_vantage = [&] {
    Vantage v = config_.vantage;
    v.source = Source::bgp;  // route events and BGP alerts are the BGP feed's observations
    return v;
  }();
  services.publish_record = [&fanout, record_vantage, probe_vantage = config_.vantage](
                                std::string_view kind, nlohmann::json& record) {
    // A path_result is the probe's own observation of the data plane.
    record["vantage"] = to_json(kind == "path_result" ? probe_vantage : record_vantage);
    fanout.publish_record(kind,
                          record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  };
  // Checks that listen between runs (kind bgp) start now; whatever happens next, they close
  // their sockets and threads before the event loop goes.
  struct ShutdownChecks {
    std::map<Check*, std::shared_ptr<Check>>& started;
    ~ShutdownChecks() {
      for (auto& [ptr, c] : started) c->shutdown();
    }
  } shutdown_checks{started};
  for (auto& c : config_.checks) {
    std::shared_ptr<Check> check(std::move(c));
    started.emplace(check.get(), check);
    try {
      check->start(services);
    } catch (const std::exception& e) {
      throw std::runtime_error("check " + check->id() + ": cannot start: " + e.what());
    }
    current.emplace(check->id(), check);
    scheduler.add(check);
  }
  config_.checks.clear();
  last_reload_success =
      static_cast<double>(to_unix_nanos(services.clock.utc_now())) / 1e9;  // the first load

  // --- Reload (SIGHUP, request_reload()) ----------------------------------------------------
  // Starts a check and schedules it; a check that cannot start (a port in use) is logged and
  // left out, the others run.
  auto launch = [&](const std::shared_ptr<Check>& check) {
    if (scheduler.stopping()) return;
    started.emplace(check.get(), check);
    try {
      check->start(services);
      scheduler.add(check);
    } catch (const std::exception& e) {
      log::error("probe.check_start_failed", {{"check", check->id()}, {"error", e.what()}});
      started.erase(check.get());
      check->shutdown();
      if (auto it = current.find(check->id()); it != current.end() && it->second == check)
        current.erase(it);
    }
  };
  // Stops `id`'s loop; once it has ended, shuts the old check down and starts what `current`
  // holds for that id now (a changed check's replacement), if anything.
  auto retire = [&](const std::string& id) {
    scheduler.remove(id, [&, id](std::shared_ptr<Check> old) {
      if (started.erase(old.get()) != 0) old->shutdown();
      const auto it = current.find(id);
      if (it != current.end() && !scheduler.contains(id) && !scheduler.retiring(id) &&
          started.count(it->second.get()) == 0) {
        launch(it->second);
      }
    });
  };
  auto reload = [&] {
    if (scheduler.stopping()) return;
    const std::string file = config_.file;
    ProbeConfig next;
    try {
      if (!options_.reload_config)
        throw ConfigError(file, 0, 0, "", "this probe cannot reload its configuration");
      next = options_.reload_config();
    } catch (const std::exception& e) {
      // ConfigError's text names file, line and key; the old configuration keeps running.
      ++reloads_failed;
      log::error("probe.reload_failed", {{"file", file}, {"error", e.what()}});
      return;
    }
    for (const auto& key : restart_keys(config_, next)) {
      log::warn("probe.reload_needs_restart",
                {{"key", key}, {"detail", "kept the running value; restart the probe to apply"}});
    }
    if (collector && next.collector) {
      for (const auto& key : collector->reconfigure(*next.collector)) {
        log::warn("probe.reload_needs_restart",
                  {{"key", key}, {"detail", "kept the running value; restart the probe to apply"}});
      }
      // The running spool keeps its directory and limits; the rest is the new configuration.
      CollectorConfig kept = *next.collector;
      kept.spool_dir = config_.collector->spool_dir;
      kept.spool_max_bytes = config_.collector->spool_max_bytes;
      kept.segment_max_bytes = config_.collector->segment_max_bytes;
      config_.collector = std::move(kept);
    }
    config_.config_hash = next.config_hash;
    config_.config_source = next.config_source;
    config_.central_file = next.central_file;

    std::map<std::string, std::shared_ptr<Check>> incoming;
    for (auto& c : next.checks) {
      std::shared_ptr<Check> check(std::move(c));
      incoming.emplace(check->id(), std::move(check));
    }
    std::vector<std::string> added, removed, changed;
    std::size_t unchanged = 0;
    for (const auto& [id, check] : current) {
      if (incoming.count(id) == 0) removed.push_back(id);
    }
    for (auto& [id, check] : incoming) {
      const auto it = current.find(id);
      if (it == current.end()) {
        added.push_back(id);
      } else if (it->second->common().fingerprint != check->common().fingerprint) {
        changed.push_back(id);
      } else {
        ++unchanged;  // the running check, its schedule and its in-flight run stay
      }
    }
    for (const auto& id : removed) {
      current.erase(id);
      retire(id);
    }
    for (const auto& id : changed) {
      current[id] = incoming[id];
      // Replaced when the old loop has ended (a listener's port is free again then). If the old
      // one is still being removed from an earlier reload, that removal starts this one.
      if (scheduler.contains(id)) {
        retire(id);
      } else if (!scheduler.retiring(id)) {
        launch(incoming[id]);
      }
    }
    for (const auto& id : added) {
      current[id] = incoming[id];
      if (!scheduler.retiring(id)) launch(incoming[id]);
    }
    ++reloads_ok;
    last_reload_success = static_cast<double>(to_unix_nanos(services.clock.utc_now())) / 1e9;
    log::info("probe.reloaded", {{"file", file},
                                 {"added", static_cast<std::int64_t>(added.size())},
                                 {"removed", static_cast<std::int64_t>(removed.size())},
                                 {"changed", static_cast<std::int64_t>(changed.size())},
                                 {"unchanged", static_cast<std::int64_t>(unchanged)},
                                 {"added_checks", join_ids(added)},
                                 {"removed_checks", join_ids(removed)},
                                 {"changed_checks", join_ids(changed)},
                                 {"checks", static_cast<std::int64_t>(current.size())},
                                 {"config_hash", config_.config_hash}});
  };
  {
    std::lock_guard lock(reload_mutex_);
    io_ = &io;
    reload_ = reload;
  }
  struct ForgetReload {
    ProbeApp& app;
    ~ForgetReload() {
      std::lock_guard lock(app.reload_mutex_);
      app.io_ = nullptr;
      app.reload_ = nullptr;
    }
  } forget_reload{*this};

  // --- Central configuration and heartbeats (probe/fleet/, helper P2) -----------------------
  // With collector.config_url the checks come from the collector (cached, applied through
  // request_reload()); with collector.heartbeat_url a heartbeat goes every heartbeat_interval.
  // Both read the running configuration (collector settings and token, check ids, config hash)
  // through callbacks, so a reload changes what they send. Declared after `current` and `curl`:
  // destroyed first.
  // Shared so the metrics' callbacks hold weak references only.
  std::shared_ptr<fleet::ConfigClient> config_client;
  std::shared_ptr<fleet::HeartbeatSender> heartbeat;
  if (config_.collector && !options_.once) {
    // The collector settings running now (a reload replaces config_.collector's values).
    auto running = [this] { return *config_.collector; };
    if (!config_.collector->config_url.empty()) {
      config_client = std::make_shared<fleet::ConfigClient>(
          io, curl, services.clock, config_.file, *config_.collector, [this] { request_reload(); },
          running);
      config_client->start();
      std::weak_ptr<fleet::ConfigClient> cc = config_client;
      metrics->add_labelled_counter("vantage_probe_central_config_polls_total",
                                    "Polls of the collector's central configuration, by result",
                                    "result", [cc] {
                                      const auto client = cc.lock();
                                      if (!client) return std::map<std::string, double>{};
                                      const auto& st = client->stats();
                                      return std::map<std::string, double>{
                                          {"updated", static_cast<double>(st.updates)},
                                          {"unchanged", static_cast<double>(st.unchanged)},
                                          {"not_modified", static_cast<double>(st.not_modified)},
                                          {"invalid", static_cast<double>(st.invalid)},
                                          {"failed", static_cast<double>(st.failures)}};
                                    });
      metrics->add_gauge("vantage_probe_central_config_failing",
                         "1 while the central configuration cannot be fetched or is refused (the "
                         "probe runs its last good copy)",
                         [cc] {
                           const auto client = cc.lock();
                           return client && client->failing() ? 1.0 : 0.0;
                         });
    }
    if (!config_.collector->heartbeat_url.empty()) {
      heartbeat = std::make_shared<fleet::HeartbeatSender>(
          io, curl, services.clock, config_.vantage, *config_.collector,
          [this, &current, collector] {
            fleet::HeartbeatState hs;
            for (const auto& [id, check] : current) hs.checks.push_back(id);
            hs.config_hash = config_.config_hash;
            hs.config_source = config_.config_source;
            if (collector) {
              hs.spool_results = collector->stats().spool_results.load();
              hs.spool_bytes = collector->stats().spool_bytes.load();
            }
            return hs;
          },
          running);
      heartbeat->start();
      std::weak_ptr<fleet::HeartbeatSender> hb = heartbeat;
      metrics->add_labelled_counter(
          "vantage_probe_heartbeats_total", "Heartbeats sent to the collector, by result", "result",
          [hb] {
            const auto sender = hb.lock();
            if (!sender) return std::map<std::string, double>{};
            return std::map<std::string, double>{
                {"accepted", static_cast<double>(sender->stats().accepted)},
                {"failed", static_cast<double>(sender->stats().failed)}};
          });
    }
  }
  // --- end of central configuration and heartbeats -------------------------------------------

  log::info("probe.started", {{"vantage_point", config_.vantage.probe_id},
                              {"checks", static_cast<std::int64_t>(current.size())},
                              {"once", options_.once}});
  bool done = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await scheduler.run();
        if (metrics_server) metrics_server->stop();
        const auto budget = std::chrono::duration_cast<std::chrono::milliseconds>(std::max(
            config_.scheduler.shutdown_grace, std::chrono::nanoseconds(std::chrono::seconds(1))));
        co_await fanout.close(budget);
        done = true;
        signals.cancel();
        io.stop();
      },
      log::LogException{"probe.signal_handler_failed"});
  io.run();
  if (!done) {
    // Stopped hard (second signal): still persist what the collector sink holds.
    asio::io_context closer;
    asio::co_spawn(closer, fanout.close(std::chrono::milliseconds(500)),
                   log::LogException{"probe.sink_close_failed"});
    closer.run();
  }
  const auto& st = scheduler.stats();
  log::info("probe.stopped", {{"results", static_cast<std::int64_t>(st.results)},
                              {"failed", static_cast<std::int64_t>(st.failed_results)}});
  if (options_.once) {
    if (collector) {
      const auto& cs = collector->stats();
      const std::uint64_t pending = cs.spool_results.load();
      const std::uint64_t lost = cs.dropped_spool_full.load() + cs.dropped_spool_error.load() +
                                 cs.dropped_queue_full.load() + cs.rejected.load();
      if (pending > 0 || lost > 0) {
        log::error("probe.undelivered",
                   {{"spooled", static_cast<std::int64_t>(pending)},
                    {"lost_or_rejected", static_cast<std::int64_t>(lost)},
                    {"url", config_.collector->url},
                    {"detail",
                     "results were not delivered to the collector before the shutdown "
                     "budget ran out (exit status 3); spooled ones are sent by the "
                     "next run with the same spool_dir"}});
        return kExitUndelivered;
      }
    }
    return st.failed_results > 0 ? kExitCheckFailed : kExitOk;
  }
  return kExitOk;
}

}  // namespace vantage::probe
