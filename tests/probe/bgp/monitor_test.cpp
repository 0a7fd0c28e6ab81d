// The monitor's alert lifecycle on hand-made route events: a path change is one transition, not
// a resolve and re-open; min_peers; one neighbour seen by two routers is two peers; the resolve
// hold; private ASNs appended to evade; MOAS; confidence tags and scores.
#include "probe/bgp/monitor.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

using namespace vantage::bgp;

namespace {

Prefix prefix(const char* text) { return *Prefix::parse(text); }

RouteEvent announce(const char* collector, const char* pfx, std::vector<std::uint32_t> path,
                    std::int64_t t = 1) {
  RouteEvent e;
  e.kind = RouteEvent::Kind::announce;
  e.time_us = t;
  e.collector = collector;
  e.peer_ip = prefix("192.0.2.1/32").addr;
  e.peer_asn = path.front();
  e.prefix = prefix(pfx);
  e.path = {{SegmentType::sequence, path}};
  e.origin = path.back();
  return e;
}

RouteEvent withdraw(const char* collector, const char* pfx, std::uint32_t peer_asn,
                    std::int64_t t = 2) {
  RouteEvent e;
  e.kind = RouteEvent::Kind::withdraw;
  e.time_us = t;
  e.collector = collector;
  e.peer_ip = prefix("192.0.2.1/32").addr;
  e.peer_asn = peer_asn;
  e.prefix = prefix(pfx);
  return e;
}

// Resolve hold 0: these cases are about which alerts open and resolve, not when.
Expectations expectations(int min_peers, double visibility_threshold = 0.5,
                          std::int64_t hold_us = 0) {
  Expectations x;
  x.resolve_hold_us = hold_us;
  MonitoredPrefix cf;
  cf.prefix = prefix("104.20.0.0/20");
  cf.origins = {13335};
  x.prefixes.push_back(cf);
  x.min_peers = min_peers;
  x.visibility_threshold = visibility_threshold;
  return x;
}

std::vector<std::string> names(const std::vector<Alert>& alerts) {
  std::vector<std::string> out;
  for (const auto& a : alerts) out.push_back((a.resolved ? "resolved " : "open ") + a.kind_name());
  return out;
}

}  // namespace

TEST_CASE("a path change is one transition: no visibility flap, a persisting issue stays open",
          "[bgp][monitor]") {
  AsRelationships rels;
  rels.add(3356, 13335, -1);
  rels.add(3356, 33154, -1);
  rels.add(33154, 396531, -1);
  rels.add(701, 396531, -1);
  Monitor m(expectations(1), &rels, nullptr);
  std::vector<Alert> alerts;
  m.observe(announce("r1", "104.20.0.0/20", {65000, 3356, 13335}), alerts);
  CHECK(alerts.empty());
  // The clean path is replaced by the leaked one: the leak opens, nothing else.
  m.observe(announce("r1", "104.20.0.0/20", {65000, 701, 396531, 33154, 3356, 13335}), alerts);
  CHECK(names(alerts) == std::vector<std::string>{"open route_leak"});
  CHECK(alerts[0].leaker == 396531u);
  CHECK(alerts[0].key == "route_leak 104.20.0.0/20 104.20.0.0/20 396531");
  // The same leak again with prepending: still the same alert, no resolve/re-open.
  alerts.clear();
  m.observe(announce("r1", "104.20.0.0/20", {65000, 701, 701, 396531, 33154, 3356, 13335}), alerts);
  CHECK(alerts.empty());
  // The clean path returns: the leak resolves, visibility never moved.
  m.observe(announce("r1", "104.20.0.0/20", {65000, 3356, 13335}), alerts);
  CHECK(names(alerts) == std::vector<std::string>{"resolved route_leak"});
  // An explicit withdrawal of the only path is a visibility loss.
  alerts.clear();
  m.observe(withdraw("r1", "104.20.0.0/20", 65000), alerts);
  CHECK(names(alerts) == std::vector<std::string>{"open visibility_loss"});
}

