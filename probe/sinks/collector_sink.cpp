#include "probe/sinks/collector_sink.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <nlohmann/json.hpp>
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
constexpr std::size_t kMaxLoggedResponse = 300;   // bytes of the collector's answer in a log line
constexpr auto kLogInterval = 10s;                // for lines that can repeat

// The start of the collector's answer (a JSON error object) for a log line: at most
// kMaxLoggedResponse bytes, cut at a UTF-8 character boundary, without trailing whitespace.
std::string response_excerpt(const std::string& body) {
  std::size_t n = std::min(body.size(), kMaxLoggedResponse);
  if (n < body.size()) {
    while (n > 0 && (static_cast<unsigned char>(body[n]) & 0xC0) == 0x80) --n;
  }
  while (n > 0 && std::isspace(static_cast<unsigned char>(body[n - 1]))) --n;
  return body.substr(0, n);
}

}  // namespace

// Why an upload failed, in one line: the collector's own `error` (its JSON error object), else
// libcurl's error, else the start of the answer, else the status's meaning.
std::string upload_error_text(const net::HttpExchange& ex) {
  if (!ex.body.empty()) {
    const auto doc = nlohmann::json::parse(ex.body, nullptr, false);
    if (doc.is_object()) {
      const auto it = doc.find("error");
      if (it != doc.end() && it->is_string() && !it->get<std::string>().empty())
        return it->get<std::string>();
    }
  }
  if (!ex.error_text.empty()) return ex.error_text;
  if (ex.cancelled) return "cancelled";
  if (!ex.body.empty()) return response_excerpt(ex.body);
  if (ex.status != 0) return "HTTP " + std::to_string(ex.status) + " with an empty body";
  return "no response";
}

namespace {

std::string describe(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}
}  // namespace

struct CollectorSink::Worker {
  enum class Loop { send, sync };

  CollectorConfig config;
  std::shared_ptr<Stats> stats;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::unique_ptr<net::CurlMulti> curl;
  std::unique_ptr<Spool> spool;
  asio::steady_timer wake{io};
  asio::steady_timer sync_timer{io};
  asio::steady_timer send_restart{io};
  asio::steady_timer sync_restart{io};
  std::mutex mutex;
  std::vector<std::string> queue;  // guarded by mutex
  bool stopping = false;           // sender thread only
  std::chrono::steady_clock::time_point stop_deadline{};
  bool finished = false;  // guarded by mutex
  std::condition_variable finished_cv;
  std::mt19937_64 rng{std::random_device{}()};
  std::size_t batch_limit = 0;
  int deliveries_at_limit = 0;  // successful uploads since batch_limit last changed

  // Disk trouble, for log lines once per episode rather than once per write.
  bool segment_failing = false;
  bool cursor_failing = false;
  std::uint64_t dropped_while_failing = 0;
  std::uint64_t seen_cursor_errors = 0;
  std::uint64_t seen_rejected_errors = 0;

  // Everything that can repeat at the rate of writes or requests is rate-limited.
  log::RateLimited spool_write_log{kLogInterval};
  log::RateLimited spool_sync_log{kLogInterval};
  log::RateLimited cursor_write_log{kLogInterval};
  log::RateLimited rejected_write_log{kLogInterval};
  log::RateLimited recovered_log{kLogInterval};
  std::unique_ptr<log::RateLimited> upload_failed_log =
      std::make_unique<log::RateLimited>(kLogInterval);  // new for each new kind of failure
  log::RateLimited batch_log{kLogInterval};
  log::RateLimited set_aside_log{kLogInterval};
  log::RateLimited sender_failed_log{kLogInterval};
  std::string last_upload_failure;  // "<status> <curl code> <error>" of the last one logged

