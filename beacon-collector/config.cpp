#include "beacon-collector/config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include "beacon-collector/ingest/origins.hpp"
#include "common/config_node.hpp"

namespace vantage::collector {
namespace {

using std::chrono::milliseconds;

void split_host_port(const ConfigNode& n, std::string& host, std::uint16_t& port) {
  const std::string text = n.as_nonempty_string();
  std::string h;
  std::string p;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      n.fail("expected address:port, e.g. 127.0.0.1:8080 or [::1]:8080");
    }
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) n.fail("expected address:port, e.g. 127.0.0.1:8080");
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
  }
  if (!enrich::IpAddress::parse(h)) n.fail("\"" + h + "\" is not an IP address");
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(p) > 65535) {
    n.fail("\"" + p + "\" is not a port (0-65535)");
  }
  host = h;
  port = static_cast<std::uint16_t>(std::stoi(p));
}

std::string readable_file(const ConfigNode& n) {
  std::string path = n.as_nonempty_string();
  if (::access(path.c_str(), R_OK) != 0) n.fail("cannot read file \"" + path + "\"");
  return path;
}

std::vector<std::string> paths(const ConfigNode& n) {
  std::vector<std::string> out = n.as_string_list(true);
  if (out.empty()) n.fail("give at least one path");
  for (const auto& p : out) {
    if (p.empty() || p.front() != '/' || p.find_first_of("?# ") != std::string::npos) {
      n.fail("\"" + p + "\" is not an absolute path like /reports");
    }
  }
  return out;
}

std::string readable_directory(const ConfigNode& n) {
  std::string path = n.as_nonempty_string();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    n.fail("\"" + path + "\" is not a directory");
  }
  if (::access(path.c_str(), R_OK | X_OK) != 0) n.fail("cannot read directory \"" + path + "\"");
  return path;
}

// One probe's tokens: `token_file` or `token_env` (one token, the original form) and/or
// `tokens`, a list of {token_file | token_env} items (several tokens valid together, for a
// rotation). At least one token; the same token twice in one probe is an error.
std::vector<std::string> probe_tokens(const ConfigNode& item) {
  std::vector<std::string> tokens;
  const bool single = item.has("token_file") || item.has("token_env");
  const auto list = item.get("tokens");
  if (single || !list) tokens.push_back(read_secret(item, "token_file", "token_env", "token"));
  if (list) {
    const auto items = list->items();
    if (items.empty()) list->fail("give at least one token");
    for (const auto& t : items) {
      t.expect_keys({"token_file", "token_env"});
      std::string token = read_secret(t, "token_file", "token_env", "token");
      for (const auto& other : tokens) {
        if (other == token) t.fail("the same token is listed twice");
      }
      tokens.push_back(std::move(token));
    }
  }
  return tokens;
}

RateLimit rate_limit(const ConfigNode& n) {
  n.expect_keys({"rate", "burst"});
  RateLimit r;
  r.rate = n.require("rate").as_double(0, 1e9);
  r.burst = r.rate;
  if (auto b = n.get("burst")) r.burst = b->as_double(1, 1e9);
  return r;
}

Limits limits(const ConfigNode& n) {
  n.expect_keys({"max_body_bytes", "max_results_body_bytes", "max_header_bytes",
                 "max_reports_per_batch", "max_results_per_upload", "max_json_depth",
                 "max_string_bytes", "request_timeout", "idle_timeout", "max_report_age",
                 "max_connections", "per_ip", "per_origin"});
  Limits l;
  if (auto v = n.get("max_body_bytes")) l.max_body_bytes = v->as_bytes(1024, 64ULL << 20);
  if (auto v = n.get("max_results_body_bytes"))
    l.max_results_body_bytes = v->as_bytes(1024, 1ULL << 30);
  if (auto v = n.get("max_header_bytes")) l.max_header_bytes = v->as_bytes(1024, 1ULL << 20);
  if (auto v = n.get("max_reports_per_batch"))
    l.max_reports_per_batch = static_cast<int>(v->as_int(1, 100000));
  if (auto v = n.get("max_results_per_upload"))
    l.max_results_per_upload = static_cast<int>(v->as_int(1, 100000));
  if (auto v = n.get("max_json_depth")) l.max_json_depth = static_cast<int>(v->as_int(2, 1000));
  if (auto v = n.get("max_string_bytes")) l.max_string_bytes = v->as_bytes(16, 64ULL << 20);
  auto ms = [](const ConfigNode& v, milliseconds min, milliseconds max) {
    return std::chrono::duration_cast<milliseconds>(v.as_duration(min, max));
  };
  if (auto v = n.get("request_timeout"))
    l.request_timeout = ms(*v, milliseconds(100), std::chrono::minutes(10));
  if (auto v = n.get("idle_timeout"))
    l.idle_timeout = ms(*v, milliseconds(100), std::chrono::hours(1));
  if (auto v = n.get("max_report_age"))
    l.max_report_age = ms(*v, std::chrono::seconds(1), std::chrono::hours(24 * 30));
  if (auto v = n.get("max_connections"))
    l.max_connections = static_cast<int>(v->as_int(0, 10'000'000));
  if (auto v = n.get("per_ip")) l.per_ip = rate_limit(*v);
  if (auto v = n.get("per_origin")) l.per_origin = rate_limit(*v);
  return l;
}

}  // namespace

