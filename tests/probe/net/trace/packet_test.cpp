// Paris-traceroute probes and the ICMP / TCP answers to them, built byte by byte.
#include "probe/net/trace/packet.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "probe/net/trace/tracer.hpp"

using namespace vantage::probe::net::trace;

namespace {

Address addr(const char* text) {
  auto a = parse_address(text);
  REQUIRE(a);
  return *a;
}

Flow flow(Protocol p, const char* src, const char* dst) {
  Flow f;
  f.protocol = p;
  f.source = addr(src);
  f.destination = addr(dst);
  f.source_port = 40001;
  f.destination_port = p == Protocol::tcp ? 443 : 33434;
  f.icmp_identifier = 0x1234;
  return f;
}

using Bytes = std::vector<std::uint8_t>;

void put16(Bytes& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}
void append(Bytes& b, const Bytes& more) { b.insert(b.end(), more.begin(), more.end()); }

// An IPv4 header (RFC 791) without options, checksum left zero (receivers here do not check it).
Bytes ipv4(const Address& src, const Address& dst, std::uint8_t protocol, std::uint8_t ttl,
           std::size_t payload) {
  Bytes b;
  b.push_back(0x45);
  b.push_back(0);
  put16(b, static_cast<std::uint16_t>(20 + payload));
  put16(b, 0);
  put16(b, 0);
  b.push_back(ttl);
  b.push_back(protocol);
  put16(b, 0);
  for (std::size_t i = 0; i < 4; ++i) b.push_back(src.bytes[i]);
  for (std::size_t i = 0; i < 4; ++i) b.push_back(dst.bytes[i]);
  return b;
}

// An IPv6 header (RFC 8200 §3).
Bytes ipv6(const Address& src, const Address& dst, std::uint8_t next, std::uint8_t hops,
           std::size_t payload) {
  Bytes b{0x60, 0, 0, 0};
  put16(b, static_cast<std::uint16_t>(payload));
  b.push_back(next);
  b.push_back(hops);
  for (std::size_t i = 0; i < 16; ++i) b.push_back(src.bytes[i]);
  for (std::size_t i = 0; i < 16; ++i) b.push_back(dst.bytes[i]);
  return b;
}

// The probe as the router saw it: IP header with the TTL it arrived with + the transport part.
Bytes quoted(const Flow& f, const Bytes& probe, std::uint8_t ttl) {
  const std::uint8_t proto = f.protocol == Protocol::udp   ? kIpProtoUdp
                             : f.protocol == Protocol::tcp ? kIpProtoTcp
                             : f.destination.v6            ? kIpProtoIcmpV6
                                                           : kIpProtoIcmp;
  Bytes b = f.destination.v6 ? ipv6(f.source, f.destination, proto, ttl, probe.size())
                             : ipv4(f.source, f.destination, proto, ttl, probe.size());
  append(b, probe);
  return b;
}

// An ICMP error message (type, code, 4 bytes of "unused"/length, quoted datagram).
Bytes icmp_error(std::uint8_t type, std::uint8_t code, const Bytes& datagram,
                 std::uint8_t length_byte4 = 0, std::uint8_t length_byte5 = 0) {
  Bytes b{type, code, 0, 0, length_byte4, length_byte5, 0, 0};
  append(b, datagram);
  return b;
}

// An RFC 4884 extension structure with one RFC 4950 MPLS object of `entries`.
Bytes mpls_extension(const std::vector<std::uint32_t>& entries) {
  Bytes b{0x20, 0, 0, 0};
  put16(b, static_cast<std::uint16_t>(4 + 4 * entries.size()));
  b.push_back(1);  // class MPLS Label Stack
  b.push_back(1);  // c-type incoming MPLS label stack
  for (auto e : entries) {
    put16(b, static_cast<std::uint16_t>(e >> 16));
    put16(b, static_cast<std::uint16_t>(e));
  }
  const std::uint16_t c = internet_checksum(b);
  b[2] = static_cast<std::uint8_t>(c >> 8);
  b[3] = static_cast<std::uint8_t>(c);
  return b;
}

// The ones'-complement sum of a whole message (plus a pseudo-header) is 0xFFFF when its checksum
// is right: checksumming it again gives 0.
bool checksum_verifies(const Bytes& message, std::uint32_t pseudo = 0) {
  return internet_checksum(message, pseudo) == 0;
}

std::uint16_t at16(const Bytes& b, std::size_t i) {
  return static_cast<std::uint16_t>((b[i] << 8) | b[i + 1]);
}

}  // namespace