  void drain_queue() {
    std::vector<std::string> lines;
    {
      std::lock_guard lock(mutex);
      lines.swap(queue);
    }
    if (lines.empty()) return;
    const auto evicted_before = spool->dropped();
    const SpoolAppend written = spool->append(lines);
    stats->dropped_spool_full += spool->dropped() - evicted_before;
    if (written.error) {
      // A full or broken disk: the results not written are lost; count them and keep running.
      // Results already spooled are still sent, and the next drain tries the disk again.
      const std::uint64_t lost = lines.size() - written.lines;
      stats->dropped_spool_error += lost;
      dropped_while_failing += lost;
      segment_failing = true;
      spool_write_log.write(log::Level::error, "collector.spool_write_failed",
                            {{"error", written.error.message()},
                             {"dir", spool->dir()},
                             {"results_dropped", lost},
                             {"results_dropped_since_failing", dropped_while_failing}});
    } else if (segment_failing) {
      segment_failing = false;
      recovered_log.write(log::Level::info, "collector.spool_write_recovered",
                          {{"dir", spool->dir()}, {"results_dropped", dropped_while_failing}});
      dropped_while_failing = 0;
    }
    observe_spool();
  }

  // After every spool operation: copies its state into Stats and logs new cursor and rejected/
  // write errors (segment errors are logged by drain_queue and sync_loop, which know the cost).
  void observe_spool() {
    stats->spool_bytes = spool->bytes();
    stats->spool_results = spool->pending_results();
    stats->rejected = spool->rejected();
    stats->segment_write_errors = spool->write_errors(SpoolFile::segment);
    stats->rejected_write_errors = spool->write_errors(SpoolFile::rejected);
    stats->cursor_write_errors = spool->write_errors(SpoolFile::cursor);
    stats->spool_write_failing = spool->write_failing();
    if (const auto n = spool->write_errors(SpoolFile::cursor); n != seen_cursor_errors) {
      seen_cursor_errors = n;
      cursor_failing = true;
      cursor_write_log.write(
          log::Level::error, "collector.spool_cursor_write_failed",
          {{"error", spool->last_error(SpoolFile::cursor).message()},
           {"file", spool->dir() + "/cursor"},
           // Delivery goes on; the cost is only after a restart.
           {"effect", "results delivered since are sent again after a restart (deduplicated)"}});
    } else if (cursor_failing && !spool->cursor_failing()) {
      cursor_failing = false;
      recovered_log.write(log::Level::info, "collector.spool_cursor_write_recovered",
                          {{"file", spool->dir() + "/cursor"}});
    }
    if (const auto n = spool->write_errors(SpoolFile::rejected); n != seen_rejected_errors) {
      seen_rejected_errors = n;
      rejected_write_log.write(log::Level::error, "collector.spool_rejected_write_failed",
                               {{"error", spool->last_error(SpoolFile::rejected).message()},
                                {"dir", spool->dir() + "/rejected"},
                                {"effect", "the refused batch stays in the spool and is retried"}});
    }
  }

