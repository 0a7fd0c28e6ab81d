#include "beacon-collector/collector_app.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <csignal>
#include <set>
#include <tuple>

#include "beacon-collector/enrich/geoip.hpp"
#include "beacon-collector/http/handler.hpp"
#include "beacon-collector/http/server.hpp"
#include "beacon-collector/metrics.hpp"
#include "beacon-collector/store/retention.hpp"
#include "beacon-collector/store/sqlite_store.hpp"
#include "common/config_node.hpp"
#include "common/log.hpp"
#include "common/rlimit.hpp"

namespace vantage::collector {

struct CollectorApp::Impl {
  // As started: the restart-only keys (listen, threads, tls, store.*, max_connections) stay
  // these; the handler holds the configuration in force (reloaded on SIGHUP).
  CollectorConfig config;
  store::SqliteStore store;
  // Browser uploads are durable here before their 204 (store/segment_log.hpp); what a crash
  // left unstored is replayed into `store` at start, before anything else writes to it.
  store::SegmentLog log;
  store::ReplayStats replayed;
  // Data retention (store.retention), run by the writer between commits; null: kept forever.
  std::unique_ptr<store::Retention> retention;
  store::Writer writer;
  Metrics metrics;
  Handler handler;
  std::unique_ptr<Server> server;
  std::atomic<std::uint64_t> reloads_ok{0}, reloads_failed{0};
  // Lookup errors counted by GeoIp objects a reload replaced (the counter stays monotonic).
  std::atomic<std::uint64_t> retired_lookup_errors{0};

  explicit Impl(CollectorConfig c)
      : config(std::move(c)),
        store(config.store.sqlite_path),
        log(config.store.log_dir, config.store.log_segment_bytes),
        replayed(store::recover_log(log, store, config.store.batch_records)),
        retention(config.store.retention.any()
                      ? std::make_unique<store::Retention>(
                            config.store.sqlite_path, config.store.retention,
                            store::PruneOptions{config.store.prune_interval,
                                                config.store.prune_batch_rows},
                            SystemClock::instance())
                      : nullptr),
        writer(store, config.store.queue_records, config.store.batch_records,
               config.store.commit_interval, retention.get()),
        handler(std::make_shared<const CollectorConfig>(config), metrics, writer,
                std::make_shared<enrich::GeoIp>(config.geoip.city_db, config.geoip.asn_db,
                                                config.geoip.isp_db)) {
    writer.attach_log(&log);
    metrics.add_counter("vantage_collector_store_log_syncs_total",
                        "fdatasync calls of the segment log (each covers a group of uploads).",
                        [this] { return static_cast<double>(log.syncs()); });
    metrics.add_counter("vantage_collector_store_log_errors_total",
                        "Segment log writes or syncs that failed (their uploads got 503).",
                        [this] { return static_cast<double>(log.sync_errors()); });
    metrics.add_counter("vantage_collector_store_log_replayed_uploads_total",
                        "Uploads replayed from the segment log into the store at start.",
                        [this] { return static_cast<double>(replayed.replayed); });
    metrics.add_gauge("vantage_collector_store_queue_records", "Records waiting for the writer.",
                      [this] { return static_cast<double>(writer.depth()); });
    metrics.add_gauge("vantage_collector_store_queue_capacity_records",
                      "Most records the queue holds before uploads get 503.",
                      [this] { return static_cast<double>(writer.capacity()); });
    metrics.add_counter("vantage_collector_store_commits_total", "Transactions committed.",
                        [this] { return static_cast<double>(writer.commits()); });
    metrics.add_counter("vantage_collector_store_committed_records_total",
                        "Records in committed transactions.",
                        [this] { return static_cast<double>(writer.committed_records()); });
    metrics.add_counter("vantage_collector_store_write_errors_total",
                        "Failed transaction attempts (retried).",
                        [this] { return static_cast<double>(writer.write_errors()); });
    metrics.add_counter("vantage_collector_store_commit_seconds_total",
                        "Time spent writing and committing batches.",
                        [this] { return writer.commit_seconds_total(); });
    metrics.add_gauge(
        "vantage_collector_store_file_bytes",
        "Size of the SQLite database file and its write-ahead log.",
        [this] { return static_cast<double>(store::sqlite_file_bytes(config.store.sqlite_path)); });
    if (retention) {
      for (store::Table t : store::kTables) {
        if (!config.store.retention[t]) continue;
        metrics.add_labelled_counter(
            "vantage_collector_store_pruned_records_total", "table", store::table_name(t),
            "Rows deleted by retention (store.retention), by table.",
            [this, t] { return static_cast<double>(retention->pruned_records(t)); });
      }
      metrics.add_counter("vantage_collector_store_prune_errors_total",
                          "Prune or vacuum transactions that failed (retried at the next turn).",
                          [this] { return static_cast<double>(retention->errors()); });
      metrics.add_counter("vantage_collector_store_prune_seconds_total",
                          "Time the writer spent in retention's delete and vacuum transactions.",
                          [this] { return retention->prune_seconds_total(); });
    }
    metrics.add_counter("vantage_collector_geoip_lookup_errors_total",
                        "GeoIP lookups that hit a corrupt database record.", [this] {
                          return static_cast<double>(retired_lookup_errors.load() +
                                                     handler.geoip()->lookup_errors());
                        });
    metrics.add_counter("vantage_collector_geoip_reloads_total", "Successful SIGHUP reloads.",
                        [this] { return static_cast<double>(reloads_ok); });
    metrics.add_counter("vantage_collector_geoip_reload_failures_total",
                        "SIGHUP reloads that failed (the previous databases stay in use).",
                        [this] { return static_cast<double>(reloads_failed); });
    metrics.add_gauge("vantage_collector_vantage_points",
                      "Vantage points known to the store (rows of vantage_points).",
                      [this] { return static_cast<double>(store.vantage_points()); });
  }

