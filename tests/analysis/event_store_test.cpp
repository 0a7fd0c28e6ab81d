// The analysis' store reader (analysis/store/event_store.hpp) on real collector stores: browser
// reports' URLs come back as endpoint templates — from the column the collector fills at ingest,
// and computed for rows (and stores) written before it existed — so that the reports of
// /api/cart/1/total and /api/cart/2/total aggregate to one endpoint.
#include "analysis/store/event_store.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <set>
#include <string>

#include "beacon-collector/store/sqlite_store.hpp"

namespace fs = std::filesystem;
using namespace vantage;

namespace {

struct TempDb {
  fs::path path;
  explicit TempDb(const char* name)
      : path(fs::temp_directory_path() /
             ("vantage-analysis-" + std::string(name) + "-" + std::to_string(::getpid()) + ".db")) {
    remove();
  }
  ~TempDb() { remove(); }
  void remove() const {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix);
  }
};

collector::BrowserRecord nel(const std::string& url, std::int64_t t) {
  collector::BrowserRecord b;
  b.received_ns = b.event_ns = t;
  b.kind = "browser_report";
  b.type = "network-error";
  b.endpoint = "reports/nel";
  b.url = url;
  b.nel_type = "http.error";
  b.status_code = 403;
  b.client_prefix = "192.0.2.0/24";
  b.asn = 64501;
  b.body = "{}";
  return b;
}

std::set<std::string> urls_read(const fs::path& db) {
  auto store = analysis::open_sqlite_store(db.string());
  std::set<std::string> urls;
  int rows = 0;
  store->scan_reports(0, 1'000'000, [&](const analysis::BrowserReportRow& r) {
    ++rows;
    urls.insert(r.url);
  });
  CHECK(rows == 3);
  return urls;
}

void exec(const fs::path& db, const char* sql) {
  sqlite3* con = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &con) == SQLITE_OK);
  const int rc = sqlite3_exec(con, sql, nullptr, nullptr, nullptr);
  sqlite3_close(con);
  REQUIRE(rc == SQLITE_OK);
}

}  // namespace

TEST_CASE("reports of one endpoint with different ids are read as one endpoint template",
          "[analysis][store]") {
  TempDb db("templates");
  {
    collector::store::SqliteStore sqlite(db.path.string());
    auto a = nel("https://shop.example.com/api/cart/1/total", 10);
    auto b = nel("https://shop.example.com/api/cart/2/total", 20);
    auto c = nel("https://shop.example.com/api/cart/99812/total", 30);
    a.url_template = "https://shop.example.com/api/cart/:id/total";  // as ingest sets it
    collector::store::Batch batch;
    batch.reports = {&a, &b, &c};
    REQUIRE_FALSE(sqlite.write(batch).error);
  }
  SECTION("from the stored column") {
    CHECK(urls_read(db.path) ==
          std::set<std::string>{"https://shop.example.com/api/cart/:id/total"});
  }
  SECTION("rows stored before the column was filled (NULL) are templated on read") {
    exec(db.path, "UPDATE browser_reports SET url_template = NULL WHERE id > 1");
    CHECK(urls_read(db.path) ==
          std::set<std::string>{"https://shop.example.com/api/cart/:id/total"});
  }
  SECTION("a version 2 store without the column reads the same") {
    exec(db.path, "ALTER TABLE browser_reports DROP COLUMN url_template; PRAGMA user_version = 2");
    CHECK(urls_read(db.path) ==
          std::set<std::string>{"https://shop.example.com/api/cart/:id/total"});
  }
}
