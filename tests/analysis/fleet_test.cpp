// The fleet side of analysis (docs/analysis.md#silent-vantage-points, #vantage-fleet): a vantage
// point that stops sending heartbeats is one vantage_point_silent incident (a ticket) opened at
// its last heartbeat + 3 intervals and resolved at its next heartbeat, and never a target's
// incident; `vantage fleet` over a store with the collector's vantage_points table.
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/app/incident_feed.hpp"
#include "analysis/cli/fleet_command.hpp"
#include "analysis/detect/analyzer.hpp"
#include "analysis/store/event_store.hpp"
#include "common/time.hpp"
#include "tests/analysis/memory_store.hpp"

namespace va = vantage::analysis;
namespace fs = std::filesystem;

namespace {

using vantage::analysis::testing::kS;
using vantage::analysis::testing::kT0;
using vantage::analysis::testing::MemoryStore;
using vantage::analysis::testing::options;

// Vantage points vp1..vpN (AS64501..) run an http check of shop.test every 5 s and send a
// heartbeat (interval 5 s: silent after 15 s) every 5 s, for 200 s. `alive(vp, t)` says whether
// it runs and heartbeats at t; `outcome(vp, t)` what its run gave. `heartbeats` false: an older
// probe that sends none.
struct Fleet {
  MemoryStore store;
  template <typename Alive, typename Outcome>
  void run(int n, Alive alive, Outcome outcome, bool heartbeats = true) {
    for (int t = 0; t < 200; t += 5) {
      for (int vp = 1; vp <= n; ++vp) {
        if (!alive(vp, t)) continue;
        const std::string id = "vp" + std::to_string(vp);
        if (heartbeats) {
          va::HeartbeatRow h;
          h.probe_id = id;
          h.received_ns = kT0 + t * kS;
          h.interval_ns = 5 * kS;
          h.asn = 64500 + vp;
          h.region = "region-" + std::to_string(vp);
          store.heartbeats.push_back(h);
        }
        result(vp, t, outcome(vp, t));
      }
    }
  }
  void result(int vp, int t, const std::string& outcome) {
    va::ProbeResultRow r;
    r.time_ns = kT0 + t * kS;
    r.probe_id = "vp" + std::to_string(vp);
    r.asn = 64500 + vp;
    r.isp = "ISP " + std::to_string(vp);
    r.region = "region-" + std::to_string(vp);
    r.check = "home";
    r.check_kind = "http";
    r.target = "https://shop.test/";
    r.host = "shop.test";
    r.server_ip = "198.51.100.10";
    r.outcome = outcome;
    if (outcome == "ok") r.status_code = 200;
    r.total_ms = 80;
    store.results.push_back(r);
  }
};

std::vector<va::Incident> of_kind(const va::AnalysisResult& r, va::Kind kind) {
  std::vector<va::Incident> out;
  for (const auto& i : r.incidents) {
    if (i.key.kind == kind) out.push_back(i);
  }
  return out;
}

std::string kinds(const va::AnalysisResult& r) {
  std::string s;
  for (const auto& i : r.incidents) s += i.id() + "; ";
  return s;
}

// vp2 stops at 50 s (its last heartbeat and run) and comes back at 120 s.
bool vp2_away(int vp, int t) { return vp == 2 && t > 50 && t < 120; }

}  // namespace

TEST_CASE("vantage_point_silent opens at exactly three heartbeat intervals, not before") {
  Fleet f;
  f.run(
      3, [](int vp, int t) { return !vp2_away(vp, t); }, [](int, int) { return "ok"; });
  // Last heartbeat at 50 s, interval 5 s: silent from 65 s.
  const auto before = va::analyze(f.store, kT0, kT0 + 65 * kS - 1, options());
  CHECK(before.incidents.empty());
  const auto at = va::analyze(f.store, kT0, kT0 + 65 * kS, options());
  REQUIRE(at.incidents.size() == 1);
  const va::Incident& i = at.incidents.front();
  CHECK(i.key.kind == va::Kind::vantage_point_silent);
  CHECK(i.key.scope == "probe=vp2");
  CHECK(i.severity == va::Severity::ticket);
  CHECK(i.opened_ns == kT0 + 65 * kS);
  CHECK(i.status != va::Status::resolved);
  CHECK(i.probes == std::vector<std::string>{"vp2"});
  CHECK(i.asns == std::vector<std::uint32_t>{64502});
  CHECK(i.last_heartbeat_ns == kT0 + 50 * kS);
  CHECK(i.title.find("vantage point vp2 (AS64502 ISP 2, region-2) silent") == 0);
  CHECK(i.runbook() == "docs/runbooks/vantage_point_silent.md");
  const auto j = nlohmann::json::parse(va::incident_json(i));
  CHECK(j["kind"] == "vantage_point_silent");
  CHECK(j["scope"]["probes"] == nlohmann::json::array({"vp2"}));
  CHECK(j["evidence"]["heartbeat_interval_s"] == 5.0);
}

