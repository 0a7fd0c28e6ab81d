// `vantage bgp dump`: one line per route entry in the format of `bgpdump -m` (RIPE NCC bgpdump
// 1.6, with upstream's NLRI host-bit masking and no prefix cap), byte for byte, so that our
// parser can be regression-tested against bgpdump's golden outputs and used in its place by
// scripts that read its lines. The format, including bgpdump's quirks (its IPv6 printer, the
// AS4_PATH merge, signed LOCAL_PREF/MED for IPv4 in MP_REACH, the type-5 missing separator),
// is documented in docs/bgp.md#dump.
//
// Damage inside a record is reported through warnings and the rest of the file is read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "probe/bgp/mrt_reader.hpp"

namespace vantage::bgp {

class BgpdumpFormatter {
 public:
  // Appends the record's lines to `out`. Records that bgpdump prints nothing for (OPEN,
  // KEEPALIVE, PEER_INDEX_TABLE, multicast RIBs, unknown types) append nothing.
  void format(const MrtRecord& record, std::string& out);

  // Problems found in records (with their offsets), e.g. "offset 120: TABLE_DUMP_V2 RIB before
  // any PEER_INDEX_TABLE".
  std::vector<std::string>& warnings() noexcept { return warnings_; }

 private:
  struct Peer {
    bool v6 = false;
    std::uint8_t ip[16] = {};
    std::uint32_t asn = 0;
  };
  void table_dump(const MrtRecord& r, std::string& out);
  void table_dump_v2(const MrtRecord& r, std::string& out);
  void bgp4mp(const MrtRecord& r, std::string& out);
  void mrtd_bgp(const MrtRecord& r, std::string& out);
  void warn(const MrtRecord& r, const std::string& what);

  std::vector<Peer> peers_;
  bool have_peer_index_ = false;
  std::vector<std::string> warnings_;
};

// bgpdump's own IPv6 printer (not inet_ntop): "::ffff:a.b.c.d" for mapped, "::a.b.c.d" for
// compatible addresses above ::1, and the longest run of zero groups (also a single one)
// compressed. Appends to `out`.
void append_bgpdump_ipv6(std::string& out, const std::uint8_t* address16);

}  // namespace vantage::bgp
