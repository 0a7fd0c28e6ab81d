#include "probe/sinks/collector_sink.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <random>

#include "common/log.hpp"
#include "probe/net/curl_multi.hpp"
#include "probe/net/http_client.hpp"
#include "probe/sinks/spool.hpp"

namespace vantage::probe::sinks {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {
constexpr std::size_t kMaxQueued = 200000;        // lines waiting for the sender thread
constexpr std::size_t kMaxBatchBytes = 4u << 20;  // per request
}  // namespace

struct CollectorSink::Worker {
  CollectorConfig config;
  std::shared_ptr<Stats> stats;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::unique_ptr<net::CurlMulti> curl;
  std::unique_ptr<Spool> spool;
  asio::steady_timer wake{io};
  asio::steady_timer sync_timer{io};
  std::mutex mutex;
  std::vector<std::string> queue;  // guarded by mutex
  bool stopping = false;           // sender thread only
  std::chrono::steady_clock::time_point stop_deadline{};
  bool finished = false;  // guarded by mutex
  std::condition_variable finished_cv;
  std::mt19937_64 rng{std::random_device{}()};
  std::size_t batch_limit = 0;

  void drain_queue() {
    std::vector<std::string> lines;
    {
      std::lock_guard lock(mutex);
      lines.swap(queue);
    }
    if (lines.empty()) return;
    try {
      const auto before = spool->dropped();
      spool->append(lines);
      stats->dropped_spool_full += spool->dropped() - before;
    } catch (const std::exception& e) {
      // A full or broken disk: count and keep running; the results are lost, say so loudly.
      stats->dropped_spool_full += lines.size();
      log::error(
          "collector.spool_write_failed",
          {{"error", e.what()}, {"results_dropped", static_cast<std::int64_t>(lines.size())}});
    }
    update_gauges();
  }

  void update_gauges() {
    stats->spool_bytes = spool->bytes();
    stats->spool_results = spool->pending_results();
    stats->rejected = spool->rejected();
  }

  // Every flush interval: move what publish() queued onto disk and make it durable, whatever the
  // sender is doing (it may be backing off for a minute while the collector is down).
  asio::awaitable<void> sync_loop() {
    while (!stopping) {
      sync_timer.expires_after(config.flush_interval);
      co_await sync_timer.async_wait(asio::as_tuple(asio::use_awaitable));
      drain_queue();
      spool->sync();
    }
  }

  std::chrono::milliseconds backoff(int failures) {
    const auto cap = std::chrono::duration_cast<std::chrono::milliseconds>(config.backoff_max);
    auto base = std::chrono::duration_cast<std::chrono::milliseconds>(config.backoff_initial);
    for (int i = 1; i < failures && base < cap; ++i) base *= 2;
    base = std::min(base, cap);
    // "Equal jitter" (AWS architecture blog, "Exponential Backoff And Jitter"): half fixed, half
    // random, so a fleet of probes does not retry in step but none hammers a recovering collector.
    std::uniform_int_distribution<long long> d(base.count() / 2,
                                               std::max<long long>(base.count(), 1));
    return std::chrono::milliseconds(d(rng));
  }