TEST_CASE("vantage_point_silent resolves at the next heartbeat; one incident per silent one") {
  Fleet f;
  // vp3 stops for good at 80 s; vp1 keeps going.
  f.run(
      3, [](int vp, int t) { return !vp2_away(vp, t) && !(vp == 3 && t > 80); },
      [](int, int) { return "ok"; });
  const auto r = va::analyze(f.store, kT0, kT0 + 200 * kS, options());
  INFO(kinds(r));
  REQUIRE(r.incidents.size() == 2);
  const auto silent = of_kind(r, va::Kind::vantage_point_silent);
  REQUIRE(silent.size() == 2);
  CHECK(silent[0].key.scope == "probe=vp2");
  CHECK(silent[0].opened_ns == kT0 + 65 * kS);
  CHECK(silent[0].status == va::Status::resolved);
  CHECK(silent[0].resolved_ns == kT0 + 120 * kS);
  CHECK(silent[1].key.scope == "probe=vp3");
  CHECK(silent[1].opened_ns == kT0 + 95 * kS);
  CHECK(silent[1].status != va::Status::resolved);
  // The events in time order: opened vp2, opened vp3, resolved vp2.
  REQUIRE(r.events.size() == 3);
  CHECK(r.events[0].time_ns == kT0 + 65 * kS);
  CHECK(r.events[1].time_ns == kT0 + 95 * kS);
  CHECK(r.events[2].change == va::Change::resolved);
  CHECK(r.events[2].time_ns == kT0 + 120 * kS);
}

TEST_CASE("a vantage point never heard from by heartbeat never raises vantage_point_silent") {
  Fleet f;
  f.run(
      3, [](int vp, int t) { return !vp2_away(vp, t); }, [](int, int) { return "ok"; },
      /*heartbeats=*/false);
  const auto r = va::analyze(f.store, kT0, kT0 + 200 * kS, options());
  CHECK(r.incidents.empty());
}

TEST_CASE("a silent vantage point's spooled failures open no reachability loss") {
  // vp2's network is cut at 52 s: no heartbeat reaches the collector until 120 s, and the runs it
  // spooled meanwhile (timeouts) arrive when it is back. vp1 and vp3 reach the target throughout.
  auto outcome = [](int vp, int t) {
    return vp == 2 && t > 50 && t < 120 ? "tcp.timed_out" : "ok";
  };
  SECTION("with heartbeats: the silence is the incident") {
    Fleet f;
    f.run(
        3, [](int, int) { return true; }, outcome);
    // Heartbeats did not arrive while it was cut off.
    std::erase_if(f.store.heartbeats, [](const va::HeartbeatRow& h) {
      return h.probe_id == "vp2" && h.received_ns > kT0 + 50 * kS && h.received_ns < kT0 + 120 * kS;
    });
    const auto r = va::analyze(f.store, kT0, kT0 + 200 * kS, options());
    INFO(kinds(r));
    REQUIRE(r.incidents.size() == 1);
    CHECK(r.incidents[0].key.text() == "vantage_point_silent probe=vp2");
    CHECK(r.incidents[0].resolved_ns == kT0 + 120 * kS);
  }
  SECTION("heartbeats stopped but the runs arrive live: a silence ticket, and the runs count") {
    // vp2's heartbeats stop at 52 s (turned off by a reload, or refused at their URL) while its
    // results keep reaching the collector a second after each run: the timeouts are evidence.
    Fleet f;
    f.run(
        3, [](int, int) { return true; }, outcome);
    std::erase_if(f.store.heartbeats, [](const va::HeartbeatRow& h) {
      return h.probe_id == "vp2" && h.received_ns > kT0 + 50 * kS && h.received_ns < kT0 + 120 * kS;
    });
    for (auto& row : f.store.results) row.received_ns = row.time_ns + kS;
    const auto r = va::analyze(f.store, kT0, kT0 + 200 * kS, options());
    INFO(kinds(r));
    CHECK(of_kind(r, va::Kind::vantage_point_silent).size() == 1);
    CHECK(of_kind(r, va::Kind::reachability_loss).size() == 1);
  }
  SECTION("without heartbeats (an older probe) the same runs are a reachability loss") {
    Fleet f;
    f.run(
        3, [](int, int) { return true; }, outcome, /*heartbeats=*/false);
    const auto r = va::analyze(f.store, kT0, kT0 + 200 * kS, options());
    INFO(kinds(r));
    CHECK(of_kind(r, va::Kind::reachability_loss).size() == 1);
    CHECK(of_kind(r, va::Kind::vantage_point_silent).empty());
  }
}

