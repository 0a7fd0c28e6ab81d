// The monitor's alert lifecycle on hand-made route events: a path change is one transition, not
// a resolve and re-open; min_peers; one neighbour seen by two routers is two peers.
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

RouteEvent withdraw(const char* collector, const char* pfx, std::uint32_t peer_asn, std::int64_t t = 2) {
  RouteEvent e;
  e.kind = RouteEvent::Kind::withdraw;
  e.time_us = t;
  e.collector = collector;
  e.peer_ip = prefix("192.0.2.1/32").addr;
  e.peer_asn = peer_asn;
  e.prefix = prefix(pfx);
  return e;
}

Expectations expectations(int min_peers, double visibility_threshold = 0.5) {
  Expectations x;
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
  Monitor m(expectations(2, 0.9), nullptr, nullptr);  // losing one of two peers is no visibility loss
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

TEST_CASE("a router's Peer Up makes the peer's routes stale until it re-sends them; End-of-RIB "
          "or the refresh timeout withdraws the rest", "[bgp][monitor]") {
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
