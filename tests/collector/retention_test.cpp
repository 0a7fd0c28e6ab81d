// Retention of the collector's SQLite store (beacon-collector/store/retention.hpp): the pruning
// SQL, and several simulated days ingested at full rate through the real Writer into a real
// SQLite file on a fake clock, with `retention: 1d` for every table — the file stays under a
// bound computed from the measured bytes per record, and no row younger than the retention is
// deleted.
#include "beacon-collector/store/retention.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "beacon-collector/config.hpp"
#include "beacon-collector/store/sqlite_store.hpp"
#include "common/config_node.hpp"
#include "common/time.hpp"

namespace fs = std::filesystem;
using namespace vantage;
using namespace vantage::collector;
using store::Table;

namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kHour = 3600 * kSecond;
constexpr std::int64_t kDay = 24 * kHour;
const std::int64_t kStart = to_unix_nanos(*parse_rfc3339("2026-12-01T00:00:00Z"));

// A database file in the temporary directory, removed (with its -wal and -shm) at both ends.
struct TempDb {
  fs::path path;
  explicit TempDb(const std::string& name)
      : path(fs::temp_directory_path() /
             ("vantage-retention-" + name + "-" + std::to_string(::getpid()) + ".db")) {
    remove();
  }
  ~TempDb() { remove(); }
  void remove() const {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix);
  }
  std::string str() const { return path.string(); }
};

// A plain connection for the test's own reads and writes (as `vantage incidents` would be).
struct Db {
  sqlite3* db = nullptr;
  explicit Db(const std::string& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                            nullptr) == SQLITE_OK);
    sqlite3_busy_timeout(db, 10'000);
  }
  ~Db() { sqlite3_close(db); }
  void exec(const std::string& sql) const {
    char* error = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    INFO(sql << ": " << (error ? error : ""));
    sqlite3_free(error);
    REQUIRE(rc == SQLITE_OK);
  }
  std::int64_t one(const std::string& sql) const {
    sqlite3_stmt* s = nullptr;
    INFO(sql);
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(s) == SQLITE_ROW);
    const std::int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
  }
};

// The incidents table as the analysis creates it (analysis/store/event_store.cpp).
constexpr const char* kIncidentsDdl =
    "CREATE TABLE IF NOT EXISTS incidents (id TEXT PRIMARY KEY, kind TEXT NOT NULL, severity "
    "TEXT NOT NULL, status TEXT NOT NULL, opened_ns INTEGER NOT NULL, resolved_ns INTEGER, "
    "title TEXT NOT NULL, runbook TEXT, record TEXT NOT NULL, key TEXT) WITHOUT ROWID";

void insert_incident(const Db& db, const std::string& id, std::int64_t opened_ns,
                     std::optional<std::int64_t> resolved_ns) {
  db.exec(
      "INSERT INTO incidents (id, kind, severity, status, opened_ns, resolved_ns, title, "
      "record, key) VALUES ('" +
      id + "', 'outage', 'page', '" + (resolved_ns ? "resolved" : "open") + "', " +
      std::to_string(opened_ns) + ", " +
      (resolved_ns ? std::to_string(*resolved_ns) : std::string("NULL")) + ", 'Outage', '{}', '" +
      id + "')");
}