  void reload_geoip(CollectorConfig& next, const CollectorConfig& live,
                    std::shared_ptr<enrich::GeoIp>& geoip) {
    const auto paths = [](const GeoIpConfig& g) { return std::tie(g.city_db, g.asn_db, g.isp_db); };
    if (paths(next.geoip) == paths(live.geoip)) {
      // The same files: open them again (geoipupdate replaced them).
      std::string error;
      if (geoip->reload(error)) {
        ++reloads_ok;
        log::info("geoip.reloaded");
      } else {
        ++reloads_failed;
        log::error("geoip.reload_failed", {{"error", error}});
      }
      return;
    }
    try {
      auto fresh =
          std::make_shared<enrich::GeoIp>(next.geoip.city_db, next.geoip.asn_db, next.geoip.isp_db);
      retired_lookup_errors += geoip->lookup_errors();
      geoip = std::move(fresh);
      ++reloads_ok;
      log::info("geoip.reloaded");
    } catch (const std::exception& e) {
      ++reloads_failed;
      next.geoip = live.geoip;  // the databases in use stay, and so do their paths
      log::error("geoip.reload_failed", {{"error", e.what()}});
    }
  }

  // SIGHUP: re-reads and validates the file; on error keeps everything as it is.
  void reload() {
    const std::string& file = config.source_file;
    CollectorConfig next;
    try {
      next = load_collector_config(file);
    } catch (const std::exception& e) {  // ConfigError; anything else the same way
      metrics.config_reload("failed");
      log::error(
          "collector.reload_failed",
          {{"file", file}, {"error", e.what()}, {"detail", "the running configuration stays"}});
      return;
    }
    for (const auto& key : restart_only_changes(config, next)) {
      log::warn("collector.reload_needs_restart",
                {{"key", key},
                 {"detail", "changed in the file; the running value stays until a restart"}});
    }
    next = keep_restart_only(config, std::move(next));
    const std::shared_ptr<const CollectorConfig> live = handler.config();
    std::shared_ptr<enrich::GeoIp> geoip = handler.geoip();
    reload_geoip(next, *live, geoip);
    std::set<std::string_view> probes;
    for (const auto& p : next.probes) probes.insert(p.probe_id);
    const auto tokens = static_cast<std::int64_t>(next.probes.size());
    const auto origins = static_cast<std::int64_t>(next.allowed_origins.size());
    const auto vantage_points = static_cast<std::int64_t>(probes.size());
    const std::string config_dir = next.fleet.config_dir;
    log::set_level(next.log_level);
    handler.reload(std::make_shared<const CollectorConfig>(std::move(next)), std::move(geoip));
    metrics.config_reload("ok");
    log::info("collector.reloaded", {{"file", file},
                                     {"probes", vantage_points},
                                     {"tokens", tokens},
                                     {"allowed_origins", origins},
                                     {"fleet_config_dir", config_dir}});
  }
};

namespace {
sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}
}  // namespace

