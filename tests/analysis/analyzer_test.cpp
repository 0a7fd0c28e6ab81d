// The analyzer's "one outage, one incident" rules on hand-made event streams (an in-memory
// EventStore): BGP alerts as incidents of their own or as evidence, a wrong DNS answer taking over
// the connection failures behind it, and what stays two incidents.
#include <catch2/catch.hpp>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "analysis/detect/analyzer.hpp"
#include "analysis/store/event_store.hpp"

namespace va = vantage::analysis;

namespace {

constexpr std::int64_t kS = 1'000'000'000;
constexpr std::int64_t kT0 = 1'790'000'000 * kS;  // a whole second

class MemoryStore : public va::EventStore {
 public:
  std::vector<va::ProbeResultRow> results;
  std::vector<va::BrowserReportRow> reports;
  std::vector<va::BgpAlertRow> alerts;

  void scan_results(std::int64_t from, std::int64_t to, const std::function<void(const va::ProbeResultRow&)>& fn) override {
    for (const auto& r : results) {
      if (r.time_ns >= from && r.time_ns < to) fn(r);
    }
  }
  void scan_reports(std::int64_t from, std::int64_t to, const std::function<void(const va::BrowserReportRow&)>& fn) override {
    for (const auto& r : reports) {
      if (r.time_ns >= from && r.time_ns < to) fn(r);
    }
  }
  void scan_bgp_alerts(std::int64_t from, std::int64_t to, const std::function<void(const va::BgpAlertRow&)>& fn) override {
    for (const auto& a : alerts) {
      if (a.time_ns >= from && a.time_ns < to) fn(a);
    }
  }
  std::optional<std::pair<std::int64_t, std::int64_t>> time_span() override { return std::make_pair(kT0, kT0 + 200 * kS); }
};

// The lab's compressed clock: 1 s steps, 10 s windows, two results per vantage point per window.
va::AnalyzerOptions options() {
  va::AnalyzerOptions o;
  o.step_ns = kS;
  o.window_ns = 10 * kS;
  o.min_results = 2;
  o.open_after = 2;
  o.resolve_after = 3;
  o.bgp_hold_ns = 6 * kS;
  return o;
}

// Three vantage points (AS64501..3) run an http check of the origin (198.51.100.10) at t % 5 == 0
// and a dns check through their own resolver at t % 5 == 3, for 150 s; `fail` decides a result.
struct Stream {
  MemoryStore store;
  template <typename Fail>
  void run(Fail fail) {
    for (int t = 0; t < 150; t += 5) {
      for (std::uint32_t vp = 1; vp <= 3; ++vp) {
        va::ProbeResultRow http;
        http.time_ns = kT0 + t * kS;
        http.probe_id = "vp" + std::to_string(vp);
        http.asn = 64500 + vp;
        http.isp = "ISP " + std::to_string(vp);
        http.country = vp == 3 ? "US" : "DE";
        http.check = "home";
        http.check_kind = "http";
        http.target = "https://shop.test/";
        http.host = "shop.test";
        http.server_ip = "198.51.100.10";
        http.outcome = "ok";
        http.total_ms = 5;
        va::ProbeResultRow dns = http;
        dns.time_ns += 3 * kS;
        dns.check = "dns";
        dns.check_kind = "dns";
        dns.target = "dns";
        dns.server_ip = "10.64." + std::to_string(vp) + ".2";
        fail(t, vp, http, dns);
        store.results.push_back(http);
        store.results.push_back(dns);
      }
    }
  }
  void alert(const std::string& kind, const std::string& prefix, std::uint32_t origin, std::uint32_t leaker,
             int open_s, int resolve_s) {
    va::BgpAlertRow a;
    a.alert = kind;
    a.alert_key = kind + " " + prefix;
    a.prefix = prefix;
    a.origin_asn = origin;
    a.leaker_asn = leaker;
    a.status = "open";
    a.time_ns = kT0 + open_s * kS + kS / 10;
    store.alerts.push_back(a);
    a.status = "resolved";
    a.time_ns = kT0 + resolve_s * kS;
    store.alerts.push_back(a);
  }
  va::AnalysisResult analyze(const va::AnalyzerOptions& o = options()) {
    return va::analyze(store, kT0, kT0 + 150 * kS, o);
  }
};

std::vector<std::string> kinds(const va::AnalysisResult& r) {
  std::vector<std::string> out;
  for (const auto& i : r.incidents) out.push_back(std::string(va::kind_name(i.key.kind)));
  return out;
}

}  // namespace