// One simulated minute of a small site: browser reports, probe results, a route event, a
// heartbeat and now and then a BGP alert, all stamped `t`.
struct Stream {
  int reports_per_step = 12;
  std::int64_t serial = 0;
  std::string body;
  Stream() {
    // A Chromium NEL report body as the collector stores it (about 450 bytes).
    body = R"({"elapsed_time":30012,"method":"POST","phase":"connection","protocol":"http/1.1",)"
           R"("referrer":"https://shop.example.com/cart","sampling_fraction":1.0,)"
           R"("server_ip":"192.0.2.10","status_code":0,"type":"tcp.timed_out","url":)"
           R"("https://shop.example.com/checkout/payment","user_agent":"Mozilla/5.0 (X11; Linux )"
           R"(x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",)"
           R"("age":1234,"attempt":1,"note":"padding to a realistic size......................"})";
  }

  // Ids that sort in time order, as the probes' UUIDv7 do.
  std::string id(const char* prefix) {
    char text[40];
    std::snprintf(text, sizeof text, "%s-%012lld", prefix, static_cast<long long>(++serial));
    return text;
  }

  store::Upload step(std::int64_t t, std::int64_t index) {
    store::Upload u;
    for (int i = 0; i < reports_per_step; ++i) {
      BrowserRecord b;
      b.received_ns = t;
      b.event_ns = t;
      b.kind = "browser_report";
      b.type = "network-error";
      b.endpoint = "reports/default";
      b.url = "https://shop.example.com/checkout/payment";
      b.url_template = b.url;
      b.origin = "https://shop.example.com";
      b.nel_type = "tcp.timed_out";
      b.nel_phase = "connection";
      b.method = "POST";
      b.protocol = "http/1.1";
      b.elapsed_ms = 30012;
      b.server_ip = "192.0.2.10";
      b.client_prefix = "198.51.100.0/24";
      b.country = "DE";
      b.asn = 64501;
      b.isp = "Example ISP";
      b.ua_family = "Chrome";
      b.ua_major = 156;
      b.body = body;
      u.reports.push_back(std::move(b));
    }
    for (int i = 0; i < 2; ++i) {
      ResultRecord r;
      r.id = id("result");
      r.kind = "check_result";
      r.time_ns = t;
      r.received_ns = t;
      r.probe_id = "eu-west-1";
      r.region = "eu-west";
      r.asn = 64501;
      r.check = i ? "shop-home" : "api-health";
      r.check_kind = "http";
      r.target_url = "https://shop.example.com/";
      r.server_ip = "192.0.2.10";
      r.outcome = "ok";
      r.status_code = 200;
      r.total_ms = 84.5;
      r.json = R"({"kind":"check_result","id":")" + r.id + R"(","outcome":"ok","phases":{}})";
      u.results.push_back(std::move(r));
    }
    auto bgp = [&](const char* kind) {
      ResultRecord r;
      r.id = id(kind);
      r.kind = kind;
      r.time_ns = t;
      r.received_ns = t;
      r.probe_id = "eu-west-1";
      r.check = "bgp";
      r.json = "{}";
      BgpRecord b;
      b.kind = kind;
      b.event = r.kind == "route_event" ? "announce" : "hijack";
      b.status = "open";
      b.alert_key = "k";
      b.prefix = "192.0.2.0/24";
      b.monitored_prefix = "192.0.2.0/24";
      b.collector = "192.0.2.1";
      b.peer_ip = "192.0.2.2";
      b.peer_asn = 64500;
      b.origin = 64501;
      b.as_path = "64500 64501";
      r.bgp = b;
      return r;
    };
    u.results.push_back(bgp("route_event"));
    if (index % 10 == 0) u.results.push_back(bgp("bgp_alert"));
    HeartbeatRecord h;
    h.received_ns = t;
    h.time_ns = t;
    h.probe_id = "eu-west-1";
    h.region = "eu-west";
    h.version = "0.3.0";
    h.config_hash = "sha256:00";
    h.heartbeat_interval_ns = 60 * kSecond;
    u.heartbeats.push_back(std::move(h));
    return u;
  }
};

store::RetentionPolicy every_table(std::int64_t ns) {
  store::RetentionPolicy p;
  for (Table t : store::kTables) p[t] = std::chrono::nanoseconds(ns);
  return p;
}

// Waits (on the writer, not on time) until the queue is empty and its last batch committed.
void drain(const store::Writer& writer, std::uint64_t submitted) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (writer.committed_records() < submitted) {
    if (std::chrono::steady_clock::now() > give_up) FAIL("the writer did not commit in 120 s");
    std::this_thread::yield();
  }
}

}  // namespace

