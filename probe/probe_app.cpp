#include "probe/probe_app.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <nlohmann/json.hpp>

#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/version.hpp"
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
  Scheduler scheduler(services, config_.checks, config_.vantage, fanout, sopts);

  metrics->add_gauge("vantage_probe_checks_configured", "Checks in the probe's configuration",
                     [n = config_.checks.size()] { return static_cast<double>(n); });
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
    wait_signal();
  }

  const Vantage record_vantage = [&] {
    Vantage v = config_.vantage;
    v.source = Source::bgp;  // route events and BGP alerts are the BGP feed's observations
    return v;
  }();
  services.publish_record = [&fanout, record_vantage](std::string_view kind,
                                                      nlohmann::json& record) {
    record["vantage"] = to_json(record_vantage);
    fanout.publish_record(kind,
                          record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  };
  // Checks that listen between runs (kind bgp) start now; whatever happens next, they close
  // their sockets and threads before the event loop goes.
  struct ShutdownChecks {
    std::vector<CheckPtr>& checks;
    ~ShutdownChecks() {
      for (auto& c : checks) c->shutdown();
    }
  } shutdown_checks{config_.checks};
  for (auto& c : config_.checks) {
    try {
      c->start(services);
    } catch (const std::exception& e) {
      throw std::runtime_error("check " + c->id() + ": cannot start: " + e.what());
    }
  }

  log::info("probe.started", {{"vantage_point", config_.vantage.probe_id},
                              {"checks", static_cast<std::int64_t>(config_.checks.size())},
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
  if (options_.once) return st.failed_results > 0 ? 1 : 0;
  return 0;
}

}  // namespace vantage::probe