  // Every flush interval: move what publish() queued onto disk and make it durable, whatever the
  // sender is doing (it may be backing off for a minute while the collector is down).
  asio::awaitable<void> sync_loop() {
    while (!stopping) {
      sync_timer.expires_after(config.flush_interval);
      co_await sync_timer.async_wait(asio::as_tuple(asio::use_awaitable));
      drain_queue();
      if (const auto ec = spool->sync()) {
        segment_failing = true;
        spool_sync_log.write(log::Level::error, "collector.spool_sync_failed",
                             {{"error", ec.message()}, {"dir", spool->dir()}});
      }
      observe_spool();
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

  void set_batch_limit(std::size_t limit) {
    batch_limit = limit;
    deliveries_at_limit = 0;
    stats->batch_limit = limit;
  }

  // One oversized result made us halve the batch; it should not throttle every upload after it.
  void delivered() {
    const auto max = static_cast<std::size_t>(config.batch_max_results);
    if (batch_limit >= max || ++deliveries_at_limit < kGrowAfterSuccesses) return;
    set_batch_limit(std::min(max, batch_limit * 2));
  }

  // Moves a batch the collector refused for good into rejected/. False when that copy could not
  // be written: the batch stays pending (and is sent again after a back-off).
  bool set_aside(const SpoolBatch& batch, const net::HttpExchange& ex, std::string_view event,
                 std::string_view why) {
    const bool kept = !spool->reject(batch);
    observe_spool();
    if (!kept) return false;
    set_aside_log.write(log::Level::error, event,
                        {{"status", ex.status},
                         {"results", batch.count},
                         {"bytes", batch.body.size()},
                         {"why", why},
                         {"kept_in", spool->dir() + "/rejected"},
                         {"response", response_excerpt(ex.body)}});
    return true;
  }

  asio::awaitable<void> send_loop() {
    int failures = 0;
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
      } catch (...) {
        // Cancelled at shutdown. Anything else is the supervisor's (see start()): a bare break
        // here would end the sender for good.
        if (stopping) break;
        throw;
      }
      std::optional<std::chrono::milliseconds> retry_after;
      if (ex.completed() && ex.status >= 200 && ex.status < 300) {
        // Counted first: the collector has them, whatever happens to our cursor file.
        stats->uploaded += batch.count;
        if (!last_upload_failure.empty()) {
          log::info("collector.upload_recovered", {{"failed_attempts", failures}});
          last_upload_failure.clear();
        }
        spool->ack(batch);  // a cursor write error is logged and counted by observe_spool()
        observe_spool();
        failures = 0;
        delivered();
        continue;
      }
      if (ex.completed() && ex.status == 413 && batch.count > 1) {
        // Too large for the collector (or a proxy in front of it): halve until it fits. Never
        // set aside more than one result for its size: the others may be fine.
        set_batch_limit(std::max<std::size_t>(1, batch.count / 2));
        batch_log.write(log::Level::warn, "collector.batch_too_large",
                        {{"results", batch.count},
                         {"bytes", batch.body.size()},
                         {"next_batch_limit", batch_limit}});
        continue;
      }
      bool set_aside_failed = false;
      if (ex.completed() && ex.status == 413) {
        // A single result larger than the collector accepts can never be delivered.
        if (set_aside(batch, ex, "collector.result_too_large",
                      "one result is larger than the collector accepts")) {
          continue;
        }
        set_aside_failed = true;
      } else if (ex.completed() && (ex.status == 400 || ex.status == 422)) {
        // The collector says the data itself is bad: retrying cannot help. Keep it on disk.
        if (set_aside(batch, ex, "collector.batch_rejected", "the collector refused the data")) {
          continue;
        }
        set_aside_failed = true;
      }
      ++failures;
      if (!set_aside_failed) ++stats->upload_errors;
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
      if (set_aside_failed) {
        // Already logged (collector.spool_rejected_write_failed); just wait for the disk.
      } else {
        // The collector's answer says why ({"error":"unknown token"}, a proxy's page, …): its
        // status and error text, whether or not libcurl also saw a transport error (a collector
        // that answers 403 before reading the whole batch and closes).
        // A new kind of failure (the collector came up and now says 403) is logged at once;
        // the same one repeating at most every kLogInterval.
        const std::string error = upload_error_text(ex);
        // libcurl's text varies per attempt ("after 0 ms"): its code says what kind it is.
        std::string kind = std::to_string(ex.status) + " " + std::to_string(ex.curl_code) + " " +
                           (ex.curl_code == 0 ? error : std::string());
        const std::initializer_list<log::Field> fields = {{"status", ex.status},
                                                          {"error", error},
                                                          {"response", response_excerpt(ex.body)},
                                                          {"results", batch.count},
                                                          {"retry_in_ms", wait.count()}};
        if (kind != last_upload_failure) {
          last_upload_failure = std::move(kind);
          upload_failed_log = std::make_unique<log::RateLimited>(kLogInterval);  // writes now
        }
        upload_failed_log->write(log::Level::warn, "collector.upload_failed", fields);
      }
      if (stopping) break;
      co_await sleep(wait);
    }
  }