TEST_CASE("retention keys parse per table, and absent tables are kept forever",
          "[collector][retention][config]") {
  const auto c = parse_collector_config(ConfigNode::load_string(
      "store:\n  sqlite: /var/lib/vantage/collector.db\n  retention:\n    browser_reports: 7d\n"
      "    incidents: 365d\n  prune_interval: 30s\n  prune_batch_rows: 500\n",
      "c.yaml"));
  CHECK(c.store.retention[Table::browser_reports] == std::chrono::hours(24 * 7));
  CHECK(c.store.retention[Table::incidents] == std::chrono::hours(24 * 365));
  CHECK_FALSE(c.store.retention[Table::probe_results]);
  CHECK_FALSE(c.store.retention[Table::heartbeats]);
  CHECK(c.store.prune_interval == std::chrono::seconds(30));
  CHECK(c.store.prune_batch_rows == 500);
  const auto d = parse_collector_config(ConfigNode::load_string("store: {sqlite: x.db}\n", "d"));
  CHECK_FALSE(d.store.retention.any());
  CHECK(d.store.prune_interval == std::chrono::seconds(60));
  CHECK(d.store.prune_batch_rows == 2000);
  for (Table t : store::kTables) CHECK(store::table_from_name(store::table_name(t)) == t);
  CHECK_FALSE(store::table_from_name("vantage_points"));
}

TEST_CASE(
    "a prune batch deletes the oldest rows first, at most its limit, and never an open "
    "incident",
    "[collector][retention]") {
  TempDb file("batch");
  { store::SqliteStore create(file.str()); }
  Db db(file.str());
  db.exec(kIncidentsDdl);
  db.exec("BEGIN");
  for (int i = 0; i < 100; ++i) {
    db.exec(
        "INSERT INTO probe_results (result_id, kind, time_ns, received_ns, probe_id, "
        "check_name, outcome, record) VALUES ('r" +
        std::to_string(i) + "', 'check_result', " + std::to_string(kStart + i * kHour) +
        ", 0, 'p', 'c', 'ok', '{}')");
  }
  db.exec("COMMIT");
  insert_incident(db, "open-old", kStart, std::nullopt);
  insert_incident(db, "resolved-old", kStart, kStart + kHour);
  insert_incident(db, "resolved-new", kStart, kStart + 90 * kHour);

  store::Pruner pruner(file.str());
  std::error_code ec;
  const std::int64_t cutoff = kStart + 50 * kHour;  // rows 0..49 are older
  CHECK(pruner.count_older(Table::probe_results, cutoff, ec) == 50);
  CHECK(pruner.delete_older(Table::probe_results, cutoff, 20, ec) == 20);
  REQUIRE_FALSE(ec);
  CHECK(db.one("SELECT min(time_ns) FROM probe_results") == kStart + 20 * kHour);
  CHECK(pruner.delete_older(Table::probe_results, cutoff, 1000, ec) == 30);
  CHECK(pruner.delete_older(Table::probe_results, cutoff, 1000, ec) == 0);
  CHECK(db.one("SELECT count(*) FROM probe_results") == 50);
  CHECK(db.one("SELECT min(time_ns) FROM probe_results") == cutoff);

  REQUIRE_FALSE(pruner.ensure_index(Table::incidents));
  CHECK(db.one("SELECT count(*) FROM sqlite_master WHERE name = 'incidents_resolved'") == 1);
  CHECK(pruner.delete_older(Table::incidents, cutoff, 1000, ec) == 1);
  CHECK(db.one("SELECT count(*) FROM incidents WHERE id = 'open-old'") == 1);
  CHECK(db.one("SELECT count(*) FROM incidents WHERE id = 'resolved-new'") == 1);
  // A table the store does not have (yet) is no error for exists().
  db.exec("DROP TABLE incidents");
  CHECK_FALSE(pruner.exists(Table::incidents, ec));
  CHECK_FALSE(ec);
}