TEST_CASE("min_peers counts peers per collector: one neighbour seen by two routers is two peers",
          "[bgp][monitor]") {
  Monitor m(expectations(2, 0.9), nullptr,
            nullptr);  // losing one of two peers is no visibility loss
  std::vector<Alert> alerts;
  m.observe(announce("r1", "104.20.0.0/20", {65000, 64999, 17557}), alerts);
  CHECK(alerts.empty());  // one peer: below min_peers
  m.observe(announce("r1", "104.20.0.0/20", {65000, 64998, 17557}), alerts);
  CHECK(alerts.empty());  // the same peer again
  m.observe(announce("r2", "104.20.0.0/20", {65000, 64998, 17557}), alerts);
  REQUIRE(names(alerts) == std::vector<std::string>{"open hijack"});
  CHECK(alerts[0].origin == 17557u);
  CHECK(alerts[0].peers == 2);
  alerts.clear();
  m.observe(withdraw("r1", "104.20.0.0/20", 65000), alerts);
  CHECK(alerts.empty());  // r2's peer still carries it
  m.observe(withdraw("r2", "104.20.0.0/20", 65000), alerts);
  CHECK(names(alerts) == std::vector<std::string>{"resolved hijack", "open visibility_loss"});
}

TEST_CASE(
    "a router's Peer Up makes the peer's routes stale until it re-sends them; End-of-RIB "
    "or the refresh timeout withdraws the rest",
    "[bgp][monitor]") {
  Monitor m(expectations(1), nullptr, nullptr);
  std::vector<Alert> alerts;
  m.observe(announce("r1", "104.20.0.0/20", {65000, 3356, 13335}), alerts);
  m.observe(announce("r1", "104.20.1.0/24", {65000, 3491, 17557}), alerts);  // a sub-prefix hijack
  REQUIRE(names(alerts) == std::vector<std::string>{"open sub_prefix_hijack"});
  alerts.clear();
  RouteEvent up = withdraw("r1", "104.20.0.0/20", 65000, 10);
  up.kind = RouteEvent::Kind::peer_up;
  m.observe(up, alerts);
  CHECK(alerts.empty());  // nothing changes until the table has been re-sent
  m.observe(announce("r1", "104.20.0.0/20", {65000, 3356, 13335}, 11), alerts);
  CHECK(alerts.empty());
  RouteEvent eor_v6 = withdraw("r1", "2001:db8::/32", 65000, 12);
  eor_v6.kind = RouteEvent::Kind::end_of_rib;
  m.observe(eor_v6, alerts);
  CHECK(alerts.empty());  // the IPv6 End-of-RIB does not touch IPv4 routes
  RouteEvent eor_v4 = withdraw("r1", "0.0.0.0/0", 65000, 13);
  eor_v4.kind = RouteEvent::Kind::end_of_rib;
  m.observe(eor_v4, alerts);
  CHECK(names(alerts) == std::vector<std::string>{"resolved sub_prefix_hijack"});

  // A router that sends no End-of-RIB: the sweep withdraws what was not re-sent in time.
  alerts.clear();
  m.observe(announce("r1", "104.20.1.0/24", {65000, 3491, 17557}, 20), alerts);
  m.observe(up, alerts);  // time 10, before: refresh started "long ago"
  alerts.clear();
  m.sweep_stale(/*now_us=*/1000, /*max_age_us=*/5000, alerts);
  CHECK(alerts.empty());  // not due yet
  m.sweep_stale(/*now_us=*/6000, /*max_age_us=*/5000, alerts);
  auto swept = names(alerts);  // neither route was re-sent after the second Peer Up
  std::sort(swept.begin(), swept.end());
  CHECK(swept == std::vector<std::string>{"open visibility_loss", "resolved sub_prefix_hijack"});
}