TEST_CASE("a stopped vantage point opens no outage while the others keep succeeding") {
  // vp1 and vp2 stop (their last runs passed), vp3 keeps reaching the target.
  Fleet f;
  f.run(
      3, [](int vp, int t) { return vp == 3 || t <= 50; }, [](int, int) { return "ok"; });
  const auto r = va::analyze(f.store, kT0, kT0 + 200 * kS, options());
  INFO(kinds(r));
  CHECK(of_kind(r, va::Kind::vantage_point_silent).size() == 2);
  CHECK(r.incidents.size() == 2);
}

TEST_CASE("an incident whose vantage points are all silent is held until they report again") {
  // vp2 cannot reach the target from 20 s (vp1 can): a reachability loss of AS64502. vp2 then
  // stops at 50 s and comes back healthy at 120 s. Its silence neither resolves the loss (its
  // missing runs say nothing) nor keeps it open once it reports again.
  Fleet f;
  f.run(
      2, [](int vp, int t) { return !vp2_away(vp, t); },
      [](int vp, int t) { return vp == 2 && t >= 20 && t <= 50 ? "tcp.timed_out" : "ok"; });
  va::AnalyzerOptions o = options();
  o.window_ns = 30 * kS;  // the failures stay in the window past the silence's start (65 s)
  const auto r = va::analyze(f.store, kT0, kT0 + 200 * kS, o);
  INFO(kinds(r));
  const auto loss = of_kind(r, va::Kind::reachability_loss);
  REQUIRE(loss.size() == 1);
  CHECK(loss[0].probes == std::vector<std::string>{"vp2"});
  CHECK(loss[0].opened_ns < kT0 + 50 * kS);
  CHECK(loss[0].status == va::Status::resolved);
  CHECK(loss[0].resolved_ns > kT0 + 120 * kS);
  CHECK(loss[0].resolved_ns <= kT0 + 125 * kS);
  CHECK(of_kind(r, va::Kind::vantage_point_silent).size() == 1);
}

TEST_CASE("watch's feed reports a silence opened once and resolved once across cycles") {
  Fleet f;
  f.run(
      2, [](int vp, int t) { return !vp2_away(vp, t); }, [](int, int) { return "ok"; });
  va::IncidentFeed feed;
  std::vector<va::IncidentFeed::Update> all;
  // Cycles every 15 s replaying the last 40 s (shorter than the silence: its start comes from
  // the last heartbeat before each replay).
  for (std::int64_t to = 30; to <= 180; to += 15) {
    const std::int64_t to_ns = kT0 + to * kS;
    const std::int64_t from_ns = std::max(kT0, to_ns - 40 * kS);
    const auto replay = va::analyze(f.store, from_ns, to_ns, options());
    for (auto& u : feed.cycle(replay, to_ns)) all.push_back(u);
  }
  REQUIRE(all.size() == 2);
  CHECK(all[0].change == va::Change::opened);
  CHECK(all[0].incident.key.text() == "vantage_point_silent probe=vp2");
  CHECK(all[0].time_ns == kT0 + 65 * kS);
  CHECK(all[1].change == va::Change::resolved);
  CHECK(all[1].time_ns == kT0 + 120 * kS);
}