TEST_CASE(
    "four simulated days at full rate with retention 1d stay under the size bound and "
    "keep every row younger than a day",
    "[collector][retention]") {
  TempDb file("days");
  constexpr int kDays = 4;
  constexpr std::int64_t kStep = 60 * kSecond;  // one upload per simulated minute
  constexpr std::int64_t kSteps = kDays * kDay / kStep;
  constexpr std::int64_t kInterval = kHour;  // store.prune_interval
  ManualClock clock(kStart);
  Stream stream;
  std::map<Table, std::vector<std::int64_t>> generated;  // the time of every row submitted
  std::uint64_t submitted = 0;
  std::uint64_t max_file_bytes = 0;
  std::uint64_t max_main_bytes = 0, max_wal_bytes = 0;
  double bytes_per_record = 0;
  std::int64_t records_first_day = 0;
  std::uint64_t pruned_while_ingesting = 0;
  std::uint64_t retries = 0;

  store::SqliteStore sqlite(file.str());
  store::Retention retention(file.str(), every_table(kDay),
                             {std::chrono::nanoseconds(kInterval), 500}, clock);
  Db db(file.str());  // the test's reader (and the analysis writing incidents)
  {
    // Batches of 250 records (a quarter of a simulated hour) and a queue of 2,000 (two hours):
    // the writer gets several turns per prune interval, as in a real collector where one
    // interval spans thousands of commits.
    store::Writer writer(sqlite, 2'000, 250, std::chrono::milliseconds(5), &retention);
    for (std::int64_t i = 0; i < kSteps; ++i) {
      const std::int64_t t = kStart + i * kStep;
      clock.set(t);
      store::Upload u = stream.step(t, i);
      generated[Table::browser_reports].insert(generated[Table::browser_reports].end(),
                                               u.reports.size(), t);
      for (const auto& r : u.results) {
        generated[!r.bgp                    ? Table::probe_results
                  : r.kind == "route_event" ? Table::route_events
                                            : Table::bgp_alerts]
            .push_back(t);
      }
      generated[Table::heartbeats].push_back(t);
      const std::uint64_t n = u.reports.size() + u.results.size() + u.heartbeats.size();
      // Full rate: the next upload goes in as soon as the queue has room.
      while (!writer.submit(std::move(u))) {
        ++retries;
        std::this_thread::yield();
      }
      submitted += n;
      // The analysis stores incidents now and then (its own connection, its own table,
      // created after the collector started): one still open since the start, and every 6 h
      // one resolved an hour after it opened.
      if (t == kStart + 6 * kHour) {
        db.exec(kIncidentsDdl);
        insert_incident(db, "open-since-start", kStart, std::nullopt);
      }
      if (t > kStart && (t - kStart) % (6 * kHour) == 0) {
        insert_incident(db, "resolved-" + std::to_string(i), t - kHour, t);
        generated[Table::incidents].push_back(t);
      }
      if (t == kStart + kDay - kStep) {
        // End of the first day, before anything is old enough to prune: bytes per record as
        // stored (pages in use, the time indexes included; WAL not counted).
        drain(writer, submitted);
        REQUIRE(retention.pruned_records(Table::browser_reports) == 0);
        records_first_day = static_cast<std::int64_t>(submitted);
        const std::int64_t used = (db.one("PRAGMA page_count") - db.one("PRAGMA freelist_count")) *
                                  db.one("PRAGMA page_size");
        bytes_per_record = static_cast<double>(used) / static_cast<double>(records_first_day);
      }
      const std::uint64_t total = store::sqlite_file_bytes(file.str());
      const std::uint64_t main = fs::file_size(file.path);
      max_file_bytes = std::max(max_file_bytes, total);
      max_main_bytes = std::max(max_main_bytes, main);
      max_wal_bytes = std::max(max_wal_bytes, total - main);
    }
    for (Table t : store::kTables) pruned_while_ingesting += retention.pruned_records(t);
    writer.stop();
  }
  const std::int64_t end = kStart + (kSteps - 1) * kStep;

  // The bound, in two parts:
  //  - the database file: bytes per record (measured above) × records per day × (retention +
  //    two prune intervals, the most a row outlives the retention by: it ages out just after a
  //    pass started, and the next pass reaches it) + the free pages kept for reuse (1/32 of the
  //    file, at least 1 MiB);
  //  - the write-ahead log: SQLite checkpoints it back into the file once it holds 1000 pages
  //    (wal_autocheckpoint), and the transactions committed before a checkpoint completes add a
  //    few more: at most 1.25 × 1000 pages of (page + 24 bytes of frame header).
  const double page = static_cast<double>(db.one("PRAGMA page_size"));
  const double records_per_day = static_cast<double>(records_first_day) * kDay / (kDay - kStep);
  const double data_bound =
      bytes_per_record * records_per_day * (static_cast<double>(kDay + 2 * kInterval) / kDay);
  const double main_bound = std::max(data_bound * (1 + 1.0 / 32), data_bound + (1 << 20));
  const double wal_bound = 1.25 * 1000 * (page + 24);
  const double bound = main_bound + wal_bound;
  const double unpruned = bytes_per_record * static_cast<double>(submitted);
  constexpr double kMiB = 1 << 20;
  std::printf(
      "retention_test: %lld records over %d simulated days, %.0f bytes/record, %.0f records/day; "
      "largest file %.1f MiB (bound %.1f), of which database %.1f MiB (bound %.1f) and WAL %.1f "
      "MiB (bound %.1f); unpruned %.1f MiB; %llu passes, longest prune transaction %.1f ms, "
      "prune time %.2f s, %llu pages vacuumed; %llu full-queue retries\n",
      static_cast<long long>(submitted), kDays, bytes_per_record, records_per_day,
      static_cast<double>(max_file_bytes) / kMiB, bound / kMiB,
      static_cast<double>(max_main_bytes) / kMiB, main_bound / kMiB,
      static_cast<double>(max_wal_bytes) / kMiB, wal_bound / kMiB, unpruned / kMiB,
      static_cast<unsigned long long>(retention.passes()),
      retention.longest_transaction_seconds() * 1e3, retention.prune_seconds_total(),
      static_cast<unsigned long long>(retention.vacuumed_pages()),
      static_cast<unsigned long long>(retries));
  CHECK(static_cast<double>(max_main_bytes) <= main_bound);
  CHECK(static_cast<double>(max_wal_bytes) <= wal_bound);
  CHECK(bytes_per_record > 500);  // the rows are as large as real ones
  CHECK(static_cast<double>(max_file_bytes) <= bound);
  CHECK(unpruned > 2 * main_bound);  // without pruning the bound would not hold
  CHECK(pruned_while_ingesting > 0);
  // A pass starts at most once per commit (a quarter of a simulated hour here): most intervals
  // get theirs.
  CHECK(retention.passes() >= static_cast<std::uint64_t>(kDays * 24 / 2));
  CHECK(retention.errors() == 0);
  CHECK(retention.longest_transaction_seconds() < 1.0);

  // Nothing younger than the retention is gone, and nothing older than it (by more than two
  // prune intervals) is left.
  for (Table t : store::kTables) {
    INFO(store::table_name(t));
    const std::string name(store::table_name(t));
    const std::string column(store::time_column(t));
    const auto& times = generated[t];
    const std::int64_t young_cutoff = end - kDay;
    const auto young = std::count_if(times.begin(), times.end(),
                                     [&](std::int64_t x) { return x >= young_cutoff; });
    CHECK(db.one("SELECT count(*) FROM " + name + " WHERE " + column +
                 " >= " + std::to_string(young_cutoff)) == young);
    CHECK(db.one("SELECT count(*) FROM " + name + " WHERE " + column + " < " +
                 std::to_string(end - kDay - 2 * kInterval)) == 0);
    if (t != Table::incidents) {
      CHECK(static_cast<std::int64_t>(retention.pruned_records(t)) ==
            static_cast<std::int64_t>(times.size()) - db.one("SELECT count(*) FROM " + name));
    }
  }
  CHECK(db.one("SELECT count(*) FROM incidents WHERE id = 'open-since-start'") == 1);
  // vantage_points is never pruned: the row of the first commit is still there.
  CHECK(db.one("SELECT first_seen_ns FROM vantage_points WHERE probe_id = 'eu-west-1'") <
        kStart + 6 * kHour);
}

TEST_CASE("pruning a store down to its retention hands the freed pages back to the filesystem",
          "[collector][retention]") {
  TempDb file("shrink");
  ManualClock clock(kStart);
  Stream stream;
  stream.reports_per_step = 40;
  constexpr std::int64_t kStep = 300 * kSecond;
  constexpr std::int64_t kSteps = 2 * kDay / kStep;  // two days kept forever, then cut to 1 h
  std::uint64_t submitted = 0;
  store::SqliteStore sqlite(file.str());
  {
    store::Writer writer(sqlite, 50'000, 5'000);
    for (std::int64_t i = 0; i < kSteps; ++i) {
      store::Upload u = stream.step(kStart + i * kStep, i);
      submitted += u.reports.size() + u.results.size() + u.heartbeats.size();
      while (!writer.submit(std::move(u))) std::this_thread::yield();
    }
    writer.stop();
  }
  Db db(file.str());
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const auto before = store::sqlite_file_bytes(file.str());
  CHECK(db.one("PRAGMA auto_vacuum") == 2);  // INCREMENTAL in a new store

  clock.set(kStart + kSteps * kStep);
  store::Retention retention(file.str(), every_table(kHour), {std::chrono::seconds(60), 2000},
                             clock);
  {
    store::Writer writer(sqlite, 50'000, 5'000, std::chrono::milliseconds(5), &retention);
    // One upload makes a commit, after which the writer prunes and vacuums back to back.
    REQUIRE(writer.submit(stream.step(kStart + kSteps * kStep, 1)));
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (retention.passes() == 0) {
      if (std::chrono::steady_clock::now() > give_up) FAIL("no prune pass in 120 s");
      std::this_thread::yield();
    }
    writer.stop();
  }
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const auto after = store::sqlite_file_bytes(file.str());
  std::printf(
      "retention_test: %llu records, %.1f MiB -> %.1f MiB after pruning to 1 h, %llu "
      "pages vacuumed\n",
      static_cast<unsigned long long>(submitted), static_cast<double>(before) / (1 << 20),
      static_cast<double>(after) / (1 << 20),
      static_cast<unsigned long long>(retention.vacuumed_pages()));
  CHECK(retention.vacuumed_pages() > 0);
  // An hour of 48 is left; the free pages kept for reuse are at most 1/32 of the file + 1 MiB.
  CHECK(after < before / 4);
  CHECK(db.one("PRAGMA freelist_count") * db.one("PRAGMA page_size") <=
        static_cast<std::int64_t>(after / 32 + (1 << 20)));
}

TEST_CASE("a store created without auto_vacuum is switched by one VACUUM",
          "[collector][retention]") {
  TempDb file("legacy");
  {
    Db db(file.str());
    db.exec("PRAGMA page_size=16384; CREATE TABLE legacy (x)");  // auto_vacuum stays NONE
  }
  {
    store::SqliteStore sqlite(file.str());
    store::Writer writer(sqlite, 50'000, 5'000);
    Stream stream;
    for (std::int64_t i = 0; i < 600; ++i) {
      REQUIRE(writer.submit(stream.step(kStart + i * 60 * kSecond, i)));
    }
    writer.stop();
  }
  store::Pruner pruner(file.str());
  std::error_code ec;
  CHECK_FALSE(pruner.file_state(ec).incremental_vacuum);
  while (pruner.delete_older(Table::browser_reports, kStart + 300 * 60 * kSecond, 2000, ec) > 0) {
  }
  REQUIRE_FALSE(ec);
  const auto free_before = pruner.file_state(ec).freelist_pages;
  CHECK(free_before > 0);
  REQUIRE_FALSE(pruner.incremental_vacuum(0));  // no effect without auto_vacuum
  CHECK(pruner.file_state(ec).freelist_pages == free_before);
  REQUIRE_FALSE(pruner.checkpoint_truncate());
  const auto before = store::sqlite_file_bytes(file.str());
  REQUIRE_FALSE(pruner.vacuum_to_incremental());
  REQUIRE_FALSE(pruner.checkpoint_truncate());
  const auto state = pruner.file_state(ec);
  CHECK(state.incremental_vacuum);
  CHECK(state.freelist_pages == 0);
  CHECK(store::sqlite_file_bytes(file.str()) < before);
}