CollectorConfig parse_collector_config(const ConfigNode& root) {
  root.expect_keys({"listen", "threads", "shutdown_timeout", "tls", "paths", "allowed_origins",
                    "trusted_proxies", "privacy", "geoip", "limits", "store", "probes", "fleet",
                    "log_level"});
  CollectorConfig c;
  c.source_file = root.file();
  if (auto v = root.get("listen")) split_host_port(*v, c.listen_address, c.listen_port);
  if (auto v = root.get("threads")) c.threads = static_cast<int>(v->as_int(1, 256));
  if (auto v = root.get("shutdown_timeout")) {
    c.shutdown_timeout = std::chrono::duration_cast<milliseconds>(
        v->as_duration(milliseconds(0), std::chrono::minutes(10)));
  }
  if (auto t = root.get("tls")) {
    t->expect_keys({"cert_file", "key_file"});
    c.tls =
        TlsConfig{readable_file(t->require("cert_file")), readable_file(t->require("key_file"))};
  }
  if (auto p = root.get("paths")) {
    p->expect_keys({"prefix", "reports", "csp", "beacon", "results", "config", "heartbeat"});
    if (auto v = p->get("prefix")) {
      c.paths.prefix = v->as_string();
      if (!c.paths.prefix.empty() &&
          (c.paths.prefix.front() != '/' || c.paths.prefix.back() == '/')) {
        v->fail("a prefix starts with / and does not end with one, e.g. /_v");
      }
    }
    if (auto v = p->get("reports")) c.paths.reports = paths(*v);
    if (auto v = p->get("csp")) c.paths.csp = paths(*v);
    if (auto v = p->get("beacon")) c.paths.beacon = paths(*v);
    if (auto v = p->get("results")) c.paths.results = paths(*v);
    if (auto v = p->get("config")) c.paths.config = paths(*v);
    if (auto v = p->get("heartbeat")) c.paths.heartbeat = paths(*v);
  }
  if (auto v = root.get("allowed_origins")) {
    for (const auto& item : v->items()) {
      c.allowed_origins.push_back(item.as_nonempty_string());
      try {
        ingest::OriginPolicy check({c.allowed_origins.back()});
      } catch (const std::invalid_argument& e) {
        item.fail(e.what());
      }
    }
  }
  if (auto v = root.get("trusted_proxies")) {
    for (const auto& item : v->items()) {
      auto cidr = enrich::Cidr::parse(item.as_nonempty_string());
      if (!cidr) item.fail("expected an address or CIDR range, e.g. 10.0.0.0/8 or ::1");
      c.trusted_proxies.push_back(*cidr);
    }
  }
  if (auto p = root.get("privacy")) {
    p->expect_keys({"ipv4_prefix_length", "ipv6_prefix_length"});
    if (auto v = p->get("ipv4_prefix_length"))
      c.ipv4_prefix_length = static_cast<int>(v->as_int(0, 32));
    if (auto v = p->get("ipv6_prefix_length"))
      c.ipv6_prefix_length = static_cast<int>(v->as_int(0, 128));
  }
  if (auto g = root.get("geoip")) {
    g->expect_keys({"city_db", "asn_db", "isp_db"});
    if (auto v = g->get("city_db")) c.geoip.city_db = readable_file(*v);
    if (auto v = g->get("asn_db")) c.geoip.asn_db = readable_file(*v);
    if (auto v = g->get("isp_db")) c.geoip.isp_db = readable_file(*v);
  }
  if (auto v = root.get("limits")) c.limits = limits(*v);
  const ConfigNode s = root.require("store");
  s.expect_keys({"sqlite", "queue_records", "batch_records", "commit_interval", "retention",
                 "prune_interval", "prune_batch_rows", "log_dir", "log_segment_bytes"});
  c.store.sqlite_path = s.require("sqlite").as_nonempty_string();
  c.store.log_dir = c.store.sqlite_path + "-log";
  if (auto v = s.get("log_dir")) c.store.log_dir = v->as_nonempty_string();
  if (auto v = s.get("log_segment_bytes"))
    c.store.log_segment_bytes = v->as_bytes(64ULL << 10, 1ULL << 30);
  if (auto v = s.get("queue_records"))
    c.store.queue_records = static_cast<std::size_t>(v->as_int(1, 100'000'000));
  if (auto v = s.get("batch_records"))
    c.store.batch_records = static_cast<std::size_t>(v->as_int(1, 1'000'000));
  if (auto v = s.get("commit_interval")) {
    c.store.commit_interval = std::chrono::duration_cast<std::chrono::microseconds>(
        v->as_duration(std::chrono::microseconds(0), std::chrono::seconds(1)));
  }
  if (auto r = s.get("retention")) {
    std::vector<std::string_view> tables;
    for (store::Table t : store::kTables) tables.push_back(store::table_name(t));
    r->expect_keys(tables);
    for (store::Table t : store::kTables) {
      if (auto v = r->get(store::table_name(t))) {  // 1 hour to 100 years
        c.store.retention[t] =
            v->as_duration(std::chrono::hours(1), std::chrono::hours(24 * 36525));
      }
    }
  }
  if (auto v = s.get("prune_interval"))
    c.store.prune_interval = v->as_duration(std::chrono::seconds(1), std::chrono::hours(24));
  if (auto v = s.get("prune_batch_rows")) c.store.prune_batch_rows = v->as_int(1, 1'000'000);
  if (auto p = root.get("probes")) {
    for (const auto& item : p->items()) {
      item.expect_keys({"id", "token_file", "token_env", "tokens"});
      const std::string id = item.require("id").as_nonempty_string();
      for (const auto& other : c.probes) {
        if (other.probe_id == id) item.require("id").fail("probe \"" + id + "\" is listed twice");
      }
      for (auto& token : probe_tokens(item)) {
        for (const auto& other : c.probes) {
          if (other.token == token) item.fail("two probes share a token");
        }
        c.probes.push_back(ProbeToken{id, std::move(token)});
      }
    }
  }
  if (auto f = root.get("fleet")) {
    f->expect_keys({"config_dir"});
    if (auto v = f->get("config_dir")) c.fleet.config_dir = readable_directory(*v);
  }
  if (auto v = root.get("log_level")) {
    if (!log::parse_level(v->as_enum({"debug", "info", "warn", "error", "off"}), c.log_level)) {
      v->fail("unknown log level");
    }
  }
  return c;
}

