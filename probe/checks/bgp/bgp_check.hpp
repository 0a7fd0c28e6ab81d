// `kind: bgp` — route monitoring from the probe (DESIGN §7, docs/bgp.md#the-bgp-check): listens
// for BMP v3 (RFC 7854) from the operator's routers, watches a directory for new MRT files
// (RFC 6396, plain/gzip/bzip2, e.g. a collector's 5-minute update files) and/or subscribes to
// RIPE RIS Live over a websocket (ris_live.hpp), in any combination; feeds every route event
// to the monitor (probe/bgp/monitor.hpp) with the expectations, AS relationships and VRPs of the
// config, and publishes as they happen:
//   route_event — each announcement / withdrawal of a monitored prefix or a more-specific, and
//                 each peer session going down;
//   bgp_alert   — each detection opening or resolving (hijack, sub_prefix_hijack, route_leak,
//                 unexpected_upstream, visibility_loss, rpki_invalid).
// The check keeps its state between runs: start() opens the BMP listener, connects to RIS Live
// and reads the MRT files already there; a run (every `interval`) polls the MRT directory and
// returns no check_result. Listeners, the RIS Live client and the MRT worker thread stop in
// shutdown().
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "probe/bgp/monitor.hpp"
#include "probe/check.hpp"
#include "probe/checks/bgp/ris_live.hpp"

namespace vantage {
class ConfigNode;
}

namespace vantage::probe::checks::bgp {

struct BmpListen {
  std::string address;  // IPv4 or IPv6 literal to bind, e.g. "127.0.0.1", "::"
  std::uint16_t port = 0;
  std::vector<std::string> allowed_routers;  // router addresses accepted; empty = any
};

struct BgpConfig {
  std::string prefixes_file;     // expectations (BGPalerter-like prefixes YAML)
  std::string as_rel_file;       // CAIDA as-rel (optional)
  std::string vrp_file;          // rpki-client / Routinator VRP JSON (optional)
  std::optional<int> min_peers;  // overrides the prefixes file's options.min_peers
  std::optional<BmpListen> bmp;
  std::string mrt_dir;             // watched directory (optional)
  std::string mrt_pattern = "*";   // fnmatch(3) glob on file names
  bool mrt_skip_existing = false;  // true: files present at start are not read
  // The last file is complete when not written to for this long (earlier ones: once a later
  // file exists).
  std::chrono::nanoseconds mrt_settle{std::chrono::seconds(60)};
  std::optional<RisLiveConfig> ris_live;  // RIS Live subscription (optional)
  bool publish_route_events = true;       // false: only bgp_alert records
  // Loaded at start-up so a bad file fails the config, not the running probe.
  std::shared_ptr<const vantage::bgp::Expectations> expectations;
  std::shared_ptr<const vantage::bgp::AsRelationships> relationships;
  std::shared_ptr<const vantage::bgp::Vrps> vrps;
};

// Throws ConfigError (file:line:col: key: message). Relative paths are relative to the config
// file. At least one of `bmp`, `mrt_dir` and `ris_live` is required.
BgpConfig parse_bgp_config(const ConfigNode& node);

class BgpCheck final : public Check {
 public:
  BgpCheck(CheckCommon common, BgpConfig config);
  ~BgpCheck() override;
  boost::asio::awaitable<std::vector<CheckResult>> run(RunContext& ctx) override;
  std::string describe() const override;
  void start(Services& services) override;
  void shutdown() override;

 private:
  struct Runtime;
  BgpConfig config_;
  std::shared_ptr<Runtime> runtime_;
};

CheckPtr make_bgp_check(CheckCommon common, const ConfigNode& node);

}  // namespace vantage::probe::checks::bgp
