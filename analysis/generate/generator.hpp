// A seeded generator of realistic observation streams, written into a collector store through
// the collector's own SqliteStore (one schema): probes in four networks running an http check,
// the checkout journey and a dns check every minute (and a heartbeat every 30 s), and browser NEL
// reports from users in five
// networks with diurnal traffic, sampling weights and background noise — plus one injected fault
// per scenario.
// Used by the detector tests (each fault scenario must give exactly one incident) and by the
// analysis benchmark. Networks use documentation ASNs (64496–64511) and addresses.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vantage::analysis {

struct GeneratorOptions {
  // baseline | isp-blackhole | http-4xx-spike | dns-nxdomain | slow-checkout | global-outage |
  // degraded | users-only-asn | vantage-point-silent (docs/analysis.md#the-scenario-generator)
  std::string scenario = "baseline";
  std::uint64_t seed = 1;
  std::int64_t start_ns = 1'795'305'600'000'000'000;  // 2026-11-22T00:00:00Z
  double hours = 4;
  // Sampled NEL success reports per network per minute at the daily mean (each stands for 20
  // requests; failures are all reported).
  double users_per_minute = 100;
};

struct GeneratorSummary {
  std::uint64_t results = 0, reports = 0;
  std::int64_t fault_from_ns = 0, fault_to_ns = 0;  // 0, 0 for baseline
  std::string fault;                                // what was injected, one line
};

// The scenarios, in order.
const std::vector<std::string>& generator_scenarios();

// Writes into the store at `db_path` (created when missing). Throws std::invalid_argument for
// an unknown scenario, std::system_error when the store cannot be written.
GeneratorSummary generate(const std::string& db_path, const GeneratorOptions& options);

}  // namespace vantage::analysis
