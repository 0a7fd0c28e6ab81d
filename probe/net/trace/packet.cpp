#include "probe/net/trace/packet.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace vantage::probe::net::trace {
namespace {

std::uint16_t get16(std::span<const std::uint8_t> b, std::size_t at) {
  return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}
std::uint32_t get32(std::span<const std::uint8_t> b, std::size_t at) {
  return (std::uint32_t{get16(b, at)} << 16) | get16(b, at + 2);
}
void put16(std::vector<std::uint8_t>& b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}
void put32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  put16(b, at, static_cast<std::uint16_t>(v >> 16));
  put16(b, at + 2, static_cast<std::uint16_t>(v));
}

// The ones'-complement sum of `data` (RFC 1071 §4.1), not folded.
std::uint32_t raw_sum(std::span<const std::uint8_t> data, std::uint32_t sum = 0) {
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += get16(data, i);
  if (i < data.size()) sum += static_cast<std::uint32_t>(data[i]) << 8;
  return sum;
}
std::uint16_t fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

// Sets the compensation word at `word_at` so that the message's checksum field (whose value is
// already in place) verifies: the ones'-complement sum of pseudo-header + message is 0xFFFF.
void compensate(std::vector<std::uint8_t>& message, std::size_t word_at, std::uint32_t pseudo) {
  put16(message, word_at, 0);
  const std::uint16_t sum = fold(raw_sum(message, pseudo));
  put16(message, word_at, static_cast<std::uint16_t>(0xFFFF - sum));
}

Address address_at(std::span<const std::uint8_t> b, std::size_t at, bool v6) {
  Address a;
  a.v6 = v6;
  std::memcpy(a.bytes.data(), b.data() + at, v6 ? 16 : 4);
  return a;
}

struct Quoted {
  std::uint8_t protocol = 0;
  std::uint8_t ttl = 0;
  Address destination;
  std::span<const std::uint8_t> transport;  // at least 8 bytes
};

// The datagram an ICMP error quotes, starting 8 bytes into the ICMP message.
std::optional<Quoted> quoted_datagram(std::span<const std::uint8_t> icmp, bool v6) {
  if (icmp.size() < 8) return std::nullopt;
  auto q = icmp.subspan(8);
  Quoted out;
  if (!v6) {
    if (q.size() < 20 || (q[0] >> 4) != 4) return std::nullopt;
    const std::size_t ihl = (q[0] & 0x0F) * 4u;
    if (ihl < 20 || q.size() < ihl + 8) return std::nullopt;
    out.protocol = q[9];
    out.ttl = q[8];
    out.destination = address_at(q, 16, false);
    out.transport = q.subspan(ihl);
  } else {
    // Extension headers before the transport header are not followed: probes carry none.
    if (q.size() < 48 || (q[0] >> 4) != 6) return std::nullopt;
    out.protocol = q[6];
    out.ttl = q[7];
    out.destination = address_at(q, 24, true);
    out.transport = q.subspan(40);
  }
  return out;
}

bool tag_ok(std::uint32_t tag) { return tag >= 1 && tag <= kMaxTag; }

// The probe tag a quoted transport header carries, when it is one of `flow`'s probes.
std::optional<std::uint16_t> quoted_tag(const Flow& flow, const Quoted& q) {
  if (!(q.destination == flow.destination)) return std::nullopt;
  const auto t = q.transport;
  switch (flow.protocol) {
    case Protocol::udp:
      if (q.protocol != kIpProtoUdp || get16(t, 0) != flow.source_port ||
          get16(t, 2) != flow.destination_port || !tag_ok(get16(t, 6))) {
        return std::nullopt;
      }
      return get16(t, 6);
    case Protocol::icmp: {
      const std::uint8_t echo = flow.destination.v6 ? 128 : 8;
      if (q.protocol != (flow.destination.v6 ? kIpProtoIcmpV6 : kIpProtoIcmp) || t[0] != echo ||
          get16(t, 4) != flow.icmp_identifier || !tag_ok(get16(t, 6))) {
        return std::nullopt;
      }
      return get16(t, 6);
    }
    case Protocol::tcp: {
      const std::uint32_t tag = get32(t, 4) - kTcpSequenceBase;
      if (q.protocol != kIpProtoTcp || get16(t, 0) != flow.source_port ||
          get16(t, 2) != flow.destination_port || !tag_ok(tag)) {
        return std::nullopt;
      }
      return static_cast<std::uint16_t>(tag);
    }
  }
  return std::nullopt;
}