  // Starts a loop with a completion handler. asio::detached would drop the loop's exception
  // (asio#1111), and with it the loop: uploads would stop while results kept piling up in the
  // spool, and nothing would say so. Here an exception is logged, counted, and the loop started
  // again after a back-off. The send loop ending normally (shutdown) ends the thread.
  void start(Loop loop, int failures = 0) {
    const auto started = std::chrono::steady_clock::now();
    auto handler = [this, loop, failures, started](std::exception_ptr e) {
      if (e) {
        loop_failed(loop, e, failures, started);
      } else if (loop == Loop::send) {
        finish();
      }
    };
    if (loop == Loop::send) {
      asio::co_spawn(io, send_loop(), std::move(handler));
    } else {
      asio::co_spawn(io, sync_loop(), std::move(handler));
    }
  }

  void loop_failed(Loop loop, std::exception_ptr e, int failures,
                   std::chrono::steady_clock::time_point started) {
    const auto now = std::chrono::steady_clock::now();
    ++(loop == Loop::send ? stats->send_loop_failures : stats->sync_loop_failures);
    // A loop that ran longer than the longest back-off before failing starts again at the
    // shortest one: this is a new failure, not the same one repeating.
    if (now - started > config.backoff_max) failures = 0;
    ++failures;
    auto wait = backoff(failures);
    if (stopping && loop == Loop::send) {
      wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::max(stop_deadline - now, std::chrono::nanoseconds(0))));
    }
    sender_failed_log.write(log::Level::error, "collector.sender_failed",
                            {{"loop", loop == Loop::send ? "send" : "sync"},
                             {"error", describe(e)},
                             {"restart_in_ms", wait.count()}});
    if (stopping && loop == Loop::sync) return;  // not needed any more: finish() syncs
    if (stopping && now >= stop_deadline) {
      finish();
      return;
    }
    auto& timer = loop == Loop::send ? send_restart : sync_restart;
    timer.expires_after(wait);
    timer.async_wait([this, loop, failures](const boost::system::error_code&) {
      // Cancelled by request_stop(): the send loop still runs, to write the queue to disk and
      // use what is left of the shutdown budget; the sync loop is not needed any more.
      if (loop == Loop::sync && stopping) return;
      start(loop, failures);
    });
  }

  // A reload's delivery settings (see CollectorSink::reconfigure); on the sender thread.
  void apply(const CollectorConfig& next) {
    config.url = next.url;
    config.token = next.token;
    config.ca_file = next.ca_file;
    config.insecure_skip_verify = next.insecure_skip_verify;
    config.request_timeout = next.request_timeout;
    config.flush_interval = next.flush_interval;
    config.backoff_initial = next.backoff_initial;
    config.backoff_max = next.backoff_max;
    if (next.batch_max_results != config.batch_max_results) {
      config.batch_max_results = next.batch_max_results;
      set_batch_limit(std::min(batch_limit, static_cast<std::size_t>(next.batch_max_results)));
    }
    // A sender waiting out a back-off (a 403 for the old token) tries the new settings now.
    wake.cancel();
  }

  // Shutdown: called on the sender thread (posted by close() or the destructor).
  void request_stop(std::chrono::steady_clock::time_point deadline) {
    stopping = true;
    stop_deadline = deadline;
    wake.cancel();
    send_restart.cancel();
  }

  // The send loop is done (shutdown): persist what is left and let run() return.
  void finish() {
    try {
      drain_queue();
      spool->sync();
      observe_spool();
    } catch (const std::exception& e) {
      // Never out of a completion handler: io.run() would rethrow it and the thread not end.
      log::error("collector.sender_failed", {{"loop", "finish"}, {"error", e.what()}});
    }
    work.reset();
    sync_timer.cancel();
    sync_restart.cancel();
    send_restart.cancel();
    io.stop();  // nothing else may keep the thread alive (libcurl's idle timer, a wake-up)
  }

  void run() {
    set_batch_limit(static_cast<std::size_t>(config.batch_max_results));
    start(Loop::send);
    start(Loop::sync);
    // A handler that throws makes run() throw; the io_context stays usable, so carry on rather
    // than let the sender thread end (the loops' own exceptions never get here, see start()).
    for (;;) {
      try {
        io.run();
        break;
      } catch (const std::exception& e) {
        ++stats->send_loop_failures;
        sender_failed_log.write(log::Level::error, "collector.sender_failed",
                                {{"loop", "io"}, {"error", e.what()}});
      }
    }
    {
      std::lock_guard lock(mutex);
      finished = true;
    }
    finished_cv.notify_all();
  }
};