// --- the SQLite store and `vantage fleet` ------------------------------------------------------

namespace {

struct TempDb {
  fs::path path;
  explicit TempDb(const char* name)
      : path(fs::temp_directory_path() /
             ("vantage-fleet-" + std::string(name) + "-" + std::to_string(::getpid()) + ".db")) {
    remove();
  }
  ~TempDb() { remove(); }
  void remove() const {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix);
  }
  void exec(const std::string& sql) const {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.string().c_str(), &db) == SQLITE_OK);
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    INFO((error ? error : ""));
    sqlite3_free(error);
    sqlite3_close(db);
    REQUIRE(rc == SQLITE_OK);
  }
};

// The collector's tables the analysis reads (beacon-collector/store/sqlite_store.cpp).
constexpr const char* kBase = R"sql(
CREATE TABLE browser_reports (id INTEGER PRIMARY KEY, received_ns INTEGER NOT NULL,
  event_ns INTEGER NOT NULL, kind TEXT NOT NULL, type TEXT NOT NULL, endpoint TEXT NOT NULL,
  url TEXT NOT NULL, origin TEXT NOT NULL, nel_type TEXT, nel_phase TEXT, status_code INTEGER,
  method TEXT, protocol TEXT, elapsed_ms REAL, server_ip TEXT, server_asn INTEGER,
  server_as_org TEXT, weight REAL NOT NULL, client_prefix TEXT NOT NULL, country TEXT, city TEXT,
  asn INTEGER, isp TEXT, ua_family TEXT, ua_major INTEGER, body TEXT NOT NULL, url_template TEXT);
CREATE TABLE probe_results (result_id TEXT PRIMARY KEY, kind TEXT NOT NULL,
  time_ns INTEGER NOT NULL, received_ns INTEGER NOT NULL, probe_id TEXT NOT NULL, region TEXT,
  asn INTEGER, check_name TEXT NOT NULL, check_kind TEXT, target_url TEXT, server_ip TEXT,
  outcome TEXT NOT NULL, status_code INTEGER, total_ms REAL, record TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX probe_results_time ON probe_results(time_ns);
)sql";

// The fleet tables, exactly as the interface between the collector and analysis fixes them.
constexpr const char* kFleet = R"sql(
CREATE TABLE IF NOT EXISTS vantage_points (
  probe_id TEXT PRIMARY KEY, region TEXT, country TEXT, asn INTEGER, isp TEXT,
  version TEXT, revision TEXT, config_hash TEXT, config_source TEXT,
  served_config_hash TEXT, checks TEXT,
  spool_results INTEGER, spool_bytes INTEGER, heartbeat_interval_ns INTEGER,
  started_ns INTEGER, first_seen_ns INTEGER, last_seen_ns INTEGER, last_heartbeat_ns INTEGER);
CREATE TABLE IF NOT EXISTS heartbeats (
  id INTEGER PRIMARY KEY, probe_id TEXT NOT NULL, received_ns INTEGER NOT NULL,
  time_ns INTEGER, version TEXT, config_hash TEXT, spool_results INTEGER,
  heartbeat_interval_ns INTEGER);
CREATE INDEX IF NOT EXISTS heartbeats_probe_time ON heartbeats(probe_id, received_ns);
)sql";

std::string ns(std::int64_t v) { return std::to_string(v); }

