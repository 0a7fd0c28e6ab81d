// Route monitoring for the prefixes an operator owns (DESIGN §7): expectations in a
// BGPalerter-like prefixes file, AS relationships (CAIDA as-rel), RPKI VRPs, and a Monitor that
// keeps per-peer routes for the monitored prefixes and opens/resolves alerts:
//   hijack              — the exact prefix announced by an origin AS not in `asn`, which no
//                         peer sees from an expected origin at the same time
//   moas                — the exact prefix announced by an origin AS not in `asn` while other
//                         peers see it from an expected origin (a multiple-origin conflict)
//   sub_prefix_hijack   — a more-specific announced by an origin not in `asn`
//                         (not raised under ignoreMorespecifics)
//   private_origin      — a path ending in private or reserved ASNs (RFC 6996, RFC 5398, …)
//                         behind an expected origin: a private AS not stripped at the edge
//   route_leak          — a valley-free violation (RFC 7908 type 1): an AS exported a route
//                         learned from a provider or peer to another provider or peer; names
//                         the leaking AS and the segment (from, leaker, to)
//   unexpected_upstream — the AS next to the origin is not in `upstreams`
//   visibility_loss     — at least `visibility_threshold` of the peers that carried the prefix
//                         withdrew it
//   rpki_invalid        — RFC 6811 route origin validation says invalid
// Origins: prepending is collapsed before any check (a repeated AS is neither a loop nor a new
// origin). When the last AS of a path is not an expected origin, trailing private or reserved
// ASNs are stripped, as `remove-private-AS` would, and the public AS before them is judged as
// the origin: appending a private ASN evades nothing. AS_SET origins are ambiguous and checked
// member by member. Ignored routes are counted by reason (ignored_by_reason()): a bogon prefix
// under a public monitored prefix, a path with no public AS at all.
// Lifecycle: an alert opens when at least `min_peers` peers carry the offending route; when none
// carries it any more it resolves once `resolve_hold` has passed without it coming back (a
// flapping peer keeps one alert open). The resolution is stamped with the time the last peer
// dropped the route, and emitted by the first observe()/tick() at or after the hold.
// Confidence: hijack-like alerts (hijack, moas, sub_prefix_hijack, private_origin) carry named
// tags and a score 0-100, from which their severity follows (page >= 70, ticket >= 40, log):
//   rpki_invalid_new_origin (+20), rpki_valid_new_origin (-40), origin_after_expected (-35: the
//   expected origin directly before the new one, the pattern of a prepend typo such as
//   "24867 3" for "24867 24867"), aggregator_is_expected (-20: AGGREGATOR names an expected AS),
//   new_origin_never_seen (+10), seen_by_n_peers (+4 per peer beyond the first, at most +20),
//   private_origin (the path ended in private ASNs, stripped).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/ip_prefix.hpp"
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
  // How long an alert no peer carries stays open before it resolves (UTC microseconds of event
  // time): a route that comes back within it continues the same alert.
  std::int64_t resolve_hold_us = 60'000'000;
};

// Loads a prefixes file:
//   208.65.152.0/22:
//     description: YouTube
//     asn: [36561]            # or one number
//     ignoreMorespecifics: false
//     upstreams: [3356]       # optional
//   options: {min_peers: 2, visibility_threshold: 0.5, resolve_hold: 60s}
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
  // A trie look-up: the cost does not grow with the number of VRPs.
  State validate(const Prefix& prefix, std::optional<std::uint32_t> origin) const;
  std::size_t size() const noexcept { return vrps_.size(); }

 private:
  struct Vrp {
    std::uint8_t max_length;
    std::uint32_t asn;
  };
  PrefixTrie<Vrp> vrps_;
};

struct Alert {
  enum class Kind : std::uint8_t {
    hijack,
    sub_prefix_hijack,
    route_leak,
    unexpected_upstream,
    visibility_loss,
    rpki_invalid,
    moas,
    private_origin
  };
  Kind kind = Kind::hijack;
  bool resolved = false;
  // Names the alert across its open and resolved records: kind, monitored prefix and what
  // tells two alerts of one kind apart, e.g. "sub_prefix_hijack 208.65.152.0/22 208.65.153.0/24
  // 17557".
  std::string key;
  std::int64_t time_us = 0;  // UTC microseconds of the event that opened/resolved it
  Prefix monitored;          // the configured prefix it concerns
  std::string description;   // of the monitored prefix
  Prefix prefix;             // the announced prefix
  std::optional<std::uint32_t> origin;
  std::vector<std::uint32_t> origin_set;
  std::vector<std::uint32_t> expected;      // allowed origins / upstreams
  std::uint32_t leaker = 0;                 // route_leak
  std::vector<std::uint32_t> segment;       // route_leak: from, leaker, to
  std::uint32_t upstream = 0;               // unexpected_upstream
  int peers = 0;                            // peers carrying it (opened) / before (resolved)
  double visibility = 1;                    // visibility_loss: share of peers still seeing it
  std::vector<std::uint32_t> example_path;  // one offending path, prepending collapsed
  std::string raw_path;                     // the same path as announced ("3356 174 174 {1,2}")
  std::vector<std::uint32_t> private_asns;  // trailing private/reserved ASNs stripped from it
  // Confidence (hijack, moas, sub_prefix_hijack, private_origin): named tags and a score 0-100.
  std::vector<std::string> tags;
  int score = -1;  // -1: not scored (the other kinds)

