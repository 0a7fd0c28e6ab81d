// Route monitoring for the prefixes an operator owns (DESIGN §7): expectations in a
// BGPalerter-like prefixes file, AS relationships (CAIDA as-rel), RPKI VRPs, and a Monitor that
// keeps per-peer routes for the monitored prefixes and opens/resolves alerts:
//   hijack              — the exact prefix announced by an origin AS not in `asn`
//   sub_prefix_hijack   — a more-specific announced by an origin not in `asn`
//                         (not raised under ignoreMorespecifics)
//   route_leak          — a valley-free violation (RFC 7908 type 1): an AS exported a route
//                         learned from a provider or peer to another provider or peer; names
//                         the leaking AS and the segment (from, leaker, to)
//   unexpected_upstream — the AS next to the origin is not in `upstreams`
//   visibility_loss     — at least `visibility_threshold` of the peers that carried the prefix
//                         withdrew it
//   rpki_invalid        — RFC 6811 route origin validation says invalid
// An alert opens when at least `min_peers` peers carry the offending route and resolves when
// none does. Prepending is collapsed before any check (a repeated AS is neither a loop nor a
// new origin); AS_SET origins are ambiguous and checked member by member; routes from private
// or reserved origin ASNs and bogon prefixes are not alerted on (counted in ignored()).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "probe/bgp/route_event.hpp"

namespace vantage::bgp {

struct MonitoredPrefix {
  Prefix prefix;
  std::string description;
  std::vector<std::uint32_t> origins;    // allowed origin ASNs
  std::vector<std::uint32_t> upstreams;  // expected neighbours of the origin; empty = any
  bool ignore_more_specifics = false;
  bool ignore = false;
};

struct Expectations {
  std::vector<MonitoredPrefix> prefixes;
  int min_peers = 1;
  double visibility_threshold = 0.5;  // share of peers that must withdraw (0-1]
};

// Loads a prefixes file:
//   208.65.152.0/22:
//     description: YouTube
//     asn: [36561]            # or one number
//     ignoreMorespecifics: false
//     upstreams: [3356]       # optional
//   options: {min_peers: 2, visibility_threshold: 0.5}
// Throws vantage::ConfigError (file:line:col: key: message).
Expectations load_expectations(const std::string& path);

// CAIDA AS relationships ("a|b|-1": a is a provider of b; "a|b|0": peers; '#' comments).
class AsRelationships {
 public:
  enum class Rel : std::int8_t { unknown, customer_to_provider, peer, provider_to_customer };
  // Throws std::runtime_error naming the file and line on a malformed line.
  static AsRelationships load(const std::string& path);
  void add(std::uint32_t a, std::uint32_t b, int rel);  // CAIDA semantics
  // How `from` relates to `to` when `from` sends a route to `to`.
  Rel relation(std::uint32_t from, std::uint32_t to) const;
  std::size_t size() const noexcept { return rels_.size(); }

 private:
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::int8_t> rels_;
};

// RPKI validated ROA payloads (rpki-client / Routinator JSON: {"roas": [...]}, or a bare array
// as BGPalerter writes it; "asn" as 13335, "13335" or "AS13335").
class Vrps {
 public:
  enum class State : std::uint8_t { not_found, valid, invalid };
  // Throws std::runtime_error naming the file and the entry on malformed input.
  static Vrps load(const std::string& path);
  // RFC 6811 §2: `origin` unset (an AS_SET) is valid for nothing.
  State validate(const Prefix& prefix, std::optional<std::uint32_t> origin) const;
  std::size_t size() const noexcept { return vrps_.size(); }

 private:
  struct Vrp {
    Prefix prefix;
    std::uint8_t max_length;
    std::uint32_t asn;
  };
  std::vector<Vrp> vrps_;
};

struct Alert {
  enum class Kind : std::uint8_t {
    hijack, sub_prefix_hijack, route_leak, unexpected_upstream, visibility_loss, rpki_invalid
  };
  Kind kind = Kind::hijack;
  bool resolved = false;
  // Names the alert across its open and resolved records: kind, monitored prefix and what
  // tells two alerts of one kind apart, e.g. "sub_prefix_hijack 208.65.152.0/22 208.65.153.0/24 17557".
  std::string key;
  std::int64_t time_us = 0;  // UTC microseconds of the event that opened/resolved it
  Prefix monitored;          // the configured prefix it concerns
  std::string description;   // of the monitored prefix
  Prefix prefix;             // the announced prefix
  std::optional<std::uint32_t> origin;
  std::vector<std::uint32_t> origin_set;
  std::vector<std::uint32_t> expected;     // allowed origins / upstreams
  std::uint32_t leaker = 0;                // route_leak
  std::vector<std::uint32_t> segment;      // route_leak: from, leaker, to
  std::uint32_t upstream = 0;              // unexpected_upstream
  int peers = 0;                           // peers carrying it (opened) / before (resolved)
  double visibility = 1;                   // visibility_loss: share of peers still seeing it
  std::vector<std::uint32_t> example_path;  // one offending path, prepending collapsed

