// The probe's configuration file (YAML, strict): identity of the vantage point, outputs,
// scheduler settings, defaults and checks. Every key is documented in docs/configuration.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/observation.hpp"
#include "probe/check.hpp"

namespace vantage::probe {

struct CollectorConfig {
  std::string url;        // e.g. https://rum.example.com/v1/results
  std::string token;      // bearer token (from token_file or token_env); never logged
  std::string spool_dir;  // on-disk spool, created if missing
  std::uint64_t spool_max_bytes = 256ULL << 20;
  std::uint64_t segment_max_bytes = 1ULL << 20;
  int batch_max_results = 500;
  std::chrono::nanoseconds flush_interval{std::chrono::seconds(1)};
  std::chrono::nanoseconds request_timeout{std::chrono::seconds(10)};
  std::chrono::nanoseconds backoff_initial{std::chrono::seconds(1)};
  std::chrono::nanoseconds backoff_max{std::chrono::seconds(60)};
  std::string ca_file;
  bool insecure_skip_verify = false;

  // Central configuration (docs/configuration.md, "Central configuration"): when config_url is
  // set, the checks come from `GET config_url` (bearer token, If-None-Match), kept in
  // config_cache (the last good copy) and merged by load_probe_config.
  std::string config_url;  // empty = checks come from the local file only
  std::chrono::nanoseconds config_poll_interval{std::chrono::seconds(60)};
  // Default: central-config.yaml in the parent directory of spool_dir.
  std::string config_cache;
  // Heartbeats (docs/configuration.md, "Heartbeats"): `POST heartbeat_url` every
  // heartbeat_interval. Default URL: `url` with its last path segment "results" replaced by
  // "heartbeat". An interval of 0 turns them off (heartbeat_url is then empty).
  std::string heartbeat_url;
  std::chrono::nanoseconds heartbeat_interval{std::chrono::seconds(30)};
};

struct MetricsConfig {
  std::string listen_address = "127.0.0.1";
  std::uint16_t listen_port = 9464;
};

struct SchedulerConfig {
  int max_concurrency = 256;
  std::chrono::nanoseconds shutdown_grace{std::chrono::seconds(5)};
};

struct ProbeConfig {
  std::string file;
  Vantage vantage;  // source = probe
  std::optional<CollectorConfig> collector;
  std::optional<MetricsConfig> metrics;
  std::optional<std::string> output_file;  // JSON lines; "-" = stdout
  SchedulerConfig scheduler;
  std::vector<CheckPtr> checks;
  // "sha256:<64 lower-case hex>" of the bytes of the served document the probe runs (with
  // collector.config_url), else of the main local file. Empty with config_url while no served
  // document is cached yet.
  std::string config_hash;
  std::string config_source = "file";  // "file" | "collector" (collector.config_url is set)
  // With config_url: the cache file a served document was read from (empty when none was).
  std::string central_file;
};

// Loads and validates a probe configuration file, following `include:` files. Throws
// ConfigError ("file:line:col: key: message") on any problem. With collector.config_url it also
// reads collector.config_cache when that file exists and merges its checks (see
// load_probe_config_with_central); a missing cache file is not an error (no served checks yet).
ProbeConfig load_probe_config(const std::string& path);

// Like load_probe_config, but the served document is `served_text` (named `served_name` in
// error messages) instead of the cache file's contents. The served document is a YAML mapping
// with `checks:` (a list, as in the local file) and optionally `defaults:` (applied to its checks
// on top of the local defaults); any other key is a ConfigError naming served_name, line and key.
// A check id used both locally and in the served document is a ConfigError. Requires
// collector.config_url in the local file (ConfigError otherwise).
ProbeConfig load_probe_config_with_central(const std::string& path, std::string_view served_text,
                                           const std::string& served_name);

// Validates a served document against the local configuration at `path` without writing
// anything: throws ConfigError exactly as load_probe_config would once the document is cached.
void validate_central_config(const std::string& path, std::string_view served_text,
                             const std::string& served_name);

// "sha256:" + lower-case hex of SHA-256 (FIPS 180-4) of `bytes` (OpenSSL EVP).
std::string config_hash_of(std::string_view bytes);

}  // namespace vantage::probe
