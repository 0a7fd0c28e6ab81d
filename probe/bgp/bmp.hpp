// BGP Monitoring Protocol v3 (RFC 7854) as received over TCP from a router: a stream decoder
// that takes bytes in any chunking and turns Route Monitoring messages into route events (the
// BGP UPDATE inside, with the per-peer header's peer address, AS and timestamp; an End-of-RIB
// marker into `end_of_rib`), Peer Up into `peer_up`, Peer Down into `peer_down`. Each RIB view
// is its own collector: a peer distinguisher (VRF / RD), post-policy (L flag) or Adj-RIB-Out
// (O flag, RFC 8671) view is named after the router with " rd:<hex>", " post-policy" or
// " adj-rib-out" appended. Statistics, Termination and Route Mirroring produce no events.
// ADD-PATH NLRI over BMP are not decoded (the capability is in Peer Up's OPEN messages).
//
// Never throws; a message with a bad version or an impossible length stops the stream (the next
// message boundary cannot be found) with a warning; a bad UPDATE inside a good message is
// reported and skipped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "probe/bgp/route_event.hpp"

namespace vantage::bgp {

class BmpDecoder {
 public:
  // `collector` names the router in the events. With `name_from_sys_name`, the sysName of the
  // Initiation message replaces it (captured files: the name is all there is); a live listener
  // passes false and keeps the router's address, which a remote cannot choose.
  explicit BmpDecoder(std::string collector, bool name_from_sys_name = true)
      : collector_(std::move(collector)), name_from_sys_name_(name_from_sys_name) {}
  // Appends the events of every complete message in `data` (plus what was buffered).
  void feed(const std::uint8_t* data, std::size_t size, std::vector<RouteEvent>& out);
  std::vector<std::string>& warnings() noexcept { return warnings_; }
  // True once the stream could not be followed (bad version or length): nothing more is decoded.
  bool failed() const noexcept { return failed_; }
  // The router's sysName from its Initiation message ("" before it).
  const std::string& router_name() const noexcept { return router_name_; }

 private:
  void message(const std::uint8_t* m, std::size_t n, std::vector<RouteEvent>& out);
  std::string collector_;
  bool name_from_sys_name_ = true;
  std::string router_name_;
  std::vector<std::uint8_t> pending_;
  bool failed_ = false;
  std::uint64_t offset_ = 0;
  std::vector<std::string> warnings_;
};

// RIS Live messages (https://ris-live.ripe.net/manual/), one JSON object per line as the
// websocket delivers them (saved to a file): `ris_message` UPDATEs become announcements and
// withdrawals (AS_SETs in `path` as nested arrays), RIS_PEER_STATE "down" becomes `peer_down`;
// other types are skipped. A line that is not such a message is reported in `warning`.
void parse_ris_live_line(const std::string& line, std::vector<RouteEvent>& out, std::string& warning);

}  // namespace vantage::bgp
