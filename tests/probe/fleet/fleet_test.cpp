// Central configuration (loader merge, errors, hash) and the fleet clients' logic without a
// network: the config client's ETag/cache/reload decisions on given exchanges, the heartbeat's
// body. The clients against a real collector are tested in
// tests/integration/test_central_config.py.
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/config_node.hpp"
#include "common/version.hpp"
#include "probe/config.hpp"
#include "probe/fleet/config_client.hpp"
#include "probe/fleet/heartbeat.hpp"
#include "probe/net/curl_multi.hpp"

namespace fs = std::filesystem;
using namespace vantage;
using namespace vantage::probe;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "vantage-fleet-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name, const std::string& text) const {
    const fs::path p = path / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  std::string read(const std::string& name) const {
    std::ifstream in(path / name, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

// A local file taking its checks from the collector; the spool is <dir>/state/spool, so the
// cache defaults to <dir>/state/central-config.yaml.
std::string central_local(const TempDir& d, const std::string& extra = "",
                          const std::string& config_url = "http://127.0.0.1:9/v1/config") {
  d.file("token", "secret-token\n");
  return d.file("probe.yaml",
                "vantage_point: {id: vp-1, region: eu-west, country: DE, asn: 64501, "
                "isp: Example ISP}\n"
                "collector:\n"
                "  url: http://127.0.0.1:9/v1/results\n"
                "  token_file: " +
                    (d.path / "token").string() +
                    "\n"
                    "  spool_dir: " +
                    (d.path / "state" / "spool").string() +
                    "\n"
                    "  config_url: " +
                    config_url + "\n" + extra);
}

std::string cache_path(const TempDir& d) {
  return (d.path / "state" / "central-config.yaml").string();
}

const std::string kServed =
    "defaults: {interval: 5s, timeout: 2s}\n"
    "checks:\n"
    "  - {id: shop-home, kind: http, url: \"http://192.0.2.1/\"}\n"
    "  - {id: api-health, kind: tcp, host: 192.0.2.2, port: 443}\n";

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

std::vector<std::string> ids(const ProbeConfig& c) {
  std::vector<std::string> out;
  for (const auto& ch : c.checks) out.push_back(ch->id());
  return out;
}

net::HttpExchange answer(long status, std::string body = "", std::string etag = "") {
  net::HttpExchange ex;
  ex.status = status;
  ex.body = std::move(body);
  ex.body_bytes = static_cast<std::int64_t>(ex.body.size());
  if (!etag.empty()) ex.headers.emplace_back("etag", etag);
  return ex;
}

const std::string* header(const net::HttpRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return &v;
  return nullptr;
}

}  // namespace

TEST_CASE("config_hash_of is sha256 in lower-case hex", "[probe][fleet]") {
  // FIPS 180-2 appendix B.1 test vector.
  CHECK(config_hash_of("abc") ==
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("collector fleet keys: defaults and derived URLs", "[probe][fleet][config]") {
  TempDir d;
  const auto cfg = load_probe_config(central_local(d));
  REQUIRE(cfg.collector);
  CHECK(cfg.collector->config_url == "http://127.0.0.1:9/v1/config");
  CHECK(cfg.collector->config_cache == cache_path(d));
  CHECK(cfg.collector->config_poll_interval == std::chrono::seconds(60));
  CHECK(cfg.collector->heartbeat_url == "http://127.0.0.1:9/v1/heartbeat");
  CHECK(cfg.collector->heartbeat_interval == std::chrono::seconds(30));
  // No cached document yet: no checks, and no hash (nothing served runs).
  CHECK(cfg.checks.empty());
  CHECK(cfg.config_source == "collector");
  CHECK(cfg.config_hash.empty());

  TempDir e;
  const auto off = load_probe_config(central_local(
      e, "  heartbeat_interval: 0s\n  config_poll_interval: 5s\n  config_cache: c/x.yaml\n"));
  CHECK(off.collector->heartbeat_url.empty());
  CHECK(off.collector->config_poll_interval == std::chrono::seconds(5));
  CHECK(off.collector->config_cache == "c/x.yaml");
}

TEST_CASE("a local file without config_url hashes its own bytes", "[probe][fleet][config]") {
  TempDir d;
  const std::string text =
      "vantage_point: {id: vp-1}\nchecks:\n  - {id: a, kind: http, url: \"http://192.0.2.1/\"}\n";
  const auto path = d.file("p.yaml", text);
  const auto cfg = load_probe_config(path);
  CHECK(cfg.config_source == "file");
  CHECK(cfg.config_hash == config_hash_of(text));
  CHECK(cfg.config_hash.size() == 7 + 64);
}

TEST_CASE("the cached served document is merged", "[probe][fleet][config]") {
  TempDir d;
  const auto path = central_local(d);
  d.file("state/central-config.yaml", kServed);
  const auto cfg = load_probe_config(path);
  CHECK(ids(cfg) == std::vector<std::string>{"shop-home", "api-health"});
  CHECK(cfg.config_hash == config_hash_of(kServed));
  CHECK(cfg.central_file == cache_path(d));
  // The served defaults apply to the served checks.
  CHECK(cfg.checks[0]->common().interval == std::chrono::seconds(5));
  CHECK(cfg.checks[0]->common().timeout == std::chrono::seconds(2));
}

TEST_CASE("local and served checks together; ids must be unique", "[probe][fleet][config]") {
  TempDir d;
  const auto path =
      central_local(d, "checks:\n  - {id: local-one, kind: http, url: \"http://192.0.2.9/\"}\n");
  const auto cfg = load_probe_config_with_central(path, kServed, "served.yaml");
  CHECK(ids(cfg) == std::vector<std::string>{"local-one", "shop-home", "api-health"});
  // The served defaults do not change the local checks (30s is the built-in default).
  CHECK(cfg.checks[0]->common().interval == std::chrono::seconds(30));

  const std::string dup = "checks:\n  - {id: local-one, kind: tcp, host: 192.0.2.2, port: 80}\n";
  CHECK(error_of([&] { load_probe_config_with_central(path, dup, "served.yaml"); }) ==
        "served.yaml:2:10: checks[0].id: duplicate check id \"local-one\" (first used at " + path +
            ":8)");
}

TEST_CASE("served documents: only checks and defaults", "[probe][fleet][config]") {
  TempDir d;
  const auto path = central_local(d);
  const auto cache = cache_path(d);
  d.file("state/central-config.yaml", "checks: []\nmetrics: {listen: \"127.0.0.1:1\"}\n");
  const std::string err = error_of([&] { load_probe_config(path); });
  INFO(err);
  CHECK(err.rfind(cache + ":2:1: ", 0) == 0);
  CHECK(err.find("metrics") != std::string::npos);

  CHECK(error_of([&] { validate_central_config(path, "", "x.yaml"); }) ==
        "x.yaml: the served configuration is empty (expected checks:)");
  CHECK(error_of([&] {
          validate_central_config(path, "checks:\n  - {id: a, kind: nope}\n", "x.yaml");
        }).rfind("x.yaml:2:", 0) == 0);
  CHECK(error_of([&] {
          validate_central_config(path, "checks:\n  - {id: a, kind: nope}\n", "x.yaml");
        }).find(": checks[0].kind: unknown check kind \"nope\"") != std::string::npos);
  // Without config_url a served document is refused.
  const auto plain = d.file(
      "plain.yaml",
      "vantage_point: {id: vp-1}\nchecks:\n  - {id: a, kind: http, url: \"http://192.0.2.1/\"}\n");
  CHECK(error_of([&] {
          validate_central_config(plain, kServed, "x.yaml");
        }).find("needs collector.config_url") != std::string::npos);
}

TEST_CASE("invalid fleet keys name file, line and key", "[probe][fleet][config]") {
  TempDir d;
  const auto p1 = central_local(d, "  heartbeat_interval: 500ms\n");
  CHECK(error_of([&] { load_probe_config(p1); }) ==
        p1 + ":7:23: collector.heartbeat_interval: expected 0 (off) or at least 1s, got 500ms");
  TempDir e;
  const auto p2 = central_local(e, "  config_poll_interval: 10ms\n");
  CHECK(error_of([&] {
          load_probe_config(p2);
        }).rfind(p2 + ":7:25: collector.config_poll_interval: ", 0) == 0);
  TempDir g;
  const auto p4 = central_local(g, "", "ftp://192.0.2.1/x");
  CHECK(error_of([&] { load_probe_config(p4); }).rfind(p4 + ":6:15: collector.config_url: ", 0) ==
        0);
}

TEST_CASE("the heartbeat URL follows a reverse proxy's prefix; an explicit one wins",
          "[probe][fleet][config]") {
  TempDir d;
  auto path = central_local(d);
  std::string text = d.read("probe.yaml");
  text.replace(text.find("9/v1/results"), 12, "9/rum/v1/results?x=1");
  path = d.file("probe.yaml", text);
  CHECK(load_probe_config(path).collector->heartbeat_url ==
        "http://127.0.0.1:9/rum/v1/heartbeat?x=1");
  TempDir e;
  const auto p2 = central_local(e, "  heartbeat_url: https://hb.example.com/beat\n");
  CHECK(load_probe_config(p2).collector->heartbeat_url == "https://hb.example.com/beat");
}

TEST_CASE("config client: ETag, atomic cache, reload only for a new valid document",
          "[probe][fleet]") {
  TempDir d;
  const auto path = central_local(d);
  const auto cfg = load_probe_config(path);
  boost::asio::io_context io;
  net::CurlMulti curl(io);
  ManualClock clock(1765000000000000000);
  int reloads = 0;
  fleet::ConfigClient client(io, curl, clock, path, *cfg.collector, [&] { ++reloads; });
  CHECK_FALSE(client.has_cache());

  auto req = client.build_request();
  CHECK(req.method == "GET");
  CHECK(req.url == "http://127.0.0.1:9/v1/config");
  REQUIRE(header(req, "Authorization"));
  CHECK(*header(req, "Authorization") == "Bearer secret-token");
  CHECK(header(req, "If-None-Match") == nullptr);
  CHECK(req.timeout <= std::chrono::seconds(5));  // the first fetch without a cache is short

  // The collector is down: nothing cached, no reload.
  net::HttpExchange down;
  down.curl_code = 7;
  down.error_text = "Couldn't connect to server";
  CHECK(client.handle(down) == fleet::ConfigClient::Outcome::failed);
  CHECK_FALSE(fs::exists(cache_path(d)));

  // A document the loader rejects is not cached.
  CHECK(client.handle(answer(200, "checks: [{id: a, kind: nope}]\n", "\"bad\"")) ==
        fleet::ConfigClient::Outcome::invalid);
  CHECK_FALSE(fs::exists(cache_path(d)));
  CHECK(reloads == 0);

  // A valid one is cached with its ETag, then reload is called.
  CHECK(client.handle(answer(200, kServed, "\"e1\"")) == fleet::ConfigClient::Outcome::updated);
  CHECK(reloads == 1);
  CHECK(d.read("state/central-config.yaml") == kServed);
  CHECK(d.read("state/central-config.yaml.etag") == "\"e1\"\n");
  CHECK_FALSE(fs::exists(cache_path(d) + ".tmp"));
  CHECK(client.stats().last_update_ns == to_unix_nanos(clock.utc_now()));
  CHECK(ids(load_probe_config(path)) == std::vector<std::string>{"shop-home", "api-health"});

  req = client.build_request();
  REQUIRE(header(req, "If-None-Match"));
  CHECK(*header(req, "If-None-Match") == "\"e1\"");

  // 304, and the same bytes again under another ETag: no reload.
  CHECK(client.handle(answer(304)) == fleet::ConfigClient::Outcome::not_modified);
  CHECK(client.handle(answer(200, kServed, "\"e1b\"")) == fleet::ConfigClient::Outcome::unchanged);
  CHECK(d.read("state/central-config.yaml.etag") == "\"e1b\"\n");
  CHECK(reloads == 1);

  // Errors keep the last good copy.
  CHECK(client.handle(
            answer(404, "{\"error\":\"no configuration for vantage point \\\"vp-1\\\"\"}")) ==
        fleet::ConfigClient::Outcome::failed);
  CHECK(client.handle(answer(503, "busy")) == fleet::ConfigClient::Outcome::failed);
  CHECK(client.handle(answer(401, "{\"error\":\"unknown token\"}")) ==
        fleet::ConfigClient::Outcome::failed);
  CHECK(d.read("state/central-config.yaml") == kServed);
  // An invalid document later does not replace the good copy either.
  CHECK(client.handle(answer(200, "checks: []\nextra: 1\n", "\"e2\"")) ==
        fleet::ConfigClient::Outcome::invalid);
  CHECK(d.read("state/central-config.yaml") == kServed);

  // A changed document replaces it.
  const std::string next = "checks:\n  - {id: new-check, kind: http, url: \"http://192.0.2.3/\"}\n";
  CHECK(client.handle(answer(200, next, "\"e3\"")) == fleet::ConfigClient::Outcome::updated);
  CHECK(reloads == 2);
  CHECK(ids(load_probe_config(path)) == std::vector<std::string>{"new-check"});
  CHECK(client.stats().updates == 2);
  CHECK(client.stats().invalid == 2);

  // A restarted client starts from the cache and its ETag.
  fleet::ConfigClient again(io, curl, clock, path, *cfg.collector, [&] { ++reloads; });
  CHECK(again.has_cache());
  CHECK(again.etag() == "\"e3\"");
  req = again.build_request();
  REQUIRE(header(req, "If-None-Match"));
  CHECK(*header(req, "If-None-Match") == "\"e3\"");
  CHECK(again.handle(answer(200, next, "\"e3\"")) == fleet::ConfigClient::Outcome::unchanged);
  CHECK(reloads == 2);
}

TEST_CASE("config client: the running collector settings come from the callback",
          "[probe][fleet]") {
  TempDir d;
  const auto path = central_local(d);
  const auto cfg = load_probe_config(path);
  boost::asio::io_context io;
  net::CurlMulti curl(io);
  ManualClock clock(1765000000000000000);
  CollectorConfig running = *cfg.collector;
  running.token = "first";
  fleet::ConfigClient client(
      io, curl, clock, path, *cfg.collector, [] {}, [&] { return running; });
  REQUIRE(client.refresh());
  CHECK(*header(client.build_request(), "Authorization") == "Bearer first");
  // A reload rotates the token and moves the URL: the next poll uses both.
  running.token = "rotated";
  running.config_url = "http://127.0.0.1:9/other/v1/config";
  REQUIRE(client.refresh());
  const auto req = client.build_request();
  CHECK(*header(req, "Authorization") == "Bearer rotated");
  CHECK(req.url == "http://127.0.0.1:9/other/v1/config");
  // A moved cache file is read again (its ETag with it).
  d.file("moved/c.yaml", kServed);
  d.file("moved/c.yaml.etag", "\"m1\"\n");
  running.config_cache = (d.path / "moved" / "c.yaml").string();
  CHECK_FALSE(client.has_cache());
  REQUIRE(client.refresh());
  CHECK(client.has_cache());
  CHECK(client.etag() == "\"m1\"");
  // No config_url any more: polling ends.
  running.config_url.clear();
  CHECK_FALSE(client.refresh());
}

TEST_CASE("write_file_atomically replaces the file", "[probe][fleet]") {
  TempDir d;
  const auto p = (d.path / "sub" / "f.yaml").string();
  fleet::write_file_atomically(p, "one");
  fleet::write_file_atomically(p, "two");
  CHECK(d.read("sub/f.yaml") == "two");
  CHECK_FALSE(fs::exists(p + ".tmp"));
  CHECK_THROWS_AS(fleet::write_file_atomically((d.path / "sub" / "f.yaml" / "x").string(), "z"),
                  std::system_error);
}

TEST_CASE("heartbeat body and request", "[probe][fleet]") {
  TempDir d;
  const auto cfg = load_probe_config(central_local(d));
  boost::asio::io_context io;
  net::CurlMulti curl(io);
  ManualClock clock(1765000000000000000);
  fleet::HeartbeatSender hb(io, curl, clock, cfg.vantage, *cfg.collector, {});
  fleet::HeartbeatState st;
  st.checks = {"api-health", "shop-home"};
  st.config_hash = config_hash_of(kServed);
  st.config_source = "collector";
  st.spool_results = 12;
  st.spool_bytes = 3456;
  const auto now = clock.utc_now() + std::chrono::seconds(30);
  const auto body = hb.body(st, now);
  CHECK(body["type"] == "heartbeat");
  CHECK(body["probe_id"] == "vp-1");
  CHECK(body["region"] == "eu-west");
  CHECK(body["country"] == "DE");
  CHECK(body["asn"] == 64501);
  CHECK(body["isp"] == "Example ISP");
  CHECK(body["version"] == std::string(version()));
  CHECK(body["revision"] == std::string(revision()));
  CHECK(body["config_hash"] == config_hash_of(kServed));
  CHECK(body["config_source"] == "collector");
  CHECK(body["checks"] == nlohmann::json::array({"api-health", "shop-home"}));
  CHECK(body["spool_results"] == 12);
  CHECK(body["spool_bytes"] == 3456);
  CHECK(body["heartbeat_interval_s"] == 30);
  CHECK(body["started_ns"] == 1765000000000000000);
  CHECK(body["time_ns"] == 1765000030000000000);

  const auto req = hb.build_request(st, now);
  CHECK(req.method == "POST");
  CHECK(req.url == "http://127.0.0.1:9/v1/heartbeat");
  CHECK(*header(req, "Authorization") == "Bearer secret-token");
  CHECK(*header(req, "Content-Type") == "application/json");
  REQUIRE(req.body);
  CHECK(nlohmann::json::parse(*req.body) == body);

  CHECK(hb.handle(answer(204)));
  CHECK_FALSE(hb.handle(answer(403, "{\"error\":\"the token belongs to vp-2\"}")));
  net::HttpExchange down;
  down.curl_code = 7;
  CHECK_FALSE(hb.handle(down));
  CHECK(hb.stats().sent == 3);
  CHECK(hb.stats().accepted == 1);
  CHECK(hb.stats().failed == 2);
}