TEST_CASE("UDP probes keep the 5-tuple and carry their tag as a valid checksum", "[probe][trace]") {
  for (const auto& [src, dst] :
       {std::pair{"192.0.2.1", "198.51.100.7"}, std::pair{"2001:db8::1", "2001:db8:ffff::7"}}) {
    const Flow f = flow(Protocol::udp, src, dst);
    for (std::uint16_t tag : {std::uint16_t{1}, std::uint16_t{2}, std::uint16_t{300}, kMaxTag}) {
      const Bytes p = build_udp_probe(f, tag);
      CHECK(at16(p, 0) == 40001);
      CHECK(at16(p, 2) == 33434);
      CHECK(at16(p, 6) == tag);
      CHECK(checksum_verifies(p, pseudo_header_sum(f.source, f.destination, kIpProtoUdp,
                                                   static_cast<std::uint32_t>(p.size()))));
    }
  }
}

TEST_CASE("ICMP echo probes keep one checksum across sequence numbers", "[probe][trace]") {
  const Flow f4 = flow(Protocol::icmp, "192.0.2.1", "198.51.100.7");
  const Flow f6 = flow(Protocol::icmp, "2001:db8::1", "2001:db8:ffff::7");
  for (std::uint16_t tag : {std::uint16_t{1}, std::uint16_t{77}, std::uint16_t{4000}}) {
    const Bytes p4 = build_icmp_probe(f4, tag);
    CHECK(p4[0] == 8);
    CHECK(at16(p4, 2) == f4.icmp_checksum);
    CHECK(at16(p4, 4) == 0x1234);
    CHECK(at16(p4, 6) == tag);
    CHECK(checksum_verifies(p4));
    const Bytes p6 = build_icmp_probe(f6, tag);
    CHECK(p6[0] == 128);
    CHECK(at16(p6, 2) == f6.icmp_checksum);
    CHECK(checksum_verifies(p6, pseudo_header_sum(f6.source, f6.destination, kIpProtoIcmpV6,
                                                  static_cast<std::uint32_t>(p6.size()))));
  }
}

TEST_CASE("TCP probes are SYNs tagged in the sequence number", "[probe][trace]") {
  const Flow f = flow(Protocol::tcp, "192.0.2.1", "198.51.100.7");
  const Bytes p = build_tcp_probe(f, 9);
  CHECK(at16(p, 0) == 40001);
  CHECK(at16(p, 2) == 443);
  CHECK(((std::uint32_t{at16(p, 4)} << 16) | at16(p, 6)) == kTcpSequenceBase + 9);
  CHECK(p[13] == 0x02);
  CHECK(checksum_verifies(p, pseudo_header_sum(f.source, f.destination, kIpProtoTcp,
                                               static_cast<std::uint32_t>(p.size()))));
}

TEST_CASE("an IPv4 Time Exceeded quoting a UDP probe is matched to it", "[probe][trace]") {
  const Flow f = flow(Protocol::udp, "192.0.2.1", "198.51.100.7");
  const Address router = addr("203.0.113.9");
  const Bytes icmp = icmp_error(11, 0, quoted(f, build_udp_probe(f, 42), 1));
  Bytes packet = ipv4(router, f.source, kIpProtoIcmp, 250, icmp.size());
  append(packet, icmp);
  const auto r = parse_reply(f, false, packet, Address{});
  REQUIRE(r);
  CHECK(r->kind == ReplyKind::time_exceeded);
  CHECK(r->from == router);
  CHECK(r->tag == 42);
  CHECK(r->icmp_type == 11);
  CHECK(r->quoted_ttl == 1);
  CHECK(r->mpls.empty());
}

