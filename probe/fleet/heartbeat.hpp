// The probe's heartbeat (docs/configuration.md, "Heartbeats"): every heartbeat_interval,
// `POST collector.heartbeat_url` with `Authorization: Bearer <token>` and a JSON body
//   {"type":"heartbeat","probe_id":…,"region":…,"country":…,"asn":…,"isp":…,"version":…,
//    "revision":…,"config_hash":"sha256:…","config_source":"file"|"collector","checks":[ids],
//    "spool_results":N,"spool_bytes":N,"heartbeat_interval_s":N,"started_ns":N,"time_ns":N}
// (times UTC ns since the Unix epoch, read from the injected Clock). The collector answers 204.
// A heartbeat is liveness, not data: a failed one is not spooled or retried early, only logged
// (`probe.heartbeat_failed` {url, status, error} when the failure begins or changes,
// `probe.heartbeat_ok` when one is accepted again) and the next one goes at the next interval.
// The first one goes right at start().
#pragma once

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/observation.hpp"
#include "common/time.hpp"
#include "probe/config.hpp"
#include "probe/net/http_client.hpp"

namespace vantage::probe::net {
class CurlMulti;
}

namespace vantage::probe::fleet {

// What changes with a reload: read through a callback at every heartbeat.
struct HeartbeatState {
  std::vector<std::string> checks;  // ids of the checks running now
  std::string config_hash;          // ProbeConfig::config_hash
  std::string config_source;        // ProbeConfig::config_source
  std::uint64_t spool_results = 0;  // CollectorSink::Stats (0 without a collector sink)
  std::uint64_t spool_bytes = 0;
};

class HeartbeatSender {
 public:
  // `vantage`: the vantage_point section. `collector`: heartbeat_url, heartbeat_interval (> 0),
  // request_timeout, tls and the token at start. `state`: called on the io_context before each
  // heartbeat. `current`: the collector settings running now (after reloads), read before each
  // heartbeat, so a reload's token, heartbeat_url, heartbeat_interval, tls and request_timeout
  // apply from the next one on (an empty heartbeat_url, i.e. heartbeat_interval 0, stops them).
  // Empty: `collector` stays in use.
  HeartbeatSender(boost::asio::io_context& io, net::CurlMulti& curl, const Clock& clock,
                  Vantage vantage, CollectorConfig collector, std::function<HeartbeatState()> state,
                  std::function<CollectorConfig()> current = {});
  ~HeartbeatSender();
  HeartbeatSender(const HeartbeatSender&) = delete;
  HeartbeatSender& operator=(const HeartbeatSender&) = delete;

  // Starts sending (first heartbeat now; started_ns = the clock's time now). Call once.
  void start();
  void stop();

  // ---- the pieces, public for tests ----
  // The JSON body for `state` at `now` (version and revision from common/version.hpp).
  nlohmann::json body(const HeartbeatState& state, UtcTime now) const;
  net::HttpRequest build_request(const HeartbeatState& state, UtcTime now) const;
  // Logs on a change of state; true when the collector accepted the heartbeat (2xx).
  bool handle(const net::HttpExchange& exchange);

  struct Stats {
    std::uint64_t sent = 0;
    std::uint64_t accepted = 0;
    std::uint64_t failed = 0;
  };
  const Stats& stats() const noexcept { return stats_; }

 private:
  boost::asio::awaitable<void> loop();

  boost::asio::io_context& io_;
  net::CurlMulti& curl_;
  const Clock& clock_;
  Vantage vantage_;
  CollectorConfig collector_;
  std::function<HeartbeatState()> state_fn_;
  std::function<CollectorConfig()> current_;
  boost::asio::steady_timer timer_;
  boost::asio::cancellation_signal cancel_;
  bool started_ = false;
  bool stopped_ = false;
  std::int64_t started_ns_ = 0;
  std::string state_ = "ok";
  Stats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace vantage::probe::fleet