namespace {
// Descriptors kept for what is not a connection: the store (database, WAL, shared memory),
// GeoIP databases, the log file, epoll and eventfds of each thread, the reserve descriptors.
constexpr std::uint64_t kReservedDescriptors = 128;
constexpr int kMaxDerivedConnections = 16384;
}  // namespace

CollectorApp::CollectorApp(CollectorConfig config) {
  // Block the signals before any thread starts, so that only run()'s sigwait sees them.
  const sigset_t set = handled_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  const OpenFileLimit files = raise_open_file_limit();
  const std::uint64_t usable =
      files.soft > kReservedDescriptors * 2 ? files.soft - kReservedDescriptors : files.soft / 2;
  if (config.limits.max_connections == 0) {
    config.limits.max_connections =
        static_cast<int>(std::clamp<std::uint64_t>(usable, 16, kMaxDerivedConnections));
  } else if (static_cast<std::uint64_t>(config.limits.max_connections) > usable) {
    log::warn("collector.max_connections_over_file_limit",
              {{"max_connections", static_cast<std::int64_t>(config.limits.max_connections)},
               {"open_file_limit", static_cast<std::int64_t>(files.soft)},
               {"detail",
                "accept() will fail with EMFILE first; idle connections are then closed "
                "for new ones"}});
  }
  log::info("collector.open_file_limit",
            {{"soft", static_cast<std::int64_t>(std::min<std::uint64_t>(files.soft, INT64_MAX))},
             {"hard", static_cast<std::int64_t>(std::min<std::uint64_t>(files.hard, INT64_MAX))},
             {"soft_at_start",
              static_cast<std::int64_t>(std::min<std::uint64_t>(files.soft_before, INT64_MAX))},
             {"max_connections", static_cast<std::int64_t>(config.limits.max_connections)}});
  // The socket first: a second collector on the same address stops here, before it opens (and
  // writes to) the store or anything else.
  Listener listener(config);
  impl_ = std::make_unique<Impl>(std::move(config));
  impl_->server =
      std::make_unique<Server>(impl_->config, impl_->handler, impl_->metrics, std::move(listener));
  Server* server = impl_->server.get();
  impl_->metrics.add_gauge("vantage_collector_connections_open", "Connections open now.",
                           [server] { return static_cast<double>(server->open_connections()); });
  impl_->metrics.add_gauge(
      "vantage_collector_connections_max",
      "limits.max_connections (derived from the open-file limit when 0).",
      [this] { return static_cast<double>(impl_->config.limits.max_connections); });
}

CollectorApp::~CollectorApp() {
  if (impl_ && impl_->server) {
    impl_->server->shutdown(std::chrono::milliseconds(0));
    impl_->writer.stop();
  }
}

std::uint16_t CollectorApp::port() const noexcept { return impl_->server->port(); }

int CollectorApp::run() {
  auto& app = *impl_;
  app.server->start();
  log::info("collector.listening", {{"address", app.config.listen_address},
                                    {"port", static_cast<std::int64_t>(port())},
                                    {"tls", app.config.tls.has_value()},
                                    {"threads", static_cast<std::int64_t>(app.config.threads)},
                                    {"store", app.store.describe()}});
  const sigset_t set = handled_signals();
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      app.reload();
      continue;
    }
    log::info("collector.stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    break;
  }
  // Stop taking requests first, then commit what was acknowledged or queued.
  app.server->shutdown(app.handler.config()->shutdown_timeout);
  app.writer.stop();
  log::info("collector.stopped",
            {{"committed_records", static_cast<std::int64_t>(app.writer.committed_records())}});
  return 0;
}

}  // namespace vantage::collector
