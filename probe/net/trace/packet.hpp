// Paris-traceroute probe packets and the ICMP replies they cause: building and parsing only, no
// sockets (probe/net/trace/tracer.hpp sends and receives them).
//
// Paris traceroute (Augustin et al., "Avoiding traceroute anomalies with Paris traceroute", IMC
// 2006) keeps every field a per-flow load balancer hashes constant across TTLs, so that all probes
// of one trace follow one path, and tags each probe in a field the balancers do not hash but the
// router quotes back in its ICMP error:
//   - UDP: the 5-tuple is constant; the tag is the UDP checksum, made to come out at the chosen
//     value by a 16-bit compensation word in the payload (RFC 768 checksum).
//   - ICMP echo: type, code, checksum and identifier are constant; the tag is the sequence number,
//     and a payload word compensates so the checksum stays the same (RFC 792 / RFC 4443 §4.1).
//   - TCP SYN: ports constant; the tag is the sequence number (RFC 9293), echoed back as
//     ack - 1 by the target's SYN-ACK or RST.
// Replies: ICMPv4 Time Exceeded / Destination Unreachable (RFC 792, codes of RFC 1812 §5.2.7.1),
// ICMPv6 Time Exceeded / Destination Unreachable (RFC 4443 §3), with the quoted original datagram
// and RFC 4884 extensions carrying an RFC 4950 MPLS label stack.
//
// Every builder returns the transport header and payload (no IP header: the kernel writes it);
// every parser takes untrusted bytes and returns nullopt for anything malformed, never throws.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace vantage::probe::net::trace {

enum class Protocol : std::uint8_t { udp, icmp, tcp };
std::string_view to_string(Protocol p) noexcept;

// An IPv4 (4 bytes used) or IPv6 (16 bytes) address in network byte order.
struct Address {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};
  std::size_t size() const noexcept { return v6 ? 16 : 4; }
  std::span<const std::uint8_t> span() const noexcept { return {bytes.data(), size()}; }
  bool operator==(const Address&) const = default;
};
// "192.0.2.1", "2001:db8::1" (RFC 5952 form, via inet_ntop).
std::string to_string(const Address& a);
// Parses a literal address; nullopt when it is not one.
std::optional<Address> parse_address(std::string_view text);

// What stays constant for a whole trace: addresses, protocol and ports (UDP, TCP) or the echo
// identifier (ICMP).
struct Flow {
  Protocol protocol = Protocol::udp;
  Address source;
  Address destination;
  std::uint16_t source_port = 0;       // UDP, TCP
  std::uint16_t destination_port = 0;  // UDP, TCP
  std::uint16_t icmp_identifier = 0;   // ICMP echo
  // ICMP echo: the checksum every probe of the trace carries.
  std::uint16_t icmp_checksum = 0x5a5a;
};

// Tags: 1..kMaxTag, so a UDP checksum never takes 0 (RFC 768: "no checksum") or 0xFFFF.
inline constexpr std::uint16_t kMaxTag = 0xFFFD;

// Internet checksum (RFC 1071) of `data` plus `initial` (a partial ones'-complement sum, e.g. of
// a pseudo-header): the value to put in a checksum field.
std::uint16_t internet_checksum(std::span<const std::uint8_t> data, std::uint32_t initial = 0);
// Partial sum of the pseudo-header of RFC 768 (IPv4) / RFC 8200 §8.1 (IPv6).
std::uint32_t pseudo_header_sum(const Address& source, const Address& destination,
                                std::uint8_t protocol, std::uint32_t length);

// The probe carrying `tag` (1..kMaxTag). `payload_bytes` >= 2 (the compensation word); extra
// bytes are zero. The IPv6 ICMP checksum assumes the kernel computes it over the same pseudo-header
// (it does for raw ICMPv6 sockets, RFC 3542 §3.1).
std::vector<std::uint8_t> build_udp_probe(const Flow& flow, std::uint16_t tag,
                                          std::size_t payload_bytes = 2);
std::vector<std::uint8_t> build_icmp_probe(const Flow& flow, std::uint16_t tag,
                                           std::size_t payload_bytes = 2);
