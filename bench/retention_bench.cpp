// The store's retention under load (driven by bench/store_retention.py): simulated days of
// collector records ingested at full rate through the real Writer into a real SQLite file, on a
// fake clock, with store.retention on every table or none. Prints one JSON object per simulated
// day (file size, rows, real-time ingest rate that day, retention's transactions) and a summary.
//
//   vantage_retention_bench --db FILE [--days 5] [--records-per-day 250000]
//       [--retention 1d | --retention off] [--prune-interval 60s] [--batch-rows 2000]
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "beacon-collector/store/retention.hpp"
#include "beacon-collector/store/sqlite_store.hpp"
#include "common/time.hpp"

namespace {

using namespace vantage;
using namespace vantage::collector;

constexpr std::int64_t kDayNs = 86'400'000'000'000;

// One upload as a small site's collector sees them: 12 NEL reports (about 700 bytes stored
// each), two probe results, a route event, a heartbeat, and a BGP alert every tenth upload.
struct Stream {
  std::int64_t serial = 0;
  std::string id(const char* prefix) {
    char text[40];
    std::snprintf(text, sizeof text, "%s-%012lld", prefix, static_cast<long long>(++serial));
    return text;
  }
  store::Upload upload(std::int64_t t, std::int64_t index) {
    store::Upload u;
    for (int i = 0; i < 12; ++i) {
      BrowserRecord b;
      b.received_ns = b.event_ns = t;
      b.kind = "browser_report";
      b.type = "network-error";
      b.endpoint = "reports/default";
      b.url = b.url_template = "https://shop.example.com/checkout/payment";
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
      b.body =
          R"({"elapsed_time":30012,"method":"POST","phase":"connection","protocol":"http/1.1",)"
          R"("referrer":"https://shop.example.com/cart","sampling_fraction":1.0,)"
          R"("server_ip":"192.0.2.10","status_code":0,"type":"tcp.timed_out","url":)"
          R"("https://shop.example.com/checkout/payment","user_agent":"Mozilla/5.0 (X11; Linux )"
          R"(x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",)"
          R"("age":1234,"attempt":1,"note":"padding to a realistic size......................"})";
      u.reports.push_back(std::move(b));
    }
    for (int i = 0; i < 2; ++i) {
      ResultRecord r;
      r.id = id("result");
      r.kind = "check_result";
      r.time_ns = r.received_ns = t;
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
      r.time_ns = r.received_ns = t;
      r.probe_id = "eu-west-1";
      r.check = "bgp";
      r.json = "{}";
      BgpRecord b;
      b.kind = kind;
      b.event = r.kind == "route_event" ? "announce" : "hijack";
      b.status = "open";
      b.alert_key = "k";
      b.prefix = b.monitored_prefix = "192.0.2.0/24";
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
    h.heartbeat_interval_ns = 30'000'000'000;
    u.heartbeats.push_back(std::move(h));
    return u;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vantage_retention_bench: simulated days through the store's writer"};
  std::string db, retention = "1d", prune_interval = "60s";
  int days = 5;
  std::int64_t records_per_day = 250'000, batch_rows = 2000;
  app.add_option("--db", db, "SQLite file (replaced)")->required();
  app.add_option("--days", days, "Simulated days")->check(CLI::Range(1, 365));
  app.add_option("--records-per-day", records_per_day, "Records per simulated day");
  app.add_option("--retention", retention, "Retention of every table, or off");
  app.add_option("--prune-interval", prune_interval, "store.prune_interval");
  app.add_option("--batch-rows", batch_rows, "store.prune_batch_rows");
  CLI11_PARSE(app, argc, argv);

  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
  ManualClock clock;
  const std::int64_t start = to_unix_nanos(*parse_rfc3339("2026-12-01T00:00:00Z"));
  clock.set(start);
  store::SqliteStore sqlite(db);
  std::unique_ptr<store::Retention> pruning;
  if (retention != "off") {
    store::RetentionPolicy policy;
    for (store::Table t : store::kTables) policy[t] = *parse_duration(retention);
    pruning = std::make_unique<store::Retention>(
        db, policy, store::PruneOptions{*parse_duration(prune_interval), batch_rows}, clock);
  }
  // The collector's defaults: a queue of 100,000 records, transactions of up to 5,000.
  store::Writer writer(sqlite, 100'000, 5'000, std::chrono::milliseconds(5), pruning.get());
  Stream stream;
  constexpr std::int64_t kPerUpload = 16;  // records per upload, on average
  const std::int64_t step_ns = kDayNs * kPerUpload / records_per_day;
  std::uint64_t submitted = 0;
  std::uint64_t largest = 0;
  std::int64_t index = 0;
  const auto t_begin = std::chrono::steady_clock::now();
  for (int day = 1; day <= days; ++day) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t committed0 = writer.committed_records();
    const std::int64_t day_end = start + day * kDayNs;
    for (std::int64_t t = clock.unix_ns(); t < day_end; t += step_ns, ++index) {
      clock.set(t);
      store::Upload u = stream.upload(t, index);
      submitted += u.reports.size() + u.results.size() + u.heartbeats.size();
      while (!writer.submit(std::move(u))) std::this_thread::yield();
      if (index % 64 == 0) largest = std::max(largest, store::sqlite_file_bytes(db));
    }
    clock.set(day_end);
    while (writer.committed_records() < submitted) std::this_thread::yield();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::uint64_t pruned = [&] {
      std::uint64_t n = 0;
      if (pruning)
        for (store::Table t : store::kTables) n += pruning->pruned_records(t);
      return n;
    }();
    std::printf(
        "{\"day\":%d,\"file_bytes\":%llu,\"largest_file_bytes\":%llu,\"committed\":%llu,"
        "\"pruned\":%llu,\"rows\":%llu,\"seconds\":%.3f,\"records_per_second\":%.0f,"
        "\"longest_prune_ms\":%.2f,\"longest_turn_ms\":%.2f,\"prune_seconds\":%.3f,"
        "\"vacuumed_pages\":%llu}\n",
        day, static_cast<unsigned long long>(store::sqlite_file_bytes(db)),
        static_cast<unsigned long long>(largest),
        static_cast<unsigned long long>(writer.committed_records()),
        static_cast<unsigned long long>(pruned),
        static_cast<unsigned long long>(writer.committed_records() - pruned), seconds,
        static_cast<double>(writer.committed_records() - committed0) / seconds,
        pruning ? pruning->longest_transaction_seconds() * 1e3 : 0.0,
        pruning ? pruning->longest_turn_seconds() * 1e3 : 0.0,
        pruning ? pruning->prune_seconds_total() : 0.0,
        static_cast<unsigned long long>(pruning ? pruning->vacuumed_pages() : 0));
    std::fflush(stdout);
  }
  writer.stop();
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_begin).count();
  std::printf("{\"summary\":true,\"records\":%llu,\"seconds\":%.3f,\"commit_seconds\":%.3f}\n",
              static_cast<unsigned long long>(submitted), total, writer.commit_seconds_total());
  return 0;
}