  std::string kind_name() const;
  std::string to_text() const;
  // The wire form (docs/bgp.md#bgp_alert): {"kind": "bgp_alert", "alert", "status": "open" |
  // "resolved", "alert_key", "time", "prefix", "monitored_prefix", …}.
  nlohmann::json json() const;
  std::string to_json() const;  // json(), one line
};

class Monitor {
 public:
  Monitor(Expectations expectations, const AsRelationships* relationships, const Vrps* vrps);
  // Feeds one event; alerts it opens or resolves are appended to `alerts`.
  // A `peer_up` marks the peer's routes stale: the router re-sends the routes it still has, and
  // the peer's `end_of_rib` (per family) withdraws the stale ones it did not re-send.
  void observe(const RouteEvent& event, std::vector<Alert>& alerts);
  // Withdraws the stale routes of peers whose `peer_up` came more than `max_age_us` before
  // `now_us` (UTC microseconds) without an End-of-RIB: for routers that send none.
  void sweep_stale(std::int64_t now_us, std::int64_t max_age_us, std::vector<Alert>& alerts);
  std::uint64_t ignored() const noexcept { return ignored_; }
  // The most specific monitored prefix that covers `p` (itself or a less specific), or nullptr.
  // Reads only the expectations, which never change after construction: safe to call from
  // another thread while this one observes.
  const MonitoredPrefix* monitored(const Prefix& p) const;
  const Expectations& expectations() const noexcept { return exp_; }

 private:
  struct Issue {
    Alert::Kind kind;
    std::string key;  // what distinguishes two alerts of one kind (origin, leaker, …)
    Alert alert;      // filled when first seen
    bool operator<(const Issue& o) const { return std::tie(kind, key) < std::tie(o.kind, o.key); }
  };
  struct State {
    Alert alert;
    std::set<std::string> peers;
    bool open = false;
  };
  std::vector<Issue> issues_of(const RouteEvent& e, const MonitoredPrefix& m);
  void add(const std::string& peer, const Issue& issue, std::int64_t time_us, std::vector<Alert>& alerts);
  void remove(const std::string& peer, const Issue& issue, std::int64_t time_us, std::vector<Alert>& alerts);
  void withdraw_route(const std::string& route_key, std::int64_t time_us, std::vector<Alert>& alerts);
  struct Route;
  void forget(Route&& route, std::int64_t time_us, std::vector<Alert>& alerts);
  bool carried(const std::string& peer, const Issue& issue) const;
  void visibility(const MonitoredPrefix& m, std::int64_t time_us, std::vector<Alert>& alerts);

  Expectations exp_;
  const AsRelationships* rels_;
  const Vrps* vrps_;
  struct Route {
    std::string peer;
    const MonitoredPrefix* monitored;
    bool exact;
    std::vector<Issue> issues;
    bool v6 = false;
    bool stale = false;  // not re-sent yet since the peer's last peer_up
  };
  void withdraw_stale(const std::string& peer, std::optional<bool> v6, std::int64_t time_us,
                      std::vector<Alert>& alerts);
  std::map<std::string, std::int64_t> refreshing_;  // peer -> time of its peer_up
  std::map<std::string, Route> routes_;  // peer|prefix|path id -> route
  std::map<std::pair<std::string, std::string>, State> states_;  // (kind+key, monitored) -> state
  std::map<const MonitoredPrefix*, std::map<std::string, int>> seen_by_;  // exact prefix: peer -> routes
  std::map<const MonitoredPrefix*, std::size_t> max_seen_;
  std::map<const MonitoredPrefix*, bool> visibility_open_;
  std::uint64_t ignored_ = 0;
};

bool is_private_or_reserved_asn(std::uint32_t asn);
bool is_bogon(const Prefix& prefix);

}  // namespace vantage::bgp
