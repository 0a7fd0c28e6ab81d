// RIS Live (https://ris-live.ripe.net/manual/) as an input of the `bgp` check: a websocket
// client on the probe's event loop that subscribes to the monitored prefixes (more-specifics
// included) and to RIS peer state changes, turns every `ris_message` into route events with
// parse_ris_live_line() and hands them to the check, which feeds its Monitor exactly as it
// feeds BMP events (docs/bgp.md#ris-live).
//
// The connection: TCP, TLS for wss:// (OpenSSL; the system's CAs or `ca_file`, host name
// checked), the websocket handshake, then one `ris_subscribe` per prefix. Every step has a
// deadline; a JSON `{"type":"ping"}` goes out every `ping_interval`, and a connection that
// receives nothing (not even the websocket pong) for twice that long is given up. Any error or
// close: logged (rate-limited), counted, and a new connection after an exponential back-off with
// jitter (`reconnect.initial` doubling up to `reconnect.max`, each delay drawn from its upper
// half), which subscribes again.
//
// Gaps: RIS Live does not replay what was sent while nobody listened and has no End-of-RIB. The
// loss of a connection on which the server had spoken RIS Live (an acknowledgement, a pong, a
// message) opens a gap, which closes when the server speaks RIS Live on a new connection: the
// check is told (on_gap) before any of that connection's messages and decides what the routes
// learned before the gap are worth (RisLiveRoutes below). Connections that fail in between
// (refused, garbage) neither open nor close one. A server that replays what it sent before (a
// restarted relay, a test) is harmless: messages are recognised by their `id` (the last 65,536
// ids are remembered) and a repeat is dropped, so it neither publishes a second route_event nor
// touches the monitor.
//
// No Boost in this header: Beast's websocket stays in ris_live.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "probe/bgp/monitor.hpp"
#include "probe/bgp/route_event.hpp"

namespace vantage {
class ConfigNode;
}

namespace vantage::probe {
struct Services;
}

namespace vantage::probe::checks::bgp {

struct RisLiveConfig {
  std::string url;   // as configured: ws[s]://host[:port]/path[?query]
  bool tls = false;  // wss://
  std::string host;  // name or IP literal (no brackets)
  std::uint16_t port = 0;
  std::string target;  // path and query as configured, without the client parameter
  // The `client` query parameter RIS Live asks every user for; empty: "vantage-<vantage point
  // id>", filled in at start. Not added when the configured URL already names a client.
  std::string client;
  bool client_in_url = false;
  std::vector<vantage::bgp::Prefix> prefixes;  // one subscription each, with moreSpecific
  bool peer_state = true;                      // also subscribe to RIS_PEER_STATE
  std::string ca_file;                         // wss: trust these instead of the system's CAs
  std::chrono::nanoseconds reconnect_initial{std::chrono::seconds(1)};
  std::chrono::nanoseconds reconnect_max{std::chrono::seconds(60)};
  std::chrono::nanoseconds ping_interval{std::chrono::seconds(30)};
  // After a gap, routes carrying an issue that no message has confirmed (announced again or
  // withdrawn) within this long are withdrawn: their alerts resolve.
  std::chrono::nanoseconds gap_expiry{std::chrono::hours(1)};
};

// `ris_live: {url, client, prefixes, peer_state, ca_file, reconnect: {initial, max},
// ping_interval, gap_expiry}`. `prefixes` defaults to the monitored prefixes of `expectations`
// (not those with ignore: true); each must be a monitored prefix or a more-specific of one.
// Throws ConfigError (file:line:col: key: message); relative paths are relative to the config file.
RisLiveConfig parse_ris_live_config(const ConfigNode& node,
                                    const vantage::bgp::Expectations& expectations);

// The client's counters, read by /metrics on the event loop.
struct RisLiveStats {
  std::uint64_t connects = 0;       // connections that completed the websocket handshake
  std::uint64_t reconnects = 0;     // connection attempts after the first one
  std::uint64_t messages = 0;       // ris_message received (repeats included)
  std::uint64_t duplicates = 0;     // ris_message dropped as a repeat of an id already seen
  std::uint64_t invalid = 0;        // messages that are not RIS Live JSON (or binary)
  std::uint64_t server_errors = 0;  // ris_error received
  std::uint64_t gaps = 0;           // gaps closed (see above)
  double gap_seconds = 0;           // their total length
  bool connected = false;           // subscribed now
};

class RisLiveClient {
 public:
  // Both run on the event loop. `on_events` gets the events of one message (it may move from
  // them); `on_gap` is called when a gap of `length` closes, before any message of the new
  // connection.
  using EventsFn = std::function<void(std::vector<vantage::bgp::RouteEvent>& events)>;
  using GapFn = std::function<void(std::chrono::nanoseconds length)>;