// Three vantage points at `now`: eu-1 fine, us-1 on another version with a served config it does
// not run yet, ap-1 silent for 2 minutes (interval 30 s); old-1 never sent a heartbeat.
void seed_fleet(const TempDb& db, std::int64_t now) {
  db.exec(kBase);
  db.exec(kFleet);
  const std::int64_t s = kS;
  db.exec(
      "INSERT INTO vantage_points VALUES "
      "('eu-1','eu-west','DE',64501,'Example ISP','0.3.0','a2487b4','sha256:aaaa1111bbbb2222',"
      "'collector','sha256:aaaa1111bbbb2222','[\"shop-home\",\"api\"]',0,0,30000000000," +
      ns(now - 3600 * s) + "," + ns(now - 7200 * s) + "," + ns(now - 5 * s) + "," +
      ns(now - 10 * s) +
      "),"
      "('us-1','us-east','US',64502,'Ünïcode Net','0.2.9','1111111','sha256:cccc3333dddd4444',"
      "'collector','sha256:eeee5555ffff6666','[\"shop-home\"]',12,49152,30000000000," +
      ns(now - 3600 * s) + "," + ns(now - 7200 * s) + "," + ns(now - 20 * s) + "," +
      ns(now - 20 * s) +
      "),"
      "('ap-1','ap-south','IN',64503,'Far ISP','0.3.0','a2487b4','sha256:9999',"
      "'file',NULL,'[]',3,1024,30000000000," +
      ns(now - 3600 * s) + "," + ns(now - 7200 * s) + "," + ns(now - 120 * s) + "," +
      ns(now - 120 * s) +
      "),"
      "('old-1','eu-west','DE',64501,'Example ISP',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,"
      "NULL," +
      ns(now - 7200 * s) + "," + ns(now - 30 * s) + ",NULL)");
}

std::string run_fleet(const TempDb& db, const std::string& format, const std::string& now_arg,
                      std::int64_t clock_ns, int& status) {
  std::FILE* out = std::tmpfile();
  REQUIRE(out);
  vantage::ManualClock clock(clock_ns);
  status = va::cli::fleet(db.path.string(), format, now_arg, clock, out);
  std::rewind(out);
  std::string text;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, out)) > 0) text.append(buf, n);
  std::fclose(out);
  return text;
}

}  // namespace

TEST_CASE("vantage fleet: text and JSON over a seeded store show drift and silence") {
  TempDb db("cli");
  const std::int64_t now = kT0;
  seed_fleet(db, now);
  int status = -1;
  const std::string text = run_fleet(db, "text", "", now, status);
  INFO(text);
  CHECK(status == 0);
  CHECK(text.find("4 vantage points at ") == 0);
  CHECK(text.find(": 1 silent, 1 drifted; most common version 0.3.0\n") != std::string::npos);
  // One line per vantage point after the header, columns aligned.
  std::vector<std::string> lines;
  for (std::size_t p = 0, q; (q = text.find('\n', p)) != std::string::npos; p = q + 1)
    lines.push_back(text.substr(p, q - p));
  REQUIRE(lines.size() == 6);
  CHECK(lines[1].rfind("PROBE", 0) == 0);
  const auto column = [&](const std::string& line, const std::string& what) {
    std::size_t chars = 0;
    const auto at = line.find(what);
    if (at == std::string::npos) return at;
    for (std::size_t k = 0; k < at; ++k)
      chars += (static_cast<unsigned char>(line[k]) & 0xC0) != 0x80;
    return chars;
  };
  const std::size_t state_col = column(lines[1], "STATE");
  CHECK(lines[2].rfind("ap-1", 0) == 0);
  CHECK(column(lines[2], "silent 2m") == state_col);
  CHECK(column(lines[3], "ok") == state_col);
  CHECK(lines[4].rfind("old-1", 0) == 0);
  CHECK(column(lines[4], "unknown") == state_col);
  CHECK(lines[5].rfind("us-1", 0) == 0);
  CHECK(column(lines[5], "ok") == state_col);  // after a UTF-8 ISP name
  CHECK(lines[5].find("0.2.9 (1111111)") != std::string::npos);
  CHECK(lines[5].find("config (served eeee5555ffff), version") != std::string::npos);
  CHECK(lines[5].find("12 (48.0 KiB)") != std::string::npos);
  CHECK(lines[5].find("20s ago") != std::string::npos);
  CHECK(lines[3].find("eu-1") == 0);
  CHECK(lines[3].find("collector aaaa1111bbbb  -") != std::string::npos);  // no drift

  const std::string json = run_fleet(db, "json", "", now, status);
  CHECK(status == 0);
  const auto j = nlohmann::json::parse(json);
  CHECK(j["common_version"] == "0.3.0");
  const auto& vps = j["vantage_points"];
  REQUIRE(vps.size() == 4);
  CHECK(vps[0]["probe_id"] == "ap-1");
  CHECK(vps[0]["state"] == "silent");
  CHECK(vps[0]["config_drift"] == false);  // a file config does not drift from the collector's
  CHECK(vps[0]["served_config_hash"].is_null());
  CHECK(vps[1]["state"] == "ok");
  CHECK(vps[1]["checks"] == nlohmann::json::array({"shop-home", "api"}));
  CHECK(vps[1]["last_seen_age_s"] == 5.0);
  CHECK(vps[2]["state"] == "unknown");
  CHECK(vps[2]["last_heartbeat"].is_null());
  CHECK(vps[3]["config_drift"] == true);
  CHECK(vps[3]["version_drift"] == true);
  CHECK(vps[3]["spool_bytes"] == 49152);
  CHECK(vps[3]["heartbeat_interval_s"] == 30.0);

  // --now: ages taken at another time (a minute earlier ap-1 was not silent yet: 60 s < 90 s).
  const std::string earlier = run_fleet(db, "json", "1m", now, status);
  CHECK(status == 0);
  CHECK(nlohmann::json::parse(earlier)["vantage_points"][0]["state"] == "ok");
  run_fleet(db, "text", "yesterday", now, status);
  CHECK(status == 2);
}