TEST_CASE("an ICMP error quoting another trace's probe is not matched", "[probe][trace]") {
  const Flow f = flow(Protocol::udp, "192.0.2.1", "198.51.100.7");
  Flow other = f;
  other.source_port = 40002;
  const Bytes icmp = icmp_error(11, 0, quoted(other, build_udp_probe(other, 42), 1));
  Bytes packet = ipv4(addr("203.0.113.9"), f.source, kIpProtoIcmp, 250, icmp.size());
  append(packet, icmp);
  CHECK_FALSE(parse_reply(f, false, packet, Address{}));
  Flow elsewhere = f;
  elsewhere.destination = addr("198.51.100.8");
  CHECK_FALSE(parse_reply(elsewhere, false, packet, Address{}));
}

TEST_CASE("the target's port unreachable and a router's host unreachable are told apart",
          "[probe][trace]") {
  const Flow f = flow(Protocol::udp, "192.0.2.1", "198.51.100.7");
  const Bytes port = icmp_error(3, 3, quoted(f, build_udp_probe(f, 5), 1));
  Bytes packet = ipv4(f.destination, f.source, kIpProtoIcmp, 60, port.size());
  append(packet, port);
  auto r = parse_reply(f, false, packet, Address{});
  REQUIRE(r);
  CHECK(r->kind == ReplyKind::unreachable);
  CHECK(r->from == f.destination);
  CHECK(icmp_name(false, r->icmp_type, r->icmp_code) == "port_unreachable");

  const Bytes host = icmp_error(3, 1, quoted(f, build_udp_probe(f, 6), 1));
  packet = ipv4(addr("203.0.113.1"), f.source, kIpProtoIcmp, 60, host.size());
  append(packet, host);
  r = parse_reply(f, false, packet, Address{});
  REQUIRE(r);
  CHECK(r->tag == 6);
  CHECK(icmp_name(false, r->icmp_type, r->icmp_code) == "host_unreachable");
  CHECK(icmp_name(false, 3, 13) == "admin_prohibited");
  CHECK(icmp_name(true, 1, 0) == "no_route");
  CHECK(icmp_name(true, 1, 1) == "admin_prohibited");
  CHECK(icmp_name(true, 1, 3) == "address_unreachable");
  CHECK(icmp_name(false, 3, 200) == "type_3_code_200");
}

TEST_CASE("echo replies match by identifier and sequence number", "[probe][trace]") {
  const Flow f = flow(Protocol::icmp, "192.0.2.1", "198.51.100.7");
  Bytes echo = build_icmp_probe(f, 17);
  echo[0] = 0;  // Echo Reply
  Bytes packet = ipv4(f.destination, f.source, kIpProtoIcmp, 60, echo.size());
  append(packet, echo);
  const auto r = parse_reply(f, false, packet, Address{});
  REQUIRE(r);
  CHECK(r->kind == ReplyKind::echo_reply);
  CHECK(r->tag == 17);
  Flow other = f;
  other.icmp_identifier = 0x4321;
  CHECK_FALSE(parse_reply(other, false, packet, Address{}));
}

TEST_CASE("an ICMPv6 Time Exceeded quoting an echo probe is matched (no IPv6 header)",
          "[probe][trace]") {
  const Flow f = flow(Protocol::icmp, "2001:db8::1", "2001:db8:ffff::7");
  const Address router = addr("2001:db8:1::1");
  const Bytes icmp = icmp_error(3, 0, quoted(f, build_icmp_probe(f, 8), 1));
  const auto r = parse_reply(f, false, icmp, router);
  REQUIRE(r);
  CHECK(r->kind == ReplyKind::time_exceeded);
  CHECK(r->from == router);
  CHECK(r->tag == 8);
  CHECK(icmp_name(true, 3, 0) == "hop_limit_exceeded");
}