CollectorSink::CollectorSink(CollectorConfig config, SpoolWriteFunction spool_write)
    : config_(std::move(config)), stats_(std::make_shared<Stats>()) {
  worker_ = std::make_unique<Worker>();
  worker_->config = config_;
  worker_->stats = stats_;
  worker_->spool =
      std::make_unique<Spool>(SpoolOptions{config_.spool_dir, config_.spool_max_bytes,
                                           config_.segment_max_bytes, std::move(spool_write)});
  worker_->curl = std::make_unique<net::CurlMulti>(worker_->io);
  worker_->observe_spool();  // logs a cursor that cannot be written at start-up (a full disk)
  if (worker_->spool->pending_results() > 0) {
    log::info("collector.spool_recovered",
              {{"results", static_cast<std::int64_t>(worker_->spool->pending_results())},
               {"dir", config_.spool_dir}});
  }
  thread_ = std::thread([w = worker_.get()] { w->run(); });
}

CollectorSink::~CollectorSink() {
  if (thread_.joinable()) {
    asio::post(worker_->io,
               [w = worker_.get()] { w->request_stop(std::chrono::steady_clock::now()); });
    thread_.join();
  }
}

std::vector<std::string> CollectorSink::reconfigure(const CollectorConfig& config) {
  std::vector<std::string> restart;
  if (config.spool_dir != config_.spool_dir) restart.push_back("collector.spool_dir");
  if (config.spool_max_bytes != config_.spool_max_bytes)
    restart.push_back("collector.spool_max_bytes");
  if (config.segment_max_bytes != config_.segment_max_bytes)
    restart.push_back("collector.segment_max_bytes");
  const std::string spool_dir = config_.spool_dir;
  const auto spool_max = config_.spool_max_bytes;
  const auto segment_max = config_.segment_max_bytes;
  config_ = config;
  config_.spool_dir = spool_dir;
  config_.spool_max_bytes = spool_max;
  config_.segment_max_bytes = segment_max;
  if (thread_.joinable()) {
    asio::post(worker_->io, [w = worker_.get(), next = config_] { w->apply(next); });
  }
  return restart;
}

void CollectorSink::publish(const CheckResult& result, const PublishInfo&) {
  enqueue(to_ndjson_line(result));
}

void CollectorSink::publish_record(std::string_view kind, const std::string& line) {
  if (kind == "path_result") {
    // The collector answers 400 to a batch holding one (it stores check results, journeys and
    // BGP records only, docs/path.md): sending it would set the whole batch aside, the check
    // results with it. Kept to the other sinks (output:, /metrics) until the collector stores
    // them; said once.
    static std::once_flag said;
    std::call_once(said, [] {
      log::warn("probe.record_not_uploaded",
                {{"kind", "path_result"},
                 {"reason",
                  "the collector does not store path_result records yet; they go to output: "
                  "(JSON lines) only"}});
    });
    return;
  }
  enqueue(line);
}

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
    w->request_stop(std::chrono::steady_clock::now() + budget);
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
