// BGP UPDATE decoding (RFC 4271 §4.3) with the attributes route monitoring needs: ORIGIN,
// AS_PATH (AS_SEQUENCE/AS_SET/confederations; 2- or 4-byte ASNs, RFC 6793), AS4_PATH and its
// merge, NEXT_HOP, MULTI_EXIT_DISC, LOCAL_PREF, ATOMIC_AGGREGATE, AGGREGATOR/AS4_AGGREGATOR,
// COMMUNITIES (RFC 1997), MP_REACH/MP_UNREACH (RFC 4760; IPv4/IPv6 unicast and multicast),
// LARGE_COMMUNITIES (RFC 8092), ONLY_TO_CUSTOMER (RFC 9234), and ADD-PATH NLRI (RFC 7911).
// NLRI host bits beyond the prefix length are masked to zero.
//
// Never throws and never reads past its input: a malformed UPDATE or attribute returns false
// with a reason ("attribute 2 (AS_PATH): segment runs past the attribute").
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/ip_prefix.hpp"

namespace vantage::bgp {

// The project's one address and prefix type (common/ip_prefix.hpp).
using IpAddr = vantage::IpAddr;
using Prefix = vantage::IpPrefix;

struct Nlri {
  Prefix prefix;
  std::optional<std::uint32_t> path_id;  // ADD-PATH
};

enum class SegmentType : std::uint8_t {
  set = 1,
  sequence = 2,
  confed_sequence = 3,
  confed_set = 4
};

struct AsPathSegment {
  SegmentType type = SegmentType::sequence;
  std::vector<std::uint32_t> asns;
  bool operator==(const AsPathSegment&) const = default;
};
using AsPath = std::vector<AsPathSegment>;

struct Attributes {
  std::optional<std::uint8_t> origin;  // 0 IGP, 1 EGP, 2 INCOMPLETE
  bool has_as_path = false;
  bool as_path_malformed = false;  // a segment type outside 1-4 or running past the attribute
  AsPath as_path;
  bool has_as4_path = false;
  bool as4_path_malformed = false;
  AsPath as4_path;
  std::optional<IpAddr> next_hop;  // NEXT_HOP (IPv4)
  std::optional<std::uint32_t> med;
  std::optional<std::uint32_t> local_pref;
  bool atomic_aggregate = false;
  std::optional<std::uint32_t> aggregator_as;
  IpAddr aggregator_ip;
  std::optional<std::uint32_t> as4_aggregator_as;
  IpAddr as4_aggregator_ip;
  std::vector<std::uint32_t> communities;
  std::vector<std::array<std::uint32_t, 3>> large_communities;
  std::optional<std::uint32_t> only_to_customer;
  // MP_REACH_NLRI
  bool has_mp_reach = false;
  std::uint16_t mp_reach_afi = 0;
  std::uint8_t mp_reach_safi = 0;
  std::uint8_t mp_next_hop_length = 0;      // as sent: 4, 16 or 32 (others: no next hop read)
  std::optional<IpAddr> mp_next_hop;        // global (or IPv4) next hop
  std::optional<IpAddr> mp_next_hop_local;  // IPv6 link-local, when 32 bytes were given
  std::vector<Nlri> mp_reach_nlri;
  // MP_UNREACH_NLRI
  bool has_mp_unreach = false;
  std::uint16_t mp_unreach_afi = 0;
  std::uint8_t mp_unreach_safi = 0;
  std::vector<Nlri> mp_unreach_nlri;

  void clear();
};

struct AttributeOptions {
  bool as4 = true;        // AS_PATH/AGGREGATOR carry 4-byte ASNs
  bool add_path = false;  // NLRI in MP_REACH/MP_UNREACH carry path ids
  // TABLE_DUMP_V2 RIB entries abbreviate MP_REACH_NLRI to next-hop length + next hop
  // (RFC 6396 §4.3.4); the full form is accepted too.
  bool table_dump_v2 = false;
  std::uint16_t rib_afi = 0;  // TABLE_DUMP_V2: the AFI of the RIB (for the abbreviated form)
  // Read like bgpdump does, for `vantage bgp dump`: prefix lengths beyond the address are kept
  // (the address shows the first 4/16 bytes), AGGREGATOR is read by the AS width rather than by
  // its length. Off for route monitoring, where such input is an error.
  bool bgpdump_compat = false;
};

// Decodes a path attribute block. Returns false with `error` on malformed input; what was
// decoded before the damage stays in `out`.
bool decode_attributes(const std::uint8_t* data, std::size_t size, const AttributeOptions& options,
                       Attributes& out, std::string& error);

// Decodes NLRI prefixes (RFC 4271 §4.3 encoding: length in bits, then the significant bytes).
bool decode_nlri(const std::uint8_t* data, std::size_t size, bool v6, bool add_path,
                 std::vector<Nlri>& out, std::string& error, bool bgpdump_compat = false);

struct Update {
  std::vector<Nlri> withdrawn;  // IPv4 "Withdrawn Routes"
  Attributes attributes;
  std::vector<Nlri> announced;  // IPv4 NLRI
};

// Decodes an UPDATE's body (after the 19-byte BGP header).
bool decode_update(const std::uint8_t* data, std::size_t size, bool as4, bool add_path, Update& out,
                   std::string& error, bool bgpdump_compat = false);

// The AS path as a BGP speaker that understands 4-byte ASNs sees it: AS_PATH, with the tail
// replaced by AS4_PATH when AS_PATH came from a 2-byte speaker (RFC 6793 §4.2.3: when AS4_PATH
// is longer than AS_PATH it is ignored).
AsPath effective_as_path(const Attributes& attributes);

// The origin AS: the last ASN of the last AS_SEQUENCE; nullopt when the path ends in an AS_SET
// (the origin is ambiguous: `origin_set` gets its members) or is empty.
std::optional<std::uint32_t> origin_as(const AsPath& path,
                                       std::vector<std::uint32_t>* origin_set = nullptr);

}  // namespace vantage::bgp