TEST_CASE("the target's SYN-ACK and RST acknowledge the tagged sequence number", "[probe][trace]") {
  for (const auto& [src, dst] :
       {std::pair{"192.0.2.1", "198.51.100.7"}, std::pair{"2001:db8::1", "2001:db8:ffff::7"}}) {
    const Flow f = flow(Protocol::tcp, src, dst);
    for (std::uint8_t flags : {std::uint8_t{0x12}, std::uint8_t{0x14}}) {
      Bytes tcp;
      put16(tcp, 443);
      put16(tcp, 40001);
      put16(tcp, 0x1111);
      put16(tcp, 0x2222);  // the target's own sequence number
      const std::uint32_t ack = kTcpSequenceBase + 12 + 1;
      put16(tcp, static_cast<std::uint16_t>(ack >> 16));
      put16(tcp, static_cast<std::uint16_t>(ack));
      tcp.push_back(0x50);
      tcp.push_back(flags);
      for (int i = 0; i < 6; ++i) tcp.push_back(0);
      Bytes packet;
      if (!f.destination.v6) {
        packet = ipv4(f.destination, f.source, kIpProtoTcp, 60, tcp.size());
      }
      append(packet, tcp);
      const auto r = parse_reply(f, true, packet, f.destination);
      REQUIRE(r);
      CHECK(r->tag == 12);
      CHECK(r->kind == (flags == 0x12 ? ReplyKind::tcp_syn_ack : ReplyKind::tcp_reset));
      // From anyone but the target, or to another port: not ours.
      if (f.destination.v6) CHECK_FALSE(parse_reply(f, true, packet, addr("2001:db8::99")));
      Flow other = f;
      other.source_port = 40002;
      CHECK_FALSE(parse_reply(other, true, packet, f.destination));
    }
  }
}

TEST_CASE("a Time Exceeded with an RFC 4884 length carries the RFC 4950 label stack",
          "[probe][trace][mpls]") {
  const Flow f = flow(Protocol::udp, "192.0.2.1", "198.51.100.7");
  Bytes original = quoted(f, build_udp_probe(f, 3), 1);
  original.resize(128, 0);  // RFC 4884 §5.1: padded to 128 bytes when extensions follow
  // Two labels: 16005 (TC 0, not bottom, TTL 1) over 24001 (TC 5, bottom, TTL 1).
  const std::uint32_t top = (16005u << 12) | (0u << 9) | (0u << 8) | 1u;
  const std::uint32_t bottom = (24001u << 12) | (5u << 9) | (1u << 8) | 1u;
  Bytes icmp = icmp_error(11, 0, original, 0, 128 / 4);
  append(icmp, mpls_extension({top, bottom}));
  Bytes packet = ipv4(addr("203.0.113.9"), f.source, kIpProtoIcmp, 250, icmp.size());
  append(packet, icmp);
  const auto r = parse_reply(f, false, packet, Address{});
  REQUIRE(r);
  REQUIRE(r->mpls.size() == 2);
  CHECK(r->mpls[0] == MplsLabel{16005, 0, false, 1});
  CHECK(r->mpls[1] == MplsLabel{24001, 5, true, 1});

  // IPv6: the length counts 64-bit words at byte 4.
  const Flow f6 = flow(Protocol::udp, "2001:db8::1", "2001:db8:ffff::7");
  Bytes original6 = quoted(f6, build_udp_probe(f6, 3), 1);
  original6.resize(128, 0);
  Bytes icmp6 = icmp_error(3, 0, original6, 128 / 8, 0);
  append(icmp6, mpls_extension({bottom}));
  const auto r6 = parse_reply(f6, false, icmp6, addr("2001:db8:1::1"));
  REQUIRE(r6);
  REQUIRE(r6->mpls.size() == 1);
  CHECK(r6->mpls[0].label == 24001);
}

