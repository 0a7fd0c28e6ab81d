// libFuzzer target: the collector's config loader (beacon-collector/config.cpp,
// parse_collector_config over ConfigNode::load_string) turns any YAML into a CollectorConfig or
// a ConfigError naming the file, never a crash or another exception; what it accepts holds the
// rules the server relies on (an IP address to listen on, absolute paths, a valid origin list,
// printable tokens, limits within their documented bounds).
//
// Paths in the input are real paths: relative ones (tests/data/mmdb/…, as in the seeds) resolve
// against the working directory, the repository root when scripts/test runs the target.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string>

#include "beacon-collector/config.hpp"
#include "beacon-collector/ingest/origins.hpp"
#include "common/config_node.hpp"

using namespace vantage::collector;

namespace {

constexpr const char* kFile = "fuzz-collector.yaml";

[[noreturn]] void violated(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "collector_config invariant violated: %s %s\n", what, detail.c_str());
  std::abort();
}

bool absolute_path(const std::string& p) {
  return !p.empty() && p.front() == '/' && p.find_first_of("?# ") == std::string::npos;
}

void check(const CollectorConfig& c) {
  if (!enrich::IpAddress::parse(c.listen_address)) violated("listen address", c.listen_address);
  if (c.threads < 1 || c.threads > 256) violated("threads", std::to_string(c.threads));
  if (!c.paths.prefix.empty() && (c.paths.prefix.front() != '/' || c.paths.prefix.back() == '/')) {
    violated("prefix", c.paths.prefix);
  }
  for (const auto* list : {&c.paths.reports, &c.paths.csp, &c.paths.beacon, &c.paths.results}) {
    if (list->empty()) violated("an endpoint without a path");
    for (const auto& p : *list) {
      if (!absolute_path(p)) violated("path", p);
    }
  }
  try {
    ingest::OriginPolicy policy(c.allowed_origins);
  } catch (const std::exception& e) {
    violated("accepted origins the policy refuses:", e.what());
  }
  if (c.ipv4_prefix_length < 0 || c.ipv4_prefix_length > 32 || c.ipv6_prefix_length < 0 ||
      c.ipv6_prefix_length > 128) {
    violated("prefix lengths");
  }
  const Limits& l = c.limits;
  if (l.max_body_bytes < 1024 || l.max_header_bytes < 1024 || l.max_results_body_bytes < 1024 ||
      l.max_reports_per_batch < 1 || l.max_results_per_upload < 1 || l.max_json_depth < 2 ||
      l.max_string_bytes < 16 || l.request_timeout.count() < 100 || l.idle_timeout.count() < 100 ||
      l.per_ip.rate < 0 || l.per_origin.rate < 0) {
    violated("a limit below its minimum");
  }
  if (c.store.sqlite_path.empty() || c.store.queue_records < 1 || c.store.batch_records < 1) {
    violated("store");
  }
  std::set<std::string> ids, tokens;
  for (const auto& p : c.probes) {
    if (p.probe_id.empty() || p.token.empty()) violated("an empty probe id or token");
    for (unsigned char ch : p.token) {
      if (ch < 0x21 || ch > 0x7e) violated("a token that is not printable ASCII");
    }
    if (!ids.insert(p.probe_id).second || !tokens.insert(p.token).second) {
      violated("a probe id or token listed twice");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The tokens the seeds name (token_env); any other name is simply unset.
  setenv("VANTAGE_FUZZ_PROBE_TOKEN", "fuzz-token-1", 1);
  setenv("VANTAGE_FUZZ_PROBE_TOKEN_2", "fuzz-token-2", 1);
  setenv("VANTAGE_TOKEN_EU_WEST_DTAG_1", "eu-west-dtag-1-token", 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto root = vantage::ConfigNode::load_string(
        std::string(reinterpret_cast<const char*>(data), size), kFile);
    check(parse_collector_config(root));
  } catch (const vantage::ConfigError& e) {
    if (e.file() != kFile || std::string(e.what()).rfind(kFile, 0) != 0) {
      violated("error without the file:", e.what());
    }
    if (e.reason().empty()) violated("error without a reason:", e.what());
  }
  // Anything else thrown (std::out_of_range, std::bad_alloc, …) ends the run as a crash.
  return 0;
}
