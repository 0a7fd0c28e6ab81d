// libFuzzer target: the path tracer's reply parsing (probe/net/trace/packet.cpp) — what a raw
// ICMP, ICMPv6 or TCP socket hands the probe is anyone's bytes (RFC 792, RFC 4443, RFC 4884 and
// RFC 4950 structures, quoted datagrams). parse_reply and parse_mpls_extension must never crash,
// hang or read out of bounds, and a reply they match must answer one of the flow's probes.
//
// Input: byte 0 picks the flow (bits 0-1: UDP, ICMP echo, TCP; bit 2: IPv6; bit 3: the packet
// came from the raw TCP socket); the rest is the packet. The flows are fixed (the seeds in
// tests/fuzz/corpus/icmp_reply/ are replies to their probes, so the fuzzer starts matched).
#include <cstddef>
#include <cstdint>
#include <span>

#include "probe/net/trace/packet.hpp"

namespace trace = vantage::probe::net::trace;

namespace {

trace::Address v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  trace::Address x;
  x.bytes[0] = a;
  x.bytes[1] = b;
  x.bytes[2] = c;
  x.bytes[3] = d;
  return x;
}

trace::Address v6(std::uint8_t net, std::uint8_t host) {
  trace::Address x;
  x.v6 = true;
  x.bytes[0] = 0xfd;
  x.bytes[1] = 0x71;
  x.bytes[3] = net;
  x.bytes[15] = host;
  return x;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t selector = data[0];
  const std::span<const std::uint8_t> packet(data + 1, size - 1);
  trace::Flow flow;
  flow.protocol = static_cast<trace::Protocol>((selector & 3) % 3);
  const bool ipv6 = (selector & 4) != 0;
  flow.source = ipv6 ? v6(0, 2) : v4(10, 71, 0, 2);
  flow.destination = ipv6 ? v6(3, 2) : v4(10, 71, 3, 2);
  flow.source_port = 40000;
  flow.destination_port = flow.protocol == trace::Protocol::tcp ? 443 : 33434;
  flow.icmp_identifier = 0x1234;
  const trace::Address from = ipv6 ? v6(1, 2) : v4(10, 71, 1, 2);
  const auto reply = trace::parse_reply(flow, (selector & 8) != 0, packet, from);
  if (reply && (reply->tag == 0 || reply->tag > trace::kMaxTag)) __builtin_trap();
  (void)trace::parse_mpls_extension(packet, ipv6);
  return 0;
}