TEST_CASE("vantage fleet: a store without the vantage_points table is an error") {
  TempDb db("old");
  db.exec(kBase);
  int status = -1;
  run_fleet(db, "text", "", kT0, status);
  CHECK(status == 1);
}

TEST_CASE("SQLite heartbeats: the last one before the range, then the range, in time order") {
  TempDb db("heartbeats");
  db.exec(kBase);
  SECTION("a store without the heartbeats table reads none") {
    auto store = va::open_sqlite_store(db.path.string());
    int n = 0;
    store->scan_heartbeats(0, kT0 * 2, [&](const va::HeartbeatRow&) { ++n; });
    CHECK(n == 0);
    CHECK_FALSE(store->time_span());
  }
  SECTION("with history") {
    db.exec(kFleet);
    db.exec(
        "INSERT INTO vantage_points (probe_id, region, asn, isp, heartbeat_interval_ns, "
        "last_heartbeat_ns) VALUES ('a','eu-west',64501,'Example ISP',30000000000," +
        ns(kT0 + 100 * kS) + "), ('pruned','us-east',64502,'Other',60000000000," +
        ns(kT0 - 5000 * kS) + ")");
    // In the order received, as the collector writes them.
    std::string rows;
    for (int t : {0, 30, 45, 60, 90}) {
      rows += std::string(rows.empty() ? "" : ",") +
              (t == 45 ? "('b'," + ns(kT0 + t * kS) + ",NULL)"
                       : "('a'," + ns(kT0 + t * kS) + ",30000000000)");
    }
    db.exec("INSERT INTO heartbeats (probe_id, received_ns, heartbeat_interval_ns) VALUES " + rows);
    auto store = va::open_sqlite_store(db.path.string());
    std::vector<std::string> seen;
    store->scan_heartbeats(kT0 + 40 * kS, kT0 + 90 * kS, [&](const va::HeartbeatRow& h) {
      seen.push_back(h.probe_id + "@" + std::to_string((h.received_ns - kT0) / kS) + "/" +
                     std::to_string(h.interval_ns / kS) + "/" + std::to_string(h.asn));
    });
    // pruned: only the fleet table's last heartbeat is left, before the range; a: its last one
    // before 40 s (30 s) and 60 s; b: no fleet row, its interval not said.
    CHECK(seen == std::vector<std::string>{"pruned@-5000/60/64502", "a@30/30/64501", "b@45/0/0",
                                           "a@60/30/64501"});
    const auto span = store->time_span();
    REQUIRE(span);
    CHECK(span->first == kT0);
    CHECK(span->second == kT0 + 90 * kS);
  }
}

