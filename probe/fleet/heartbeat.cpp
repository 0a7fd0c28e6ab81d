#include "probe/fleet/heartbeat.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/log.hpp"
#include "common/version.hpp"
#include "probe/fleet/loop_end.hpp"
#include "probe/net/curl_multi.hpp"

namespace vantage::probe::fleet {

namespace asio = boost::asio;

namespace {

// Whole seconds as an integer (30), anything else as a number (1.5).
nlohmann::json interval_seconds(std::chrono::nanoseconds d) {
  if (d.count() % 1000000000 == 0) return d.count() / 1000000000;
  return std::chrono::duration<double>(d).count();
}

}  // namespace

HeartbeatSender::HeartbeatSender(asio::io_context& io, net::CurlMulti& curl, const Clock& clock,
                                 Vantage vantage, CollectorConfig collector,
                                 std::function<HeartbeatState()> state,
                                 std::function<CollectorConfig()> current)
    : io_(io),
      curl_(curl),
      clock_(clock),
      vantage_(std::move(vantage)),
      collector_(std::move(collector)),
      state_fn_(std::move(state)),
      current_(std::move(current)),
      timer_(io) {
  started_ns_ = to_unix_nanos(clock_.utc_now());
}

HeartbeatSender::~HeartbeatSender() {
  *alive_ = false;
  stop();
}

void HeartbeatSender::start() {
  if (started_ || collector_.heartbeat_url.empty() || collector_.heartbeat_interval.count() <= 0)
    return;
  started_ = true;
  started_ns_ = to_unix_nanos(clock_.utc_now());
  asio::co_spawn(io_, loop(),
                 asio::bind_cancellation_slot(cancel_.slot(),
                                              LogLoopEnd{"probe.heartbeat_sender_failed", alive_}));
}

void HeartbeatSender::stop() {
  if (stopped_) return;
  stopped_ = true;
  timer_.cancel();
  if (started_) cancel_.emit(asio::cancellation_type::terminal);
}

nlohmann::json HeartbeatSender::body(const HeartbeatState& state, UtcTime now) const {
  return nlohmann::json{
      {"type", "heartbeat"},
      {"probe_id", vantage_.probe_id},
      {"region", vantage_.region},
      {"country", vantage_.country},
      {"asn", vantage_.asn},
      {"isp", vantage_.isp},
      {"version", std::string(version())},
      {"revision", std::string(revision())},
      {"config_hash", state.config_hash},
      {"config_source", state.config_source},
      {"checks", state.checks},
      {"spool_results", state.spool_results},
      {"spool_bytes", state.spool_bytes},
      {"heartbeat_interval_s", interval_seconds(collector_.heartbeat_interval)},
      {"started_ns", started_ns_},
      {"time_ns", to_unix_nanos(now)},
  };
}

net::HttpRequest HeartbeatSender::build_request(const HeartbeatState& state, UtcTime now) const {
  net::HttpRequest req;
  req.method = "POST";
  req.url = collector_.heartbeat_url;
  req.headers = {{"Content-Type", "application/json"},
                 {"Authorization", "Bearer " + collector_.token}};
  req.body = body(state, now).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  req.follow_redirects = false;
  req.fresh_connection = false;
  // A heartbeat older than its interval says nothing new: never wait longer than that.
  const auto timeout = std::min(collector_.request_timeout, collector_.heartbeat_interval);
  req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  req.connect_timeout = req.timeout;
  req.tls.ca_file = collector_.ca_file;
  req.tls.insecure_skip_verify = collector_.insecure_skip_verify;
  req.max_body_bytes = 4096;
  return req;
}

bool HeartbeatSender::handle(const net::HttpExchange& ex) {
  ++stats_.sent;
  const bool ok = ex.completed() && ex.status >= 200 && ex.status < 300;
  std::string state = "ok";
  std::string error;
  if (!ok) {
    ++stats_.failed;
    if (ex.completed()) {
      error = ex.body.substr(0, 300);
      while (!error.empty() && (error.back() == '\n' || error.back() == '\r')) error.pop_back();
      state = "status:" + std::to_string(ex.status) + ":" + error;
    } else {
      error = ex.error_text;
      state = "network:" + std::to_string(ex.curl_code);  // the text varies ("… after 3 ms")
    }
  } else {
    ++stats_.accepted;
  }
  if (state != state_) {
    const bool was_ok = state_ == "ok";
    state_ = state;
    if (ok) {
      if (!was_ok) log::info("probe.heartbeat_ok", {{"url", collector_.heartbeat_url}});
    } else {
      log::warn("probe.heartbeat_failed",
                {{"url", collector_.heartbeat_url}, {"status", ex.status}, {"error", error}});
    }
  }
  return ok;
}

asio::awaitable<void> HeartbeatSender::loop() {
  auto next_at = clock_.steady_now();
  while (!stopped_) {
    if (current_) {
      CollectorConfig next = current_();
      if (next.heartbeat_interval != collector_.heartbeat_interval)
        next_at = clock_.steady_now();  // a new interval starts now
      collector_ = std::move(next);
    }
    if (collector_.heartbeat_url.empty() || collector_.heartbeat_interval.count() <= 0) {
      log::info("probe.heartbeats_stopped", {{"reason", "collector.heartbeat_interval is 0"}});
      co_return;
    }
    const HeartbeatState state = state_fn_ ? state_fn_() : HeartbeatState{};
    const net::HttpRequest req = build_request(state, clock_.utc_now());
    const net::HttpExchange ex = co_await net::http_exchange(curl_, req);
    if (stopped_ || ex.cancelled) co_return;
    handle(ex);
    // On a fixed grid: a slow collector does not stretch the interval.
    next_at += collector_.heartbeat_interval;
    const auto now = clock_.steady_now();
    if (next_at < now) next_at = now;
    timer_.expires_at(next_at);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace vantage::probe::fleet
