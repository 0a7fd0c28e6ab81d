// Endpoint templates of report URLs (beacon-collector/ingest/url_template.hpp): which path
// segments become ":id" on paths shaped like real sites' (shops, APIs, CDNs, SPAs), that
// parsing keeps the raw URL next to its template, and that the store gains the column on an
// older database without losing its rows.
#include "beacon-collector/ingest/url_template.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "beacon-collector/ingest/reports.hpp"
#include "beacon-collector/store/sqlite_store.hpp"

namespace fs = std::filesystem;
using namespace vantage::collector;
using ingest::is_id_segment;
using ingest::template_path;
using ingest::template_url;

TEST_CASE("numeric, hex, UUID and token segments of real-looking paths become :id",
          "[collector][ingest][url_template]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/api/cart/99812/total", "/api/cart/:id/total"},
      {"/api/cart/1/total", "/api/cart/:id/total"},
      {"/api/orders/2024/items/7", "/api/orders/:id/items/:id"},
      {"/users/0b7c3a3e-5f7d-4c1e-9a55-1f0e8a2b6c41/profile", "/users/:id/profile"},
      {"/users/0B7C3A3E-5F7D-4C1E-9A55-1F0E8A2B6C41", "/users/:id"},
      {"/api/v2/products/507f1f77bcf86cd799439011/reviews", "/api/v2/products/:id/reviews"},
      {"/commit/9fceb02d0ae598e95dc970b74767f19372d61af8", "/commit/:id"},
      {"/static/js/main.5f3a9c1e.chunk.js", "/static/js/main.5f3a9c1e.chunk.js"},  // one segment
      {"/assets/5f3a9c1e/app.css", "/assets/:id/app.css"},
      {"/session/aZ3kL9mQ2xP7vR1tQ8/resume", "/session/:id/resume"},
      {"/reset/k3j9x0q2m8z7w1v4", "/reset/:id"},
      {"/auth/eyJhbGciOiJIUzI1NiJ9/callback", "/auth/:id/callback"},
      {"/checkout/cs_test_a1B2c3D4e5F6g7H8", "/checkout/:id"},
      {"/p/red-running-shoes-1234567", "/p/:id"},
      {"/", "/"},
      {"", ""},
      {"/api/products", "/api/products"},
      {"/api/v1/login", "/api/v1/login"},
      {"/index.html", "/index.html"},
      {"/blog/summer-sale-2024-shoes", "/blog/summer-sale-2024-shoes"},
      {"/shop/iPhone15ProMax2024Edition", "/shop/iPhone15ProMax2024Edition"},
      {"/de-de/kategorie/damen-schuhe", "/de-de/kategorie/damen-schuhe"},
      {"/images/12345.jpg", "/images/12345.jpg"},  // a file name, not a segment of digits
      {"/cafe/deadbeef", "/cafe/deadbeef"},        // hex letters only: a word
      {"/api/cart/1/", "/api/cart/:id/"},
      {"//api//7", "//api//:id"},
      {"/learn/courses/42/lessons/3/quiz", "/learn/courses/:id/lessons/:id/quiz"},
  };
  for (const auto& [path, want] : cases) {
    INFO(path);
    CHECK(template_path(path) == want);
  }
}

TEST_CASE("short or word-like segments are kept", "[collector][ingest][url_template]") {
  for (const char* s : {"v1", "api", "products", "shoes-42", "abc123", "checkout_step_2",
                        "2024-12-25", "ProductDetailsPage", "my-account-settings-page"}) {
    INFO(s);
    CHECK_FALSE(is_id_segment(s));
  }
  for (const char* s : {"0", "99812", "12345678", "facade12", "ABCDEF12"}) {
    INFO(s);
    CHECK(is_id_segment(s));
  }
}

TEST_CASE("only the path of a URL is templated", "[collector][ingest][url_template]") {
  CHECK(template_url("https://shop.example.com/api/cart/99812/total") ==
        "https://shop.example.com/api/cart/:id/total");
  CHECK(template_url("https://12345.example.com:8443/a/12345") ==
        "https://12345.example.com:8443/a/:id");
  CHECK(template_url("https://shop.example.com") == "https://shop.example.com");
  CHECK(template_url("/api/cart/5") == "/api/cart/:id");
  CHECK(template_url("about:blank") == "about:blank");
}