TEST_CASE("a label stack without the RFC 4884 length is read only with a valid checksum",
          "[probe][trace][mpls]") {
  const Flow f = flow(Protocol::udp, "192.0.2.1", "198.51.100.7");
  Bytes original = quoted(f, build_udp_probe(f, 3), 1);
  original.resize(128, 0);
  Bytes icmp = icmp_error(11, 0, original);
  Bytes ext = mpls_extension({(100u << 12) | (1u << 8) | 255u});
  append(icmp, ext);
  CHECK(parse_mpls_extension(icmp, false) == std::vector<MplsLabel>{{100, 0, true, 255}});
  icmp[icmp.size() - 1] ^= 0x01;  // the checksum no longer matches
  CHECK(parse_mpls_extension(icmp, false).empty());
}

TEST_CASE("a malformed extension object yields no labels", "[probe][trace][mpls]") {
  const Flow f = flow(Protocol::udp, "192.0.2.1", "198.51.100.7");
  Bytes original = quoted(f, build_udp_probe(f, 3), 1);
  original.resize(128, 0);
  Bytes icmp = icmp_error(11, 0, original, 0, 32);
  Bytes ext{0x20, 0, 0, 0, 0, 200, 1, 1, 0, 0, 0, 0};  // object length past the end
  append(icmp, ext);
  CHECK(parse_mpls_extension(icmp, false).empty());
}

TEST_CASE("every truncation of a valid reply is rejected without reading past the end",
          "[probe][trace]") {
  const Flow f = flow(Protocol::udp, "192.0.2.1", "198.51.100.7");
  Bytes original = quoted(f, build_udp_probe(f, 3), 1);
  original.resize(128, 0);
  Bytes icmp = icmp_error(11, 0, original, 0, 32);
  append(icmp, mpls_extension({(100u << 12) | (1u << 8) | 255u}));
  Bytes packet = ipv4(addr("203.0.113.9"), f.source, kIpProtoIcmp, 250, icmp.size());
  append(packet, icmp);
  REQUIRE(parse_reply(f, false, packet, Address{}));
  // A quoted datagram needs its IP header and 8 transport bytes: 20 + 8 + 20 + 8.
  for (std::size_t n = 0; n < 56; ++n) {
    const Bytes cut(packet.begin(), packet.begin() + static_cast<std::ptrdiff_t>(n));
    Bytes fixed = cut;
    if (fixed.size() >= 4) {
      fixed[2] = static_cast<std::uint8_t>(n >> 8);
      fixed[3] = static_cast<std::uint8_t>(n);
    }
    CHECK_FALSE(parse_reply(f, false, fixed, Address{}));
  }
  for (std::size_t n = 56; n < packet.size(); ++n) {
    const Bytes cut(packet.begin(), packet.begin() + static_cast<std::ptrdiff_t>(n));
    const auto r = parse_reply(f, false, cut, Address{});
    REQUIRE(r);
    CHECK(r->tag == 3);
  }
}

// Needs CAP_NET_RAW (CI runs as root); elsewhere it says why it did nothing.
TEST_CASE("traces to 127.0.0.1 reach the target at hop 1 over UDP, ICMP and TCP",
          "[probe][trace][raw]") {
  if (raw_socket_permission()) {
    WARN("no CAP_NET_RAW: the loopback trace is not run");
    return;
  }
  vantage::SystemClock clock;
  for (Protocol p : {Protocol::udp, Protocol::icmp, Protocol::tcp}) {
    boost::asio::io_context io;
    TraceOptions options;
    options.protocol = p;
    options.destination = addr("127.0.0.1");
    options.port = p == Protocol::tcp ? 9 : 33434;  // discard: nothing listens in CI
    options.hop_timeout = std::chrono::milliseconds(500);
    auto future = boost::asio::co_spawn(
        io, run_trace(io, clock, options, clock.steady_now() + std::chrono::seconds(5)),
        boost::asio::use_future);
    io.run();
    const TraceResult r = future.get();
    INFO(to_string(p) << ": " << r.detail);
    CHECK(r.stop == StopReason::reached);
    CHECK(r.stop_ttl == 1);
    REQUIRE(r.hops.size() == 1);
    CHECK(r.hops[0].received() == 3);
    CHECK(r.hops[0].address() == addr("127.0.0.1"));
  }
}