  std::string kind_name() const;
  // "page" | "ticket" | "log": from the score where there is one, else by kind.
  std::string severity() const;
  std::string to_text() const;
  // The wire form (docs/bgp.md#bgp_alert): {"kind": "bgp_alert", "alert", "status": "open" |
  // "resolved", "alert_key", "time", "prefix", "monitored_prefix", "severity", "score", "tags",
  // "path", "raw_path", …}.
  nlohmann::json json() const;
  std::string to_json() const;  // json(), one line
};

class Monitor {
 public:
  Monitor(Expectations expectations, const AsRelationships* relationships, const Vrps* vrps);
  // Feeds one event; alerts it opens or resolves are appended to `alerts` (resolutions whose
  // hold has passed by the event's time first).
  // A `peer_up` marks the peer's routes stale: the router re-sends the routes it still has, and
  // the peer's `end_of_rib` (per family) withdraws the stale ones it did not re-send.
  void observe(const RouteEvent& event, std::vector<Alert>& alerts);
  // Emits the resolutions whose hold has passed by `now_us` (UTC microseconds): call it on a
  // timer when events are live.
  void tick(std::int64_t now_us, std::vector<Alert>& alerts);
  // At the end of a finished input (an MRT file): emits every pending resolution.
  void flush(std::vector<Alert>& alerts);
  // Withdraws the stale routes of peers whose `peer_up` came more than `max_age_us` before
  // `now_us` (UTC microseconds) without an End-of-RIB: for routers that send none.
  void sweep_stale(std::int64_t now_us, std::int64_t max_age_us, std::vector<Alert>& alerts);
  // Routes under a monitored prefix that raised nothing because of what they are, by reason:
  // "bogon_prefix", "private_path" (no public AS in the path).
  const std::map<std::string, std::uint64_t>& ignored_by_reason() const noexcept {
    return ignored_;
  }
  std::uint64_t ignored() const noexcept;
  // The most specific monitored prefix that covers `p` (itself or a less specific), or nullptr.
  // Reads only the expectations, which never change after construction: safe to call from
  // another thread while this one observes. A trie look-up.
  const MonitoredPrefix* monitored(const Prefix& p) const;
  const Expectations& expectations() const noexcept { return exp_; }

 private:
  struct Issue {
    Alert::Kind kind;
    std::string key;  // what distinguishes two alerts of one kind (origin, leaker, …)
    Alert alert;      // filled when first seen
  };
  struct State {
    Alert alert;
    std::map<std::string, int> peers;  // peer -> routes of it carrying the issue
    bool open = false;
    std::int64_t dropped_us = 0;     // when the last peer stopped carrying it
    std::int64_t resolve_at_us = 0;  // pending resolution (0: none)
  };
  using StateKey = std::pair<std::string, std::string>;  // (kind + key, monitored prefix)
  std::vector<Issue> issues_of(const RouteEvent& e, const MonitoredPrefix& m);
  void score(Alert& a, int peers) const;
  void add(const std::string& peer, const Issue& issue, std::int64_t time_us,
           std::vector<Alert>& alerts);
  void remove(const std::string& peer, const Issue& issue, std::int64_t time_us,
              std::vector<Alert>& alerts);
  void resolve(std::map<StateKey, State>::iterator it, std::vector<Alert>& alerts);
  void withdraw_route(const std::string& route_key, std::int64_t time_us,
                      std::vector<Alert>& alerts);
  struct Route;
  void forget(Route&& route, std::int64_t time_us, std::vector<Alert>& alerts);
  void visibility(const MonitoredPrefix& m, std::int64_t time_us, std::vector<Alert>& alerts);

  Expectations exp_;
  const AsRelationships* rels_;
  const Vrps* vrps_;
  PrefixTrie<const MonitoredPrefix*> trie_;
  struct Route {
    std::string peer;
    const MonitoredPrefix* monitored;
    bool exact;
    std::vector<Issue> issues;
    bool v6 = false;
    bool stale = false;                   // not re-sent yet since the peer's last peer_up
    std::optional<std::uint32_t> origin;  // the judged origin (exact prefix: MOAS bookkeeping)
  };
  void withdraw_stale(const std::string& peer, std::optional<bool> v6, std::int64_t time_us,
                      std::vector<Alert>& alerts);
  std::map<std::string, std::int64_t> refreshing_;  // peer -> time of its peer_up
  std::map<std::string, Route> routes_;             // peer|prefix|path id -> route
  std::map<StateKey, State> states_;
  std::map<std::int64_t, std::vector<StateKey>> pending_;  // resolve_at -> states (may be stale)
  std::map<const MonitoredPrefix*, std::map<std::string, int>>
      seen_by_;  // exact prefix: peer -> routes
  std::map<const MonitoredPrefix*, std::map<std::uint32_t, int>>
      origins_;  // exact prefix: origin -> routes
  std::map<const MonitoredPrefix*, std::set<std::uint32_t>>
      ever_seen_;  // origins ever seen under it
  std::map<const MonitoredPrefix*, std::size_t> max_seen_;
  std::map<const MonitoredPrefix*, bool> visibility_open_;
  std::map<std::string, std::uint64_t> ignored_;
};

bool is_private_or_reserved_asn(std::uint32_t asn);
bool is_bogon(const Prefix& prefix);

}  // namespace vantage::bgp