CollectorConfig load_collector_config(const std::string& path) {
  return parse_collector_config(ConfigNode::load_file(path));
}

std::vector<std::string> restart_only_changes(const CollectorConfig& running,
                                              const CollectorConfig& next) {
  std::vector<std::string> keys;
  if (running.listen_address != next.listen_address || running.listen_port != next.listen_port)
    keys.emplace_back("listen");
  if (running.threads != next.threads) keys.emplace_back("threads");
  const bool tls_changed = running.tls.has_value() != next.tls.has_value() ||
                           (running.tls && (running.tls->cert_file != next.tls->cert_file ||
                                            running.tls->key_file != next.tls->key_file));
  if (tls_changed) keys.emplace_back("tls");
  // 0 in the file means "derived at start": compare what the file says, not the derived value.
  if (next.limits.max_connections != 0 &&
      running.limits.max_connections != next.limits.max_connections)
    keys.emplace_back("limits.max_connections");
  if (running.store.sqlite_path != next.store.sqlite_path) keys.emplace_back("store.sqlite");
  // A log_dir derived from store.sqlite changes with it: named once, as store.sqlite.
  const auto derived_log = [](const StoreConfig& s) { return s.log_dir == s.sqlite_path + "-log"; };
  if (running.store.log_dir != next.store.log_dir &&
      !(derived_log(running.store) && derived_log(next.store)))
    keys.emplace_back("store.log_dir");
  if (running.store.log_segment_bytes != next.store.log_segment_bytes)
    keys.emplace_back("store.log_segment_bytes");
  if (running.store.queue_records != next.store.queue_records)
    keys.emplace_back("store.queue_records");
  if (running.store.batch_records != next.store.batch_records)
    keys.emplace_back("store.batch_records");
  if (running.store.commit_interval != next.store.commit_interval)
    keys.emplace_back("store.commit_interval");
  if (!(running.store.retention == next.store.retention)) keys.emplace_back("store.retention");
  if (running.store.prune_interval != next.store.prune_interval)
    keys.emplace_back("store.prune_interval");
  if (running.store.prune_batch_rows != next.store.prune_batch_rows)
    keys.emplace_back("store.prune_batch_rows");
  return keys;
}

CollectorConfig keep_restart_only(const CollectorConfig& running, CollectorConfig next) {
  next.listen_address = running.listen_address;
  next.listen_port = running.listen_port;
  next.threads = running.threads;
  next.tls = running.tls;
  next.limits.max_connections = running.limits.max_connections;
  next.store = running.store;
  return next;
}

}  // namespace vantage::collector
