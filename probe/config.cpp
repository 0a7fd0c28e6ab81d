#include "probe/config.hpp"

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

CollectorConfig parse_collector(const ConfigNode& n) {
  n.expect_keys({"url", "token_file", "token_env", "spool_dir", "spool_max_bytes",
                 "segment_max_bytes", "batch_max_results", "flush_interval", "request_timeout",
                 "backoff", "tls"});
  CollectorConfig c;
  const ConfigNode url = n.require("url");
  c.url = url.as_nonempty_string();
  std::string error;
  if (!net::parse_http_url(c.url, error)) url.fail(error);
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
    if (common.kind == "bgp" && !item.get("timeout")) common.timeout = std::min(common.timeout, common.interval);
    if (common.timeout > common.interval) {
      (item.get("timeout") ? *item.get("timeout") : item)
          .fail("timeout " + format_duration(common.timeout) + " is longer than the interval " +
                format_duration(common.interval));
    }
    out.checks.push_back(factory(std::move(common), item));
  }
}

}  // namespace

ProbeConfig load_probe_config(const std::string& path) {
  const ConfigNode root = ConfigNode::load_file(path);
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
  if (cfg.checks.empty()) root.fail("no checks configured (add a checks: list)");
  return cfg;
}

}  // namespace vantage::probe