std::optional<Reply> parse_tcp(const Flow& flow, std::span<const std::uint8_t> tcp,
                               const Address& from) {
  if (flow.protocol != Protocol::tcp || tcp.size() < 20 || !(from == flow.destination)) {
    return std::nullopt;
  }
  if (get16(tcp, 0) != flow.destination_port || get16(tcp, 2) != flow.source_port) {
    return std::nullopt;
  }
  const std::uint8_t flags = tcp[13];
  const bool ack = (flags & 0x10) != 0;
  const bool syn = (flags & 0x02) != 0;
  const bool rst = (flags & 0x04) != 0;
  if (!ack || (!syn && !rst)) return std::nullopt;
  // RFC 9293 §3.10.7.2: a SYN-ACK and the RST answering a SYN both acknowledge SEQ + 1.
  const std::uint32_t tag = get32(tcp, 8) - 1 - kTcpSequenceBase;
  if (!tag_ok(tag)) return std::nullopt;
  Reply r;
  r.kind = rst ? ReplyKind::tcp_reset : ReplyKind::tcp_syn_ack;
  r.from = from;
  r.tag = static_cast<std::uint16_t>(tag);
  return r;
}

std::optional<Reply> parse_icmp(const Flow& flow, std::span<const std::uint8_t> icmp,
                                const Address& from, bool v6) {
  if (icmp.size() < 8) return std::nullopt;
  const std::uint8_t type = icmp[0];
  const std::uint8_t code = icmp[1];
  const std::uint8_t echo_reply = v6 ? 129 : 0;
  const std::uint8_t time_exceeded = v6 ? 3 : 11;
  const std::uint8_t unreachable = v6 ? 1 : 3;
  Reply r;
  r.from = from;
  r.icmp_type = type;
  r.icmp_code = code;
  if (type == echo_reply) {
    if (flow.protocol != Protocol::icmp || get16(icmp, 4) != flow.icmp_identifier ||
        !tag_ok(get16(icmp, 6))) {
      return std::nullopt;
    }
    r.kind = ReplyKind::echo_reply;
    r.tag = get16(icmp, 6);
    return r;
  }
  if (type != time_exceeded && type != unreachable) return std::nullopt;
  const auto quoted = quoted_datagram(icmp, v6);
  if (!quoted) return std::nullopt;
  const auto tag = quoted_tag(flow, *quoted);
  if (!tag) return std::nullopt;
  r.kind = type == time_exceeded ? ReplyKind::time_exceeded : ReplyKind::unreachable;
  r.tag = *tag;
  r.quoted_ttl = quoted->ttl;
  r.mpls = parse_mpls_extension(icmp, v6);
  return r;
}

}  // namespace

std::string_view to_string(Protocol p) noexcept {
  switch (p) {
    case Protocol::udp:
      return "udp";
    case Protocol::icmp:
      return "icmp";
    case Protocol::tcp:
      return "tcp";
  }
  return "udp";
}

std::string_view to_string(ReplyKind k) noexcept {
  switch (k) {
    case ReplyKind::time_exceeded:
      return "time_exceeded";
    case ReplyKind::unreachable:
      return "unreachable";
    case ReplyKind::echo_reply:
      return "echo_reply";
    case ReplyKind::tcp_syn_ack:
      return "tcp_syn_ack";
    case ReplyKind::tcp_reset:
      return "tcp_reset";
  }
  return "time_exceeded";
}