namespace {

RouteEvent from_peer(RouteEvent e, const char* peer_ip, std::uint32_t peer_asn) {
  e.peer_ip = prefix((std::string(peer_ip) + "/32").c_str()).addr;
  e.peer_asn = peer_asn;
  return e;
}

const Alert* find(const std::vector<Alert>& alerts, const std::string& kind) {
  for (const auto& a : alerts) {
    if (a.kind_name() == kind) return &a;
  }
  return nullptr;
}

bool has_tag(const Alert& a, const std::string& tag) {
  return std::find(a.tags.begin(), a.tags.end(), tag) != a.tags.end();
}

}  // namespace

TEST_CASE("a peer flapping a foreign origin gives one alert, resolved after the hold",
          "[bgp][monitor]") {
  constexpr std::int64_t kSecond = 1'000'000;
  Monitor m(expectations(1, 0.5, 60 * kSecond), nullptr, nullptr);
  std::vector<Alert> alerts, all;
  auto feed = [&](const RouteEvent& e) {
    alerts.clear();
    m.observe(e, alerts);
    all.insert(all.end(), alerts.begin(), alerts.end());
  };
  // Most peers see the expected origin; one peer flaps AS64999's route every 40 s for 12 minutes.
  feed(from_peer(announce("rrc00", "104.20.0.0/20", {3356, 13335}, 0), "192.0.2.10", 3356));
  feed(from_peer(announce("rrc00", "104.20.0.0/20", {174, 13335}, 0), "192.0.2.11", 174));
  for (int i = 0; i < 18; ++i) {
    const std::int64_t t = i * 40 * kSecond;
    feed(from_peer(announce("rrc00", "104.20.0.0/20", {6939, 64999, 12345}, t + 1), "192.0.2.12",
                   6939));
    feed(from_peer(withdraw("rrc00", "104.20.0.0/20", 6939, t + 20 * kSecond), "192.0.2.12", 6939));
  }
  REQUIRE(names(all) == std::vector<std::string>{"open moas"});
  CHECK(all[0].origin == 12345u);
  // Nothing more until the hold has passed since the last withdrawal.
  std::vector<Alert> later;
  m.tick(17 * 40 * kSecond + 20 * kSecond + 59 * kSecond, later);
  CHECK(later.empty());
  m.tick(17 * 40 * kSecond + 20 * kSecond + 60 * kSecond, later);
  REQUIRE(names(later) == std::vector<std::string>{"resolved moas"});
  CHECK(later[0].time_us ==
        17 * 40 * kSecond + 20 * kSecond);  // when it went, not when the hold ended
  CHECK(later[0].key == all[0].key);
}

TEST_CASE(
    "appending a private ASN evades nothing; a private origin behind the expected AS is named",
    "[bgp][monitor]") {
  Monitor m(expectations(1), nullptr, nullptr);
  std::vector<Alert> alerts;
  // A hijacker (AS666) appends private AS65001: judged as AS666's hijack, tagged.
  m.observe(announce("rrc00", "104.20.0.0/20", {3356, 666, 65001}), alerts);
  m.observe(announce("rrc00", "104.20.1.0/24", {3356, 666, 65001, 4200000001u}), alerts);
  REQUIRE(names(alerts) == std::vector<std::string>{"open hijack", "open sub_prefix_hijack"});
  CHECK(alerts[0].origin == 666u);
  CHECK(has_tag(alerts[0], "private_origin"));
  CHECK(alerts[1].private_asns == std::vector<std::uint32_t>{65001, 4200000001u});
  CHECK(alerts[1].raw_path == "3356 666 65001 4200000001");
  // The operator's own edge leaks AS65201 behind the real origin: one private_origin (ticket).
  alerts.clear();
  m.observe(from_peer(announce("rrc00", "104.20.0.0/20", {174, 13335, 65201}), "192.0.2.20", 174),
            alerts);
  m.observe(from_peer(announce("rrc00", "104.20.0.0/20", {6939, 13335, 65201}), "192.0.2.21", 6939),
            alerts);
  REQUIRE(names(alerts) == std::vector<std::string>{"open private_origin"});
  CHECK(alerts[0].origin == 13335u);
  CHECK(alerts[0].severity() == "ticket");
  CHECK(alerts[0].to_text().find("private AS65201 behind AS13335") != std::string::npos);
  // A path of private ASNs only is ignored, and counted.
  alerts.clear();
  m.observe(announce("rrc00", "104.20.2.0/24", {65001, 65002}), alerts);
  CHECK(alerts.empty());
  CHECK(m.ignored_by_reason().at("private_path") == 1);
}

