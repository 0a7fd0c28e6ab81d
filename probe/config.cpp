#include "probe/config.hpp"

#include <openssl/evp.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/config_node.hpp"
#include "probe/checks/registry.hpp"
#include "probe/net/url.hpp"
#include "probe/sinks/collector_url.hpp"

namespace vantage::probe {

namespace fs = std::filesystem;
using std::chrono::nanoseconds;

namespace {

struct Defaults {
  nanoseconds interval{std::chrono::seconds(30)};
  nanoseconds timeout{std::chrono::seconds(10)};
  int retries = 0;
  nanoseconds retry_backoff{std::chrono::seconds(1)};
};

constexpr auto kMinInterval = std::chrono::milliseconds(100);
constexpr auto kMaxInterval = std::chrono::hours(24);

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id) {
    if (!std::isalnum(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

Vantage parse_vantage(const ConfigNode& n) {
  n.expect_keys({"id", "region", "country", "city", "asn", "isp"});
  Vantage v;
  v.source = Source::probe;
  const ConfigNode id = n.require("id");
  v.probe_id = id.as_nonempty_string();
  if (!valid_id(v.probe_id)) id.fail("use letters, digits, '-', '_' and '.' only (at most 128)");
  if (auto x = n.get("region")) v.region = x->as_nonempty_string();
  if (auto x = n.get("country")) {
    v.country = x->as_string();
    if (v.country.size() != 2 || !std::isupper(static_cast<unsigned char>(v.country[0])) ||
        !std::isupper(static_cast<unsigned char>(v.country[1]))) {
      x->fail("expected an ISO 3166-1 alpha-2 code such as DE, got \"" + v.country + "\"");
    }
  }
  if (auto x = n.get("city")) v.city = x->as_string();
  if (auto x = n.get("asn")) v.asn = static_cast<std::uint32_t>(x->as_int(0, 4294967295LL));
  if (auto x = n.get("isp")) v.isp = x->as_string();
  return v;
}

// `url` with its last path segment "results" replaced by "heartbeat" (query kept), or "" when
// the path does not end in "/results".
std::string derive_heartbeat_url(const std::string& url) {
  const auto query = url.find_first_of("?#");
  const std::string base = url.substr(0, query);
  const std::string rest = query == std::string::npos ? "" : url.substr(query);
  constexpr std::string_view kSuffix = "/results";
  if (base.size() < kSuffix.size() ||
      base.compare(base.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return "";
  }
  return base.substr(0, base.size() - kSuffix.size()) + "/heartbeat" + rest;
}

// collector.config_url, config_poll_interval, config_cache, heartbeat_url, heartbeat_interval.
void parse_fleet_keys(const ConfigNode& n, CollectorConfig& c) {
  std::string error;
  if (auto v = n.get("config_url")) {
    c.config_url = v->as_nonempty_string();
    if (!net::parse_http_url(c.config_url, error)) v->fail(error);
  }
  if (auto v = n.get("config_poll_interval")) {
    c.config_poll_interval = v->as_duration(std::chrono::seconds(1), std::chrono::hours(24));
  }
  if (auto v = n.get("config_cache")) {
    c.config_cache = v->as_nonempty_string();
  } else {
    fs::path spool = c.spool_dir;
    while (spool.has_filename() == false && spool.has_parent_path() && spool != spool.root_path())
      spool = spool.parent_path();  // "spool/" -> "spool"
    c.config_cache = (spool.parent_path() / "central-config.yaml").string();
  }
  if (!c.config_url.empty()) {
    const fs::path cache = c.config_cache;
    if (cache.has_filename() == false)
      (n.get("config_cache") ? *n.get("config_cache") : n).fail("expected a file name");
  }
  if (auto v = n.get("heartbeat_interval")) {
    c.heartbeat_interval = v->as_duration(nanoseconds(0), std::chrono::hours(1));
    if (c.heartbeat_interval.count() != 0 && c.heartbeat_interval < std::chrono::seconds(1))
      v->fail("expected 0 (off) or at least 1s, got " + format_duration(c.heartbeat_interval));
  }
  if (auto v = n.get("heartbeat_url")) {
    c.heartbeat_url = v->as_nonempty_string();
    if (!net::parse_http_url(c.heartbeat_url, error)) v->fail(error);
  } else if (c.heartbeat_interval.count() != 0) {
    c.heartbeat_url = derive_heartbeat_url(c.url);
    if (c.heartbeat_url.empty()) {
      n.require("url").fail(
          "cannot derive the heartbeat URL: the path does not end in /results (set "
          "heartbeat_url, or heartbeat_interval: 0 to send no heartbeats)");
    }
  }
  if (c.heartbeat_interval.count() == 0) c.heartbeat_url.clear();
}

CollectorConfig parse_collector(const ConfigNode& n) {
  n.expect_keys({"url", "token_file", "token_env", "spool_dir", "spool_max_bytes",
                 "segment_max_bytes", "batch_max_results", "flush_interval", "request_timeout",
                 "backoff", "tls", "config_url", "config_poll_interval", "config_cache",
                 "heartbeat_url", "heartbeat_interval"});
  CollectorConfig c;
  const ConfigNode url = n.require("url");
  c.url = url.as_nonempty_string();
  std::string error;
  if (!net::parse_http_url(c.url, error)) url.fail(error);
  if (const auto why = sinks::collector_url_problem(c.url); !why.empty()) url.fail(why);
  c.token = read_secret(n, "token_file", "token_env", "token");
  c.spool_dir = n.require("spool_dir").as_nonempty_string();
  if (auto v = n.get("spool_max_bytes")) c.spool_max_bytes = v->as_bytes(1ULL << 20, 1ULL << 40);
  if (auto v = n.get("segment_max_bytes")) c.segment_max_bytes = v->as_bytes(4096, 64ULL << 20);
  if (auto v = n.get("batch_max_results"))
    c.batch_max_results = static_cast<int>(v->as_int(1, 10000));
  if (auto v = n.get("flush_interval")) {
    c.flush_interval = v->as_duration(std::chrono::milliseconds(10), std::chrono::minutes(10));
  }
  if (auto v = n.get("request_timeout")) {
    c.request_timeout = v->as_duration(std::chrono::milliseconds(100), std::chrono::minutes(5));
  }
  if (auto b = n.get("backoff")) {
    b->expect_keys({"initial", "max"});
    if (auto v = b->get("initial"))
      c.backoff_initial = v->as_duration(std::chrono::milliseconds(10), std::chrono::minutes(10));
    if (auto v = b->get("max"))
      c.backoff_max = v->as_duration(std::chrono::milliseconds(10), std::chrono::hours(1));
    if (c.backoff_max < c.backoff_initial) b->fail("max must not be lower than initial");
  }
  if (auto t = n.get("tls")) {
    t->expect_keys({"ca_file", "insecure_skip_verify"});
    if (auto v = t->get("ca_file")) {
      c.ca_file = v->as_nonempty_string();
      if (::access(c.ca_file.c_str(), R_OK) != 0) v->fail("cannot read file \"" + c.ca_file + "\"");
    }
    if (auto v = t->get("insecure_skip_verify")) c.insecure_skip_verify = v->as_bool();
  }
  parse_fleet_keys(n, c);
  return c;
}

MetricsConfig parse_metrics(const ConfigNode& n) {
  n.expect_keys({"listen"});
  MetricsConfig m;  // `metrics: {}` listens on the default 127.0.0.1:9464
  const auto given = n.get("listen");
  if (!given) return m;
  const ConfigNode& listen = *given;
  const std::string text = listen.as_nonempty_string();
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) {
    listen.fail("expected address:port, e.g. 127.0.0.1:9464");
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (!net::is_ip_literal(host))
    listen.fail("expected an IP address before the port, got \"" + host + "\"");
  const std::string port = text.substr(colon + 1);
  if (port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
      std::stoi(port) > 65535) {
    listen.fail("invalid port \"" + port + "\"");
  }
  m.listen_address = host;
  m.listen_port = static_cast<std::uint16_t>(std::stoi(port));
  return m;
}

// `retries: {count: 2, backoff: 1s}`, the same form in `defaults` and in a check.
void parse_retries(const ConfigNode& n, int& count, nanoseconds& backoff) {
  n.expect_keys({"count", "backoff"});
  if (auto c = n.get("count")) count = static_cast<int>(c->as_int(0, 10));
  if (auto b = n.get("backoff")) backoff = b->as_duration(nanoseconds(0), std::chrono::minutes(10));
}

Defaults parse_defaults(const ConfigNode& n, Defaults d) {
  n.expect_keys({"interval", "timeout", "retries"});
  if (auto v = n.get("interval")) d.interval = v->as_duration(kMinInterval, kMaxInterval);
  if (auto v = n.get("timeout"))
    d.timeout = v->as_duration(std::chrono::milliseconds(10), std::chrono::hours(1));
  if (auto v = n.get("retries")) parse_retries(*v, d.retries, d.retry_backoff);
  return d;
}

struct CheckSite {
  std::string file;
  int line;
};

void parse_checks(const ConfigNode& list, const Defaults& defaults, ProbeConfig& out,
                  std::map<std::string, CheckSite>& seen) {
  for (const ConfigNode& item : list.items()) {
    item.expect_map();
    const ConfigNode id_node = item.require("id");
    CheckCommon common;
    common.id = id_node.as_nonempty_string();
    if (!valid_id(common.id))
      id_node.fail("use letters, digits, '-', '_' and '.' only (at most 128)");
    auto [it, inserted] = seen.emplace(common.id, CheckSite{id_node.file(), id_node.line()});
    if (!inserted) {
      id_node.fail("duplicate check id \"" + common.id + "\" (first used at " + it->second.file +
                   ":" + std::to_string(it->second.line) + ")");
    }
    const ConfigNode kind_node = item.require("kind");
    common.kind = kind_node.as_nonempty_string();
    const auto factory = checks::find_check_kind(common.kind);
    if (!factory) {
      std::string kinds;
      for (auto k : checks::check_kinds()) kinds += (kinds.empty() ? "" : ", ") + std::string(k);
      kind_node.fail("unknown check kind \"" + common.kind + "\" (known: " + kinds + ")");
    }
    common.interval = defaults.interval;
    common.timeout = defaults.timeout;
    common.retries = defaults.retries;
    common.retry_backoff = defaults.retry_backoff;
    if (auto v = item.get("interval")) common.interval = v->as_duration(kMinInterval, kMaxInterval);
    if (auto v = item.get("timeout"))
      common.timeout = v->as_duration(std::chrono::milliseconds(10), std::chrono::hours(1));
    if (auto v = item.get("retries")) parse_retries(*v, common.retries, common.retry_backoff);
    // A bgp check's run only polls its MRT directory: no deadline of its own to configure.
    if (common.kind == "bgp" && !item.get("timeout"))
      common.timeout = std::min(common.timeout, common.interval);
    if (common.timeout > common.interval) {
      (item.get("timeout") ? *item.get("timeout") : item)
          .fail("timeout " + format_duration(common.timeout) + " is longer than the interval " +
                format_duration(common.interval));
    }
    common.fingerprint = checks::fingerprint(common, item);  // for reloads (probe_app.cpp)
    out.checks.push_back(factory(std::move(common), item));
  }
}

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, 0, 0, "", "cannot read the file");
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw ConfigError(path, 0, 0, "", "cannot read the file");
  return buf.str();
}

// The served document (or its cache file's contents) as `name`. Null when none is given.
struct Served {
  const std::string* text = nullptr;
  const std::string* name = nullptr;
};

ProbeConfig load(const std::string& path, const Served* served_override) {
  const std::string local_bytes = read_file_bytes(path);
  const ConfigNode root = ConfigNode::load_string(local_bytes, path);
  if (root.is_null()) throw ConfigError(path, 0, 0, "", "the file is empty");
  root.expect_keys({"vantage_point", "collector", "metrics", "output", "scheduler", "defaults",
                    "include", "checks"});
  ProbeConfig cfg;
  cfg.file = path;
  cfg.vantage = parse_vantage(root.require("vantage_point"));
  if (auto v = root.get("collector")) cfg.collector = parse_collector(*v);
  if (auto v = root.get("metrics")) cfg.metrics = parse_metrics(*v);
  if (auto v = root.get("output")) {
    v->expect_keys({"file"});
    cfg.output_file = v->require("file").as_nonempty_string();
  }
  if (auto s = root.get("scheduler")) {
    s->expect_keys({"max_concurrency", "shutdown_grace"});
    if (auto v = s->get("max_concurrency"))
      cfg.scheduler.max_concurrency = static_cast<int>(v->as_int(1, 100000));
    if (auto v = s->get("shutdown_grace"))
      cfg.scheduler.shutdown_grace = v->as_duration(nanoseconds(0), std::chrono::minutes(5));
  }
  Defaults defaults;
  if (auto v = root.get("defaults")) defaults = parse_defaults(*v, defaults);

  std::map<std::string, CheckSite> seen;
  if (auto v = root.get("checks")) parse_checks(*v, defaults, cfg, seen);
  if (auto inc = root.get("include")) {
    const fs::path base = fs::path(path).parent_path();
    for (const ConfigNode& item : inc->items()) {
      fs::path file = item.as_nonempty_string();
      if (file.is_relative()) file = base / file;
      if (!fs::exists(file)) item.fail("included file \"" + file.string() + "\" does not exist");
      const ConfigNode included = ConfigNode::load_file(file.string());
      if (included.is_null()) continue;
      included.expect_keys({"defaults", "checks"});
      Defaults local = defaults;
      if (auto d = included.get("defaults")) local = parse_defaults(*d, defaults);
      if (auto v = included.get("checks")) parse_checks(*v, local, cfg, seen);
    }
  }
  const bool central = cfg.collector && !cfg.collector->config_url.empty();
  if (served_override && !central) {
    throw ConfigError(path, 0, 0, "collector.config_url",
                      "a served configuration needs collector.config_url in the local file");
  }
  if (central) {
    cfg.config_source = "collector";
    std::string cached_text;
    Served served;
    if (served_override) {
      served = *served_override;
    } else if (std::error_code ec; fs::exists(cfg.collector->config_cache, ec)) {
      cached_text = read_file_bytes(cfg.collector->config_cache);
      served = Served{&cached_text, &cfg.collector->config_cache};
    }
    if (served.text) {
      const ConfigNode doc = ConfigNode::load_string(*served.text, *served.name);
      if (doc.is_null()) {
        throw ConfigError(*served.name, 0, 0, "",
                          "the served configuration is empty (expected checks:)");
      }
      doc.expect_keys({"defaults", "checks"});
      Defaults local = defaults;
      if (auto d = doc.get("defaults")) local = parse_defaults(*d, defaults);
      if (auto v = doc.get("checks")) parse_checks(*v, local, cfg, seen);
      cfg.config_hash = config_hash_of(*served.text);
      cfg.central_file = *served.name;
    }
    // No served document yet: the probe starts with the local checks (maybe none) and the
    // central configuration client fetches one.
  } else {
    cfg.config_hash = config_hash_of(local_bytes);
    if (cfg.checks.empty()) root.fail("no checks configured (add a checks: list)");
  }
  return cfg;
}

}  // namespace

std::string config_hash_of(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed (OpenSSL EVP_Digest)");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < size; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

ProbeConfig load_probe_config(const std::string& path) { return load(path, nullptr); }

ProbeConfig load_probe_config_with_central(const std::string& path, std::string_view served_text,
                                           const std::string& served_name) {
  const std::string text(served_text);
  const Served served{&text, &served_name};
  return load(path, &served);
}

void validate_central_config(const std::string& path, std::string_view served_text,
                             const std::string& served_name) {
  (void)load_probe_config_with_central(path, served_text, served_name);
}

}  // namespace vantage::probe