std::string to_string(const Address& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(a.v6 ? AF_INET6 : AF_INET, a.bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<Address> parse_address(std::string_view text) {
  const std::string s(text);
  Address a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
  a.v6 = true;
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) return a;
  return std::nullopt;
}

std::uint16_t internet_checksum(std::span<const std::uint8_t> data, std::uint32_t initial) {
  return static_cast<std::uint16_t>(~fold(raw_sum(data, initial)));
}

std::uint32_t pseudo_header_sum(const Address& source, const Address& destination,
                                std::uint8_t protocol, std::uint32_t length) {
  std::uint32_t sum = raw_sum(source.span());
  sum = raw_sum(destination.span(), sum);
  sum += protocol;
  sum += length >> 16;
  sum += length & 0xFFFF;
  return sum;
}

std::vector<std::uint8_t> build_udp_probe(const Flow& flow, std::uint16_t tag,
                                          std::size_t payload_bytes) {
  payload_bytes = std::max<std::size_t>(payload_bytes, 2);
  std::vector<std::uint8_t> b(8 + payload_bytes, 0);
  put16(b, 0, flow.source_port);
  put16(b, 2, flow.destination_port);
  put16(b, 4, static_cast<std::uint16_t>(b.size()));
  put16(b, 6, tag);  // the checksum the packet will carry
  compensate(b, 8,
             pseudo_header_sum(flow.source, flow.destination, kIpProtoUdp,
                               static_cast<std::uint32_t>(b.size())));
  return b;
}

std::vector<std::uint8_t> build_icmp_probe(const Flow& flow, std::uint16_t tag,
                                           std::size_t payload_bytes) {
  payload_bytes = std::max<std::size_t>(payload_bytes, 2);
  const bool v6 = flow.destination.v6;
  std::vector<std::uint8_t> b(8 + payload_bytes, 0);
  b[0] = v6 ? 128 : 8;  // Echo Request
  put16(b, 2, flow.icmp_checksum);
  put16(b, 4, flow.icmp_identifier);
  put16(b, 6, tag);
  const std::uint32_t pseudo = v6 ? pseudo_header_sum(flow.source, flow.destination, kIpProtoIcmpV6,
                                                      static_cast<std::uint32_t>(b.size()))
                                  : 0;
  compensate(b, 8, pseudo);
  return b;
}

std::vector<std::uint8_t> build_tcp_probe(const Flow& flow, std::uint16_t tag) {
  std::vector<std::uint8_t> b(24, 0);
  put16(b, 0, flow.source_port);
  put16(b, 2, flow.destination_port);
  put32(b, 4, kTcpSequenceBase + tag);
  b[12] = 6 << 4;  // data offset: 6 words (header + MSS option)
  b[13] = 0x02;    // SYN
  put16(b, 14, 65535);
  b[20] = 2;  // MSS option (RFC 9293 §3.2)
  b[21] = 4;
  put16(b, 22, 1460);
  const std::uint32_t pseudo = pseudo_header_sum(flow.source, flow.destination, kIpProtoTcp,
                                                 static_cast<std::uint32_t>(b.size()));
  put16(b, 16, internet_checksum(b, pseudo));
  return b;
}

std::vector<MplsLabel> parse_mpls_extension(std::span<const std::uint8_t> icmp, bool v6) {
  if (icmp.size() < 8) return {};
  const std::size_t length_words = v6 ? icmp[4] : icmp[5];
  std::size_t ext_at = 0;
  bool compatibility = false;
  if (length_words != 0) {
    ext_at = 8 + length_words * (v6 ? 8u : 4u);
  } else {
    ext_at = 8 + 128;
    compatibility = true;
  }
  if (icmp.size() < ext_at + 4) return {};
  const auto ext = icmp.subspan(ext_at);
  if ((ext[0] >> 4) != 2) return {};
  const std::uint16_t checksum = get16(ext, 2);
  // RFC 4884 §7: the checksum covers the whole extension structure. Zero is tolerated from
  // routers that send a length (some do not fill it); the compatibility guess needs it valid.
  if (checksum != 0 || compatibility) {
    if (fold(raw_sum(ext)) != 0xFFFF) return {};
  }
  std::size_t at = 4;
  while (at + 4 <= ext.size()) {
    const std::size_t len = get16(ext, at);
    const std::uint8_t class_num = ext[at + 2];
    const std::uint8_t c_type = ext[at + 3];
    if (len < 4 || at + len > ext.size()) return {};
    if (class_num == 1 && c_type == 1) {
      std::vector<MplsLabel> labels;
      for (std::size_t e = at + 4; e + 4 <= at + len; e += 4) {
        const std::uint32_t v = get32(ext, e);
        MplsLabel l;
        l.label = v >> 12;
        l.traffic_class = static_cast<std::uint8_t>((v >> 9) & 0x7);
        l.bottom_of_stack = ((v >> 8) & 1) != 0;
        l.ttl = static_cast<std::uint8_t>(v & 0xFF);
        labels.push_back(l);
      }
      return labels;
    }
    at += len;
  }
  return {};
}

std::string icmp_name(bool v6, std::uint8_t type, std::uint8_t code) {
  if (!v6 && type == 11) return code == 0 ? "ttl_exceeded" : "reassembly_time_exceeded";
  if (v6 && type == 3) return code == 0 ? "hop_limit_exceeded" : "reassembly_time_exceeded";
  if (!v6 && type == 3) {
    // RFC 792 codes 0-5, RFC 1122 §3.2.2.1 codes 6-12, RFC 1812 §5.2.7.1 codes 13-15.
    static constexpr const char* kNames[] = {"net_unreachable",
                                             "host_unreachable",
                                             "protocol_unreachable",
                                             "port_unreachable",
                                             "fragmentation_needed",
                                             "source_route_failed",
                                             "net_unknown",
                                             "host_unknown",
                                             "source_host_isolated",
                                             "net_admin_prohibited",
                                             "host_admin_prohibited",
                                             "net_unreachable_for_tos",
                                             "host_unreachable_for_tos",
                                             "admin_prohibited",
                                             "host_precedence_violation",
                                             "precedence_cutoff"};
    if (code < std::size(kNames)) return kNames[code];
  }
  if (v6 && type == 1) {
    // RFC 4443 §3.1 codes 0-6, RFC 8883 code 8 (headers too long).
    static constexpr const char* kNames[] = {
        "no_route",         "admin_prohibited", "beyond_scope", "address_unreachable",
        "port_unreachable", "failed_policy",    "reject_route", "source_routing_error",
        "headers_too_long"};
    if (code < std::size(kNames)) return kNames[code];
  }
  if (!v6 && type == 0) return "echo_reply";
  if (v6 && type == 129) return "echo_reply";
  return "type_" + std::to_string(type) + "_code_" + std::to_string(code);
}

std::optional<Reply> parse_reply(const Flow& flow, bool from_tcp_socket,
                                 std::span<const std::uint8_t> packet, const Address& from) {
  const bool v6 = flow.destination.v6;
  if (v6) {
    return from_tcp_socket ? parse_tcp(flow, packet, from) : parse_icmp(flow, packet, from, true);
  }
  if (packet.size() < 20 || (packet[0] >> 4) != 4) return std::nullopt;
  const std::size_t ihl = (packet[0] & 0x0F) * 4u;
  const std::size_t total = get16(packet, 2);
  if (ihl < 20 || packet.size() < ihl) return std::nullopt;
  // The kernel hands over the datagram as received; trust the smaller of both lengths.
  const auto body = packet.subspan(ihl, std::min(packet.size(), std::max(total, ihl)) - ihl);
  const Address source = address_at(packet, 12, false);
  if (from_tcp_socket) {
    if (packet[9] != kIpProtoTcp) return std::nullopt;
    return parse_tcp(flow, body, source);
  }
  if (packet[9] != kIpProtoIcmp) return std::nullopt;
  return parse_icmp(flow, body, source, false);
}

}  // namespace vantage::probe::net::trace