TEST_CASE("a prepend typo scores below a real hijack and says why", "[bgp][monitor]") {
  Monitor m(expectations(1), nullptr, nullptr);
  std::vector<Alert> alerts;
  m.observe(from_peer(announce("rrc00", "104.20.0.0/20", {3356, 13335}), "192.0.2.30", 3356),
            alerts);
  // "13335 3" where "13335 13335" was meant, AGGREGATOR naming the expected AS.
  RouteEvent typo =
      from_peer(announce("rrc00", "104.20.0.0/20", {174, 13335, 3}), "192.0.2.31", 174);
  typo.aggregator = 13335;
  m.observe(typo, alerts);
  // A more-specific from an origin never seen, through several peers: the 2008 YouTube pattern.
  for (int i = 0; i < 5; ++i) {
    const std::string ip = "192.0.2." + std::to_string(40 + i);
    m.observe(from_peer(announce("rrc00", "104.20.3.0/24", {3491, 17557}), ip.c_str(), 3491),
              alerts);
  }
  const Alert* t = find(alerts, "moas");
  const Alert* h = find(alerts, "sub_prefix_hijack");
  REQUIRE(t != nullptr);
  REQUIRE(h != nullptr);
  CHECK(has_tag(*t, "origin_after_expected"));
  CHECK(has_tag(*t, "aggregator_is_expected"));
  CHECK(has_tag(*h, "new_origin_never_seen"));
  CHECK(t->score < h->score);
  CHECK(t->severity() == "log");
  CHECK(h->severity() == "page");
  CHECK(t->to_text().find("AS3 directly after AS13335: likely a prepend typo") !=
        std::string::npos);
}

TEST_CASE("RPKI: a valid new origin lowers the score, an invalid one raises it", "[bgp][monitor]") {
  // A hand-made VRP set: 104.20.0.0/20-24 for AS13335 and AS209242.
  Vrps vrps;
  {
    const std::string path = "/tmp/vantage-monitor-test-vrps.json";
    FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs(R"({"roas":[{"asn":"AS13335","prefix":"104.20.0.0/20","maxLength":24},)"
               R"({"asn":209242,"prefix":"104.20.0.0/20","maxLength":24}]})",
               f);
    std::fclose(f);
    vrps = Vrps::load(path);
    std::remove(path.c_str());
  }
  Monitor m(expectations(1), nullptr, &vrps);
  std::vector<Alert> alerts;
  m.observe(announce("rrc00", "104.20.4.0/24", {3356, 209242}), alerts);
  m.observe(announce("rrc00", "104.20.5.0/24", {3356, 666}), alerts);
  REQUIRE(alerts.size() >= 2);
  CHECK(has_tag(alerts[0], "rpki_valid_new_origin"));
  CHECK(alerts[0].score < 40);
  const Alert* invalid = nullptr;
  for (const auto& a : alerts) {
    if (a.kind == Alert::Kind::sub_prefix_hijack && a.origin == 666u) invalid = &a;
  }
  REQUIRE(invalid != nullptr);
  CHECK(has_tag(*invalid, "rpki_invalid_new_origin"));
  CHECK(invalid->score > alerts[0].score);
}