TEST_CASE("vantage incidents over a SQLite store: a silent vantage point from the heartbeats") {
  TempDb db("replay");
  db.exec(kBase);
  db.exec(kFleet);
  std::string results, beats;
  for (int t = 0; t < 200; t += 5) {
    for (const char* vp : {"a", "b"}) {
      if (std::string(vp) == "b" && t > 50 && t < 120) continue;  // b stopped
      results += std::string(results.empty() ? "" : ",") + "('" + vp + std::to_string(t) +
                 "','check_result'," + ns(kT0 + t * kS) + "," + ns(kT0 + t * kS) + ",'" + vp +
                 "','eu'," + (std::string(vp) == "a" ? "64501" : "64502") +
                 ",'home','http','https://shop.test/','198.51.100.10','ok',200,80,'{}')";
      beats += std::string(beats.empty() ? "" : ",") + "('" + vp + "'," + ns(kT0 + t * kS) +
               ",5000000000)";
    }
  }
  db.exec("INSERT INTO probe_results VALUES " + results);
  db.exec("INSERT INTO heartbeats (probe_id, received_ns, heartbeat_interval_ns) VALUES " + beats);
  auto store = va::open_sqlite_store(db.path.string());
  const auto r = va::analyze(*store, kT0, kT0 + 200 * kS, options());
  INFO(kinds(r));
  REQUIRE(r.incidents.size() == 1);
  CHECK(r.incidents[0].key.text() == "vantage_point_silent probe=b");
  CHECK(r.incidents[0].opened_ns == kT0 + 65 * kS);
  CHECK(r.incidents[0].resolved_ns == kT0 + 120 * kS);
  store.reset();
  va::save_incidents(db.path.string(), r.incidents);
  va::save_incidents(db.path.string(), r.incidents);  // an upsert: still one row
  db.exec(
      "CREATE TABLE check_rows AS SELECT count(*) n FROM incidents WHERE kind = "
      "'vantage_point_silent' AND status = 'resolved'");
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.path.string().c_str(), &raw) == SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  REQUIRE(sqlite3_prepare_v2(raw, "SELECT n FROM check_rows", -1, &q, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(q) == SQLITE_ROW);
  CHECK(sqlite3_column_int(q, 0) == 1);
  sqlite3_finalize(q);
  sqlite3_close(raw);
}

TEST_CASE("vantage fleet --now in the past: the fleet as the heartbeats history had it") {
  TempDb db("as-of");
  const std::int64_t now = kT0 + 3600 * kS;
  seed_fleet(db, now);
  // ap-1 sent heartbeats every 30 s until now - 120 s. Ten minutes earlier it was fine, on an
  // older version; eu-1 (last seen now - 5 s) had its last heartbeat before then at now - 610 s.
  db.exec(
      "INSERT INTO heartbeats (probe_id, received_ns, version, config_hash, spool_results, "
      "heartbeat_interval_ns) VALUES ('ap-1'," +
      ns(now - 620 * kS) + ",'0.2.9','sha256:8888',7,30000000000),('eu-1'," + ns(now - 610 * kS) +
      ",'0.3.0','sha256:aaaa1111bbbb2222',0,30000000000)");
  const auto then = va::read_vantage_points(db.path.string(), now - 600 * kS);
  REQUIRE(then);
  std::map<std::string, va::VantagePointRow> by_id;
  for (const auto& r : *then) by_id[r.probe_id] = r;
  REQUIRE(by_id.count("ap-1") == 1);
  CHECK(by_id["ap-1"].last_heartbeat_ns == now - 620 * kS);
  CHECK(by_id["ap-1"].version == "0.2.9");
  CHECK(by_id["ap-1"].spool_results == 7);
  CHECK(by_id["eu-1"].last_heartbeat_ns == now - 610 * kS);
  // us-1 sent no heartbeat by then (none in the history): unknown, not ok.
  CHECK(by_id["us-1"].last_heartbeat_ns == 0);
  const va::cli::Fleet f = va::cli::build_fleet(*then, now - 600 * kS);
  for (const auto& e : f.entries) {
    if (e.row.probe_id == "ap-1" || e.row.probe_id == "eu-1") CHECK(e.state == "ok");
    if (e.row.probe_id == "us-1") CHECK(e.state == "unknown");
  }
  // And at `now` itself ap-1 is silent, as the latest state says.
  const auto latest = va::read_vantage_points(db.path.string(), now);
  REQUIRE(latest);
  for (const auto& e : va::cli::build_fleet(*latest, now).entries) {
    if (e.row.probe_id == "ap-1") CHECK(e.state == "silent");
  }
}