// A SYN with sequence number kTcpSequenceBase + tag, window 65535, MSS option 1460.
inline constexpr std::uint32_t kTcpSequenceBase = 0x56410000;  // "VA"
std::vector<std::uint8_t> build_tcp_probe(const Flow& flow, std::uint16_t tag);

// One MPLS label stack entry (RFC 3032 §2.1) as quoted by RFC 4950.
struct MplsLabel {
  std::uint32_t label = 0;         // 20 bits
  std::uint8_t traffic_class = 0;  // 3 bits (formerly EXP, RFC 5462)
  bool bottom_of_stack = false;
  std::uint8_t ttl = 0;
  bool operator==(const MplsLabel&) const = default;
};

// What kind of answer a reply is.
enum class ReplyKind : std::uint8_t {
  time_exceeded,  // ICMP Time Exceeded: a router on the path
  unreachable,    // ICMP Destination Unreachable (the code says why)
  echo_reply,     // ICMP Echo Reply: the target
  tcp_syn_ack,    // the target's port is open
  tcp_reset,      // the target's port is closed
};
std::string_view to_string(ReplyKind k) noexcept;

// A reply, parsed and matched to the probe that caused it.
struct Reply {
  ReplyKind kind = ReplyKind::time_exceeded;
  Address from;                // who answered
  std::uint8_t icmp_type = 0;  // ICMP(v6) type and code; 0/0 for TCP replies
  std::uint8_t icmp_code = 0;
  std::uint16_t tag = 0;  // the probe it answers
  // Time Exceeded / Unreachable: the TTL (IPv4) or hop limit (IPv6) the quoted datagram had
  // when it reached the router that answered (usually 1: RFC 1812 routers quote it as received).
  std::optional<std::uint8_t> quoted_ttl;
  std::vector<MplsLabel> mpls;  // RFC 4950 label stack, top first
  bool operator==(const Reply&) const = default;
};

// Parses one packet read from a raw socket and matches it to `flow`: nullopt when it is not a
// reply to one of this flow's probes (someone else's traffic, malformed, another trace).
//   IPv4 ICMP/TCP sockets deliver the IPv4 header; `packet` starts with it and `from` is ignored.
//   IPv6 ICMPv6/TCP sockets deliver the payload only; `from` is recvfrom's address.
// `from_tcp_socket`: the packet came from a raw TCP socket (a SYN-ACK or RST from the target),
// else from a raw ICMP / ICMPv6 socket.
std::optional<Reply> parse_reply(const Flow& flow, bool from_tcp_socket,
                                 std::span<const std::uint8_t> packet, const Address& from);

// The RFC 4884 extension structure of an ICMP error message (`icmp` starts at the ICMP type;
// `v6` selects the length field's place and unit). Returns the MPLS label stack object
// (class 1, c-type 1, RFC 4950 §5) when present and the structure is well formed, else empty.
// Messages without the length field (pre-RFC 4884 routers) are accepted when the quoted datagram
// is exactly 128 bytes and a version-2 extension header with a valid checksum follows (RFC 4884
// §5.5's compatibility rule).
std::vector<MplsLabel> parse_mpls_extension(std::span<const std::uint8_t> icmp, bool v6);

// A short name for an ICMP(v6) Destination Unreachable code: "net_unreachable",
// "host_unreachable", "protocol_unreachable", "port_unreachable", "admin_prohibited",
// "no_route", "address_unreachable", "beyond_scope", "failed_policy", "reject_route", …;
// "code_<n>" for codes without a name. Time Exceeded gives "ttl_exceeded" /
// "reassembly_time_exceeded".
std::string icmp_name(bool v6, std::uint8_t type, std::uint8_t code);

// IANA protocol numbers used here.
inline constexpr std::uint8_t kIpProtoIcmp = 1;
inline constexpr std::uint8_t kIpProtoTcp = 6;
inline constexpr std::uint8_t kIpProtoUdp = 17;
inline constexpr std::uint8_t kIpProtoIcmpV6 = 58;

}  // namespace vantage::probe::net::trace