  RisLiveClient(Services& services, std::string check_id, RisLiveConfig config, EventsFn on_events,
                GapFn on_gap);
  ~RisLiveClient();
  RisLiveClient(const RisLiveClient&) = delete;
  RisLiveClient& operator=(const RisLiveClient&) = delete;

  // Starts connecting (on the event loop). Throws std::runtime_error when the TLS setup fails
  // (an unreadable ca_file): the probe does not start then.
  void start();
  // Closes the connection and stops reconnecting; the coroutine ends at its next step.
  void stop();
  // After the event loop stopped (Check::shutdown): releases what belongs to it.
  void release();
  const RisLiveStats& stats() const noexcept;
  // The subscription messages sent on each connection (for tests and logs).
  std::vector<std::string> subscriptions() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// What the check learned over RIS Live, kept so that a gap can be dealt with: the last
// announcement of every (RIS collector, peer, prefix) under a monitored prefix, and since which
// gap it was last confirmed.
//
// Why not peer_up + sweep_stale (what BMP does): RIS peers do not re-send their table when our
// websocket reconnects, so every route would go stale and be swept — every monitored prefix
// would lose its visibility (visibility_loss) after every reconnect. Instead, only the routes
// that carry an issue (that would raise an alert on their own) expire: after a gap, such a route
// not announced again or withdrawn within `gap_expiry` is withdrawn, so its alert cannot stay
// open for ever on a route nobody can see any more. Clean routes are kept as they were last
// seen. What happened during the gap itself is not known: a change that is not sent again is
// missed (see docs/bgp.md#ris-live).
class RisLiveRoutes {
 public:
  RisLiveRoutes(const vantage::bgp::Expectations& expectations,
                const vantage::bgp::AsRelationships* relationships, const vantage::bgp::Vrps* vrps);
  // After the event was fed to the monitor: remembers (moving from it) or forgets the route.
  void seen(vantage::bgp::RouteEvent&& event);
  // A gap ended at `now_us` (UTC µs): routes not confirmed after it expire at now + expiry.
  void gap(std::int64_t now_us, std::int64_t expiry_us);
  // The withdrawals (time `now_us`) of the routes that carry an issue and were not confirmed
  // since a gap whose expiry is due; they are forgotten.
  std::vector<vantage::bgp::RouteEvent> expire(std::int64_t now_us);
  // When expire() has something to do next (UTC µs), if ever.
  std::optional<std::int64_t> next_expiry() const;
  std::size_t size() const noexcept { return routes_.size(); }

 private:
  bool carries_issue(const vantage::bgp::RouteEvent& announcement);
  struct Key {  // one peer's route to one prefix, as one RIS collector saw it
    std::string collector;
    vantage::bgp::IpAddr peer;
    std::uint32_t peer_asn = 0;
    vantage::bgp::Prefix prefix;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept;
  };
  static Key key_of(const vantage::bgp::RouteEvent& e);
  struct Route {
    vantage::bgp::RouteEvent announcement;
    std::uint64_t epoch;        // the gap count when it was last confirmed
    std::optional<bool> issue;  // carries_issue(announcement), once asked
  };
  // A monitor of its own, with the check's expectations but min_peers 1 and no resolve hold:
  // a route fed to it alone opens whatever issue it carries (and is withdrawn again at once);
  // also the trie for monitored().
  vantage::bgp::Monitor judge_;
  std::unordered_map<Key, Route, KeyHash> routes_;
  std::uint64_t epoch_ = 0;
  std::map<std::int64_t, std::uint64_t> expiries_;  // due time -> routes with an older epoch
};

}  // namespace vantage::probe::checks::bgp