TEST_CASE("a BGP alert no vantage point's traffic shows is an incident of its own after the hold",
          "[analysis]") {
  Stream s;
  s.run([](int, std::uint32_t, va::ProbeResultRow&, va::ProbeResultRow&) {});
  s.alert("sub_prefix_hijack", "198.51.100.0/25", 17557, 0, 60, 80);
  const auto r = s.analyze();
  REQUIRE(kinds(r) == std::vector<std::string>{"bgp_sub_prefix_hijack"});
  const auto& i = r.incidents.front();
  CHECK(i.opened_ns == kT0 + 67 * kS);  // open at 60.1 s, held 6 s: the first whole step after
  CHECK(i.asns == std::vector<std::uint32_t>{17557});
  CHECK(i.prefixes == std::vector<std::string>{"198.51.100.0/25"});
  CHECK(i.runbook() == "docs/runbooks/bgp.md");
  CHECK(i.status == va::Status::resolved);
  CHECK(i.resolved_ns >= kT0 + 80 * kS);
}

TEST_CASE("a route leak that black-holes one network is one reachability loss carrying the leak",
          "[analysis]") {
  Stream s;
  s.run([](int t, std::uint32_t vp, va::ProbeResultRow& http, va::ProbeResultRow&) {
    if (vp == 1 && t >= 60 && t < 90) http.outcome = "tcp.timed_out";
  });
  s.alert("route_leak", "198.51.100.0/24", 64500, 396531, 60, 90);
  const auto r = s.analyze();
  REQUIRE(kinds(r) == std::vector<std::string>{"reachability_loss"});
  const auto& i = r.incidents.front();
  CHECK(i.asns == std::vector<std::uint32_t>{64501});
  CHECK(i.bgp_alerts == std::vector<std::string>{"route_leak 198.51.100.0/24 (leaker AS396531)"});
}

TEST_CASE("a BGP alert an opened reachability loss carried stays its evidence after the loss "
          "resolves",
          "[analysis]") {
  Stream s;
  s.run([](int t, std::uint32_t vp, va::ProbeResultRow& http, va::ProbeResultRow&) {
    if (vp == 1 && t >= 60 && t < 80) http.outcome = "tcp.timed_out";
  });
  s.alert("route_leak", "198.51.100.0/24", 64500, 396531, 60, 120);  // outlives the outage
  const auto r = s.analyze();
  CHECK(kinds(r) == std::vector<std::string>{"reachability_loss"});
}

TEST_CASE("a reachability finding that never opens holds a BGP alert back only while it lasts",
          "[analysis]") {
  Stream s;
  s.run([](int t, std::uint32_t vp, va::ProbeResultRow& http, va::ProbeResultRow&) {
    if (vp == 1 && t == 60) http.outcome = "tcp.timed_out";  // one failure: a finding for one window
  });
  s.alert("route_leak", "198.51.100.0/24", 64500, 396531, 60, 100);
  auto o = options();
  o.open_after = 30;  // longer than the failure stays in the window: the finding never opens
  const auto r = s.analyze(o);
  REQUIRE(kinds(r) == std::vector<std::string>{"bgp_route_leak"});
  // The finding carried it until the vantage point passed again (65 s): then the alert opens
  // after its own hold (60.1 s + 6 s), at the first whole step.
  CHECK(r.incidents.front().opened_ns == kT0 + 67 * kS);
}

TEST_CASE("a wrong DNS answer is one dns_failure, not also a reachability loss", "[analysis]") {
  Stream s;
  s.run([](int t, std::uint32_t vp, va::ProbeResultRow& http, va::ProbeResultRow& dns) {
    if (vp != 2 || t < 60 || t >= 90) return;
    dns.outcome = "assertion.failed";  // the answer is outside the origin's prefix
    http.outcome = "tcp.timed_out";    // and the http check went there (it runs first)
    http.server_ip = "192.0.2.66";
  });
  const auto r = s.analyze();
  REQUIRE(kinds(r) == std::vector<std::string>{"dns_failure"});
  CHECK(r.incidents.front().asns == std::vector<std::uint32_t>{64502});
  CHECK(r.incidents.front().id().rfind("dns_failure resolver=10.64.2.2 @", 0) == 0);
}

TEST_CASE("a network that loses the origin at its right address while its resolver also fails "
          "gets both incidents",
          "[analysis]") {
  Stream s;
  s.run([](int t, std::uint32_t vp, va::ProbeResultRow& http, va::ProbeResultRow& dns) {
    if (vp != 2 || t < 60 || t >= 90) return;
    dns.outcome = "dns.unreachable";
    http.outcome = "tcp.timed_out";  // at 198.51.100.10, where the others connect
  });
  auto r = s.analyze();
  auto k = kinds(r);
  std::sort(k.begin(), k.end());
  CHECK(k == std::vector<std::string>{"dns_failure", "reachability_loss"});
  // Not taken over by the DNS failure: it lasts as long as the outage.
  for (const auto& i : r.incidents) {
    if (i.key.kind == va::Kind::reachability_loss) CHECK(i.resolved_ns >= kT0 + 90 * kS);
  }
}