  asio::awaitable<void> sleep(std::chrono::milliseconds d) {
    wake.expires_after(d);
    co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  asio::awaitable<void> send_loop() {
    int failures = 0;
    batch_limit = static_cast<std::size_t>(config.batch_max_results);
    for (;;) {
      drain_queue();
      if (stopping && std::chrono::steady_clock::now() >= stop_deadline) break;
      SpoolBatch batch = spool->read_batch(batch_limit, kMaxBatchBytes);
      if (batch.empty()) {
        if (stopping) break;
        // Wait for results (publish wakes us) or the flush interval.
        co_await sleep(
            std::chrono::duration_cast<std::chrono::milliseconds>(config.flush_interval));
        continue;
      }
      if (!stopping && batch.count < batch_limit && failures == 0) {
        // Coalesce: give more results one flush interval to arrive, then send.
        co_await sleep(
            std::chrono::duration_cast<std::chrono::milliseconds>(config.flush_interval));
        drain_queue();
        batch = spool->read_batch(batch_limit, kMaxBatchBytes);
      }
      net::HttpRequest req;
      req.method = "POST";
      req.url = config.url;
      req.body = batch.body;
      req.headers = {{"Content-Type", "application/x-ndjson"},
                     {"Authorization", "Bearer " + config.token}};
      req.follow_redirects = false;
      req.fresh_connection = false;  // keep-alive to the collector
      req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config.request_timeout);
      if (stopping) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            stop_deadline - std::chrono::steady_clock::now());
        req.timeout = std::clamp(left, std::chrono::milliseconds(1), req.timeout);
      }
      req.connect_timeout = req.timeout;
      req.tls.ca_file = config.ca_file;
      req.tls.insecure_skip_verify = config.insecure_skip_verify;
      req.max_body_bytes = 4096;
      ++stats->upload_requests;
      net::HttpExchange ex;
      try {
        ex = co_await net::http_exchange(*curl, req);
      } catch (const std::exception&) {
        break;  // cancelled at shutdown
      }
      std::optional<std::chrono::milliseconds> retry_after;
      if (ex.completed() && ex.status >= 200 && ex.status < 300) {
        spool->ack(batch);
        stats->uploaded += batch.count;
        failures = 0;
        update_gauges();
        continue;
      }
      if (ex.completed() && ex.status == 413 && batch_limit > 1) {
        batch_limit = std::max<std::size_t>(1, batch.count / 2);
        log::warn("collector.batch_too_large",
                  {{"results", static_cast<std::int64_t>(batch.count)},
                   {"next_batch_limit", static_cast<std::int64_t>(batch_limit)}});
        continue;
      }
      if (ex.completed() && (ex.status == 400 || ex.status == 413 || ex.status == 422)) {
        // The collector says the data itself is bad: retrying cannot help. Keep it on disk.
        spool->reject(batch);
        update_gauges();
        log::error("collector.batch_rejected", {{"status", ex.status},
                                                {"results", static_cast<std::int64_t>(batch.count)},
                                                {"kept_in", spool->dir() + "/rejected"},
                                                {"response", ex.body.substr(0, 300)}});
        continue;
      }
      ++stats->upload_errors;
      ++failures;
      if (ex.completed() && (ex.status == 429 || ex.status == 503)) {
        if (const std::string* ra = ex.header("retry-after")) {
          if (!ra->empty() && ra->find_first_not_of("0123456789") == std::string::npos &&
              ra->size() < 7) {
            retry_after = std::chrono::seconds(std::stoi(*ra));
          }
        }
      }
      const auto wait =
          retry_after
              ? std::min(*retry_after,
                         std::chrono::duration_cast<std::chrono::milliseconds>(config.backoff_max))
              : backoff(failures);
      log::warn("collector.upload_failed",
                {{"status", ex.status},
                 {"error", ex.completed() ? "" : ex.error_text},
                 {"results", static_cast<std::int64_t>(batch.count)},
                 {"retry_in_ms", static_cast<std::int64_t>(wait.count())}});
      if (stopping) break;
      co_await sleep(wait);
    }
    spool->sync();
    update_gauges();
    work.reset();
    sync_timer.cancel();
    io.stop();  // nothing else may keep the thread alive (libcurl's idle timer, a wake-up)
  }

  void run() {
    try {
      asio::co_spawn(io, send_loop(), asio::detached);
      asio::co_spawn(io, sync_loop(), asio::detached);
      io.run();
    } catch (const std::exception& e) {
      log::error("collector.sender_failed", {{"error", e.what()}});
    }
    {
      std::lock_guard lock(mutex);
      finished = true;
    }
    finished_cv.notify_all();
  }
};

CollectorSink::CollectorSink(CollectorConfig config)
    : config_(std::move(config)), stats_(std::make_shared<Stats>()) {
  worker_ = std::make_unique<Worker>();
  worker_->config = config_;
  worker_->stats = stats_;
  worker_->spool = std::make_unique<Spool>(
      SpoolOptions{config_.spool_dir, config_.spool_max_bytes, config_.segment_max_bytes});
  worker_->curl = std::make_unique<net::CurlMulti>(worker_->io);
  worker_->update_gauges();
  if (worker_->spool->pending_results() > 0) {
    log::info("collector.spool_recovered",
              {{"results", static_cast<std::int64_t>(worker_->spool->pending_results())},
               {"dir", config_.spool_dir}});
  }
  thread_ = std::thread([w = worker_.get()] { w->run(); });
}

CollectorSink::~CollectorSink() {
  if (thread_.joinable()) {
    asio::post(worker_->io, [w = worker_.get()] {
      w->stopping = true;
      w->stop_deadline = std::chrono::steady_clock::now();
      w->wake.cancel();
    });
    thread_.join();
  }
}

void CollectorSink::publish(const CheckResult& result, const PublishInfo&) {
  enqueue(to_ndjson_line(result));
}

void CollectorSink::publish_record(std::string_view, const std::string& line) { enqueue(line); }

void CollectorSink::enqueue(std::string line) {
  {
    std::lock_guard lock(worker_->mutex);
    if (worker_->queue.size() >= kMaxQueued) {
      ++stats_->dropped_queue_full;
      return;
    }
    worker_->queue.push_back(std::move(line));
  }
  // No wake-up per result: the sender drains the queue to the spool at least every flush interval
  // (a post per result would cost the probe's loop a syscall each time).
}

asio::awaitable<void> CollectorSink::close(std::chrono::milliseconds budget) {
  if (!thread_.joinable()) co_return;
  asio::post(worker_->io, [w = worker_.get(), budget] {
    w->stopping = true;
    w->stop_deadline = std::chrono::steady_clock::now() + budget;
    w->wake.cancel();
  });
  // Blocking the (otherwise idle) main loop at shutdown for at most budget + a margin.
  bool done = false;
  {
    std::unique_lock lock(worker_->mutex);
    done = worker_->finished_cv.wait_for(lock, budget + 2s, [&] { return worker_->finished; });
  }
  if (!done) worker_->io.stop();
  thread_.join();
  co_return;
}

}  // namespace vantage::probe::sinks
