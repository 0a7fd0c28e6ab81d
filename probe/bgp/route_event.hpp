// One model for every BGP observation (DESIGN §7): a route_event is one prefix announced or
// withdrawn by one peer, with the path as a 4-byte-capable speaker sees it. MRT RIB entries
// become announcements; BGP4MP UPDATEs become announcements and withdrawals; a BGP4MP state
// change out of Established becomes `peer_down` (the peer's routes are gone).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "probe/bgp/bgp_message.hpp"
#include "probe/bgp/mrt_reader.hpp"

namespace vantage::bgp {

struct RouteEvent {
  // peer_up: a BMP Peer Up — the router is about to (re)send the peer's whole table;
  // end_of_rib: the End-of-RIB marker (RFC 4724 §2) after it, for the family of `prefix`.
  enum class Kind : std::uint8_t { announce, withdraw, peer_down, peer_up, end_of_rib };
  Kind kind = Kind::announce;
  std::int64_t time_us = 0;  // UTC microseconds
  std::string collector;     // where it was seen: the BMP router, the MRT source
  IpAddr peer_ip;
  std::uint32_t peer_asn = 0;
  Prefix prefix;                          // unset for peer_down/peer_up; end_of_rib: family only
  std::optional<std::uint32_t> path_id;   // ADD-PATH
  AsPath path;                            // effective AS path (AS4_PATH merged), announcements
  std::optional<std::uint32_t> origin;    // last AS of the path; unset when it ends in an AS_SET
  std::vector<std::uint32_t> origin_set;  // … the AS_SET members then
  std::vector<std::uint32_t> communities;
  std::vector<std::array<std::uint32_t, 3>> large_communities;
  std::optional<std::uint32_t> only_to_customer;
  std::optional<std::uint32_t> aggregator;  // AGGREGATOR's AS (AS4_AGGREGATOR's behind AS_TRANS)
};

// The wire form of an event (docs/bgp.md#records): {"event": "announce"|"withdraw"|"peer_down"|
// "peer_up"|"end_of_rib",
// "time": RFC 3339 UTC, "collector", "peer": {"ip", "asn"}, "prefix", "path_id", "path": [ASNs,
// an AS_SET as a nested array], "as_path": "65000 3491 {64496,64497}", "origin", "origin_set",
// "communities": ["3491:100"], "large_communities": ["65000:1:2"], "only_to_customer"}; fields
// that do not apply are left out. The caller adds "kind", "id", "check" and "vantage".
nlohmann::json to_json(const RouteEvent& event);

// A path as bgpdump writes it, prepending kept: "65000 3491 3491 {64496,64497} (65001)".
std::string path_text(const AsPath& path);

// The AS_SEQUENCE ASNs of a path, peer first, with prepending collapsed (consecutive repeats of
// one ASN kept once). AS_SET and confederation segments are left out.
std::vector<std::uint32_t> flatten_path(const AsPath& path);

// The announcements and withdrawals of one decoded UPDATE, each a copy of `base` (time,
// collector, peer) with its prefix, path id and — for announcements — path, origin and
// communities. Withdrawals first (classic, then MP_UNREACH), then announcements.
void update_to_events(const Update& update, const RouteEvent& base, std::vector<RouteEvent>& out);

// Decodes MRT records into route events. Keeps the TABLE_DUMP_V2 peer index between records.
class RouteEventDecoder {
 public:
  explicit RouteEventDecoder(std::string collector) : collector_(std::move(collector)) {}
  // Appends the record's events to `out`; damage is added to warnings() and the record's
  // readable part is still used. The warnings are those of `vantage bgp dump` for the same
  // record, in its words ("offset 120: BGP4MP MESSAGE: bad BGP marker"; BgpdumpFormatter's
  // checks: bad marker, unknown subtype, unsupported AFI, implausible lengths, damaged
  // attributes), so that scan needs no second pass; a record bgpdump reads without complaint
  // can still be damaged for route monitoring (a prefix length past the address): then this
  // decoder's own warning ("offset 120: UPDATE: NLRI: prefix length 33 is longer than the
  // address"). Records with a bad BGP marker or of the deprecated BGP type give no events.
  void decode(const MrtRecord& record, std::vector<RouteEvent>& out);
  // Accumulated over records, with their offsets; the caller clears what it has reported.
  std::vector<std::string>& warnings() noexcept { return warnings_; }

 private:
  struct Peer {
    IpAddr ip;
    std::uint32_t asn = 0;
  };
  void decode_record(const MrtRecord& record, std::vector<RouteEvent>& out);

  std::string collector_;
  std::vector<Peer> peers_;
  bool have_peer_index_ = false;  // the last PEER_INDEX_TABLE was read whole
  std::vector<std::string> warnings_;
  std::vector<std::string> judged_, own_;  // the current record's, without the offset
};

}  // namespace vantage::bgp
