// The probe's configuration file (YAML, strict): identity of the vantage point, outputs,
// scheduler settings, defaults and checks. Every key is documented in docs/configuration.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
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
};

// Loads and validates a probe configuration file, following `include:` files. Throws
// ConfigError ("file:line:col: key: message") on any problem.
ProbeConfig load_probe_config(const std::string& path);

}  // namespace vantage::probe