TEST_CASE("parsed reports keep the raw URL and carry its template",
          "[collector][ingest][url_template]") {
  ingest::ParseContext ctx;
  ctx.received_ns = 1'800'000'000'000'000'000;
  ctx.endpoint = "reports/nel";
  const std::string body =
      R"([{"age":10,"type":"network-error","url":"https://shop.example.com/api/cart/99812/total?x=1",)"
      R"("body":{"type":"http.error","status_code":403,"phase":"application"}},)"
      R"({"age":10,"type":"network-error","url":"https://shop.example.com/api/cart/7/total",)"
      R"("body":{"type":"ok","status_code":200,"phase":"application"}}])";
  auto out = ingest::parse_reporting_api(body, ctx);
  REQUIRE(out.ok());
  REQUIRE(out.records.size() == 2);
  CHECK(out.records[0].url == "https://shop.example.com/api/cart/99812/total");
  CHECK(out.records[1].url == "https://shop.example.com/api/cart/7/total");
  CHECK(out.records[0].url_template == "https://shop.example.com/api/cart/:id/total");
  CHECK(out.records[1].url_template == out.records[0].url_template);

  ctx.endpoint = "beacon";
  auto beacon = ingest::parse_beacon(
      R"({"kind":"fetch-http-error","url":"https://shop.example.com/api/orders/123/pay","status":503})",
      ctx);
  REQUIRE(beacon.records.size() == 1);
  CHECK(beacon.records[0].url_template == "https://shop.example.com/api/orders/:id/pay");
}

namespace {

struct TempDb {
  fs::path path =
      fs::temp_directory_path() / ("vantage-url-template-" + std::to_string(::getpid()) + ".db");
  TempDb() { remove(); }
  ~TempDb() { remove(); }
  void remove() {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix);
  }
};

std::vector<std::vector<std::string>> rows(const fs::path& db, const char* sql) {
  sqlite3* con = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &con) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(con, sql, -1, &s, nullptr) == SQLITE_OK);
  std::vector<std::vector<std::string>> out;
  while (sqlite3_step(s) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int i = 0; i < sqlite3_column_count(s); ++i) {
      const auto* t = sqlite3_column_text(s, i);
      row.emplace_back(t ? reinterpret_cast<const char*>(t) : "NULL");
    }
    out.push_back(std::move(row));
  }
  sqlite3_finalize(s);
  sqlite3_close(con);
  return out;
}

}  // namespace

TEST_CASE("a version 2 store gains url_template and keeps its rows readable",
          "[collector][store][url_template]") {
  TempDb db;
  {
    // The browser_reports table as version 2 created it, with one row.
    sqlite3* con = nullptr;
    REQUIRE(sqlite3_open(db.path.c_str(), &con) == SQLITE_OK);
    REQUIRE(
        sqlite3_exec(con,
                     "CREATE TABLE browser_reports (id INTEGER PRIMARY KEY, received_ns INTEGER "
                     "NOT NULL, event_ns INTEGER NOT NULL, kind TEXT NOT NULL, type TEXT NOT "
                     "NULL, endpoint TEXT NOT NULL, url TEXT NOT NULL, origin TEXT NOT NULL, "
                     "nel_type TEXT, nel_phase TEXT, status_code INTEGER, method TEXT, protocol "
                     "TEXT, elapsed_ms REAL, server_ip TEXT, server_asn INTEGER, server_as_org "
                     "TEXT, weight REAL NOT NULL, client_prefix TEXT NOT NULL, country TEXT, "
                     "city TEXT, asn INTEGER, isp TEXT, ua_family TEXT, ua_major INTEGER, body "
                     "TEXT NOT NULL);"
                     "INSERT INTO browser_reports (received_ns, event_ns, kind, type, endpoint, "
                     "url, origin, weight, client_prefix, body) VALUES (1, 1, 'browser_report', "
                     "'network-error', 'reports/nel', 'https://shop.example.com/api/cart/1/total', "
                     "'', 1, '192.0.2.0/24', '{}');"
                     "PRAGMA user_version = 2;",
                     nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(con);
  }
  {
    store::SqliteStore sqlite(db.path.string());
    BrowserRecord b;
    b.kind = "browser_report";
    b.type = "network-error";
    b.endpoint = "reports/nel";
    b.url = "https://shop.example.com/api/cart/2/total";  // no template: the store derives it
    b.client_prefix = "192.0.2.0/24";
    b.body = "{}";
    store::Batch batch;
    batch.reports.push_back(&b);
    REQUIRE_FALSE(sqlite.write(batch).error);
  }
  CHECK(rows(db.path, "PRAGMA user_version") == std::vector<std::vector<std::string>>{{"3"}});
  CHECK(rows(db.path, "SELECT url, url_template FROM browser_reports ORDER BY id") ==
        std::vector<std::vector<std::string>>{{"https://shop.example.com/api/cart/1/total", "NULL"},
                                              {"https://shop.example.com/api/cart/2/total",
                                               "https://shop.example.com/api/cart/:id/total"}});
  // Opening again migrates nothing twice.
  { store::SqliteStore again(db.path.string()); }
  CHECK(rows(db.path,
             "SELECT count(*) FROM pragma_table_info('browser_reports') WHERE name = "
             "'url_template'") == std::vector<std::vector<std::string>>{{"1"}});
}
