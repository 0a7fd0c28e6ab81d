#include "probe/bgp/bmp.hpp"

#include <arpa/inet.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

namespace vantage::bgp {
namespace {

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}

constexpr std::size_t kCommonHeader = 6;
constexpr std::size_t kPeerHeader = 42;
constexpr std::uint32_t kMaxMessage = 16u << 20;

}  // namespace

void BmpDecoder::feed(const std::uint8_t* data, std::size_t size, std::vector<RouteEvent>& out) {
  if (failed_) return;
  pending_.insert(pending_.end(), data, data + size);
  std::size_t pos = 0;
  while (pending_.size() - pos >= kCommonHeader) {
    const std::uint8_t* m = pending_.data() + pos;
    const std::uint32_t len = be32(m + 1);
    if (m[0] != 3 || len < kCommonHeader || len > kMaxMessage) {
      warnings_.push_back("offset " + std::to_string(offset_ + pos) +
                          ": not a BMP v3 message (version " + std::to_string(m[0]) + ", length " +
                          std::to_string(len) + "); stopping");
      failed_ = true;
      pending_.clear();
      return;
    }
    if (pending_.size() - pos < len) break;
    message(m, len, out);
    pos += len;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(pos));
  offset_ += pos;
}

void BmpDecoder::message(const std::uint8_t* m, std::size_t n, std::vector<RouteEvent>& out) {
  const std::uint8_t type = m[5];
  auto warn = [&](const std::string& what) {
    warnings_.push_back("offset " + std::to_string(offset_) + ": " + what);
  };
  if (type == 4) {  // Initiation: TLVs; sysName (2) names the router
    for (std::size_t i = kCommonHeader; i + 4 <= n;) {
      const std::uint16_t t = be16(m + i);
      const std::uint16_t l = be16(m + i + 2);
      if (i + 4 + l > n) break;
      if (t == 2) router_name_.assign(reinterpret_cast<const char*>(m + i + 4), l);
      i += 4 + l;
    }
    return;
  }
  if (type == 5 || type == 1 || type == 6) return;  // Termination, Statistics, Route Mirroring
  if (type > 6) return warn("unknown BMP message type " + std::to_string(type));
  if (n < kCommonHeader + kPeerHeader) return warn("BMP message shorter than its per-peer header");
  const std::uint8_t* h = m + kCommonHeader;
  const std::uint8_t flags = h[1];
  const bool v6 = flags & 0x80;
  const bool two_byte_as = flags & 0x20;
  RouteEvent base;
  base.collector = name_from_sys_name_ && !router_name_.empty() ? router_name_ : collector_;
  // Each RIB view is a separate set of peers (RFC 7854 §4.2; O flag: RFC 8671).
  bool distinguished = h[0] != 0;
  for (int i = 2; i < 10; ++i) distinguished = distinguished || h[i] != 0;
  if (distinguished) {
    static constexpr char kHex[] = "0123456789abcdef";
    base.collector += " rd:";
    for (int i = 2; i < 10; ++i) {
      base.collector += kHex[h[i] >> 4];
      base.collector += kHex[h[i] & 15];
    }
  }
  if (flags & 0x40) base.collector += " post-policy";
  if (flags & 0x10) base.collector += " adj-rib-out";
  base.peer_ip.v6 = v6;
  std::memcpy(base.peer_ip.bytes.data(), v6 ? h + 10 : h + 22, v6 ? 16 : 4);
  base.peer_asn = be32(h + 26);
  base.time_us = std::int64_t{be32(h + 34)} * 1'000'000 + be32(h + 38);
  const std::uint8_t* body = h + kPeerHeader;
  const std::size_t body_len = n - kCommonHeader - kPeerHeader;
  if (type == 3) {  // Peer Up: the peer's table follows as Route Monitoring
    RouteEvent e = base;
    e.kind = RouteEvent::Kind::peer_up;
    out.push_back(std::move(e));
    return;
  }
  if (type == 2) {  // Peer Down
    RouteEvent e = base;
    e.kind = RouteEvent::Kind::peer_down;
    out.push_back(std::move(e));
    return;
  }
  // Route Monitoring: one BGP UPDATE PDU.
  if (body_len < 19 || body[18] != 2) return warn("Route Monitoring without a BGP UPDATE");
  const std::size_t bgp_len = std::min<std::size_t>(be16(body + 16), body_len);
  if (bgp_len < 19) return warn("BGP message length " + std::to_string(bgp_len));
  // End-of-RIB (RFC 4724 §2): an empty UPDATE (IPv4 unicast), or one whose only attribute is
  // an empty MP_UNREACH_NLRI (flags, type 15, length 3, AFI, SAFI).
  const std::uint8_t* u8 = body + 19;
  const std::size_t ulen = bgp_len - 19;
  const bool eor_v4 = ulen == 4 && be32(u8) == 0;
  const bool eor_mp = ulen == 10 && be16(u8) == 0 && be16(u8 + 2) == 6 && u8[5] == 15 && u8[6] == 3;
  const bool eor_mp_ext = ulen == 11 && be16(u8) == 0 && be16(u8 + 2) == 7 && (u8[4] & 0x10) &&
                          u8[5] == 15 && be16(u8 + 6) == 3;  // extended-length attribute
  if (eor_v4 || eor_mp || eor_mp_ext) {
    RouteEvent e = base;
    e.kind = RouteEvent::Kind::end_of_rib;
    e.prefix.addr.v6 = (eor_mp && be16(u8 + 7) == 2) || (eor_mp_ext && be16(u8 + 8) == 2);
    out.push_back(std::move(e));
    return;
  }
  Update u;
  std::string error;
  if (!decode_update(u8, ulen, !two_byte_as, false, u, error)) warn("UPDATE: " + error);
  update_to_events(u, base, out);
}

namespace {

// A string member, or `fallback` when absent or of another type (json::value would throw then).
std::string string_member(const nlohmann::json& o, const char* key, const char* fallback) {
  const auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string(fallback);
}

}  // namespace

void parse_ris_live_line(const std::string& line, std::vector<RouteEvent>& out,
                         std::string& warning) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    warning = "not JSON";
    return;
  }
  if (string_member(j, "type", "") != "ris_message" || !j.contains("data") ||
      !j["data"].is_object())
    return;
  const auto& d = j["data"];
  RouteEvent base;
  base.collector = string_member(d, "host", "ris-live");
  const double ts =
      d.contains("timestamp") && d["timestamp"].is_number() ? d["timestamp"].get<double>() : 0;
  base.time_us = static_cast<std::int64_t>(std::llround(ts * 1e6));
  const std::string peer = string_member(d, "peer", "");
  base.peer_ip.v6 = peer.find(':') != std::string::npos;
  if (::inet_pton(base.peer_ip.v6 ? AF_INET6 : AF_INET, peer.c_str(), base.peer_ip.bytes.data()) !=
      1) {
    warning = "bad peer address \"" + peer + "\"";
    return;
  }
  const auto& asn = d.contains("peer_asn") ? d["peer_asn"] : nlohmann::json();
  try {
    base.peer_asn = asn.is_string() ? static_cast<std::uint32_t>(std::stoul(asn.get<std::string>()))
                    : asn.is_number_unsigned() ? asn.get<std::uint32_t>()
                                               : 0;
  } catch (const std::exception&) {
    warning = "bad peer_asn";
    return;
  }
  const std::string type = string_member(d, "type", "");
  if (type == "RIS_PEER_STATE") {
    if (string_member(d, "state", "") == "down") {
      RouteEvent e = base;
      e.kind = RouteEvent::Kind::peer_down;
      out.push_back(std::move(e));
    }
    return;
  }
  if (type != "UPDATE") return;
  AsPath path;
  if (d.contains("path") && d["path"].is_array()) {
    for (const auto& hop : d["path"]) {
      if (hop.is_number_unsigned()) {
        if (path.empty() || path.back().type != SegmentType::sequence)
          path.push_back({SegmentType::sequence, {}});
        path.back().asns.push_back(hop.get<std::uint32_t>());
      } else if (hop.is_array()) {
        AsPathSegment set{SegmentType::set, {}};
        for (const auto& a : hop) {
          if (a.is_number_unsigned()) set.asns.push_back(a.get<std::uint32_t>());
        }
        path.push_back(std::move(set));
      }
    }
  }
  std::vector<std::uint32_t> origin_set;
  const auto origin = origin_as(path, &origin_set);
  // "aggregator": "65000:192.0.2.1" (RIS Live manual): the AS before the colon.
  std::optional<std::uint32_t> aggregator;
  if (const std::string agg = string_member(d, "aggregator", ""); !agg.empty()) {
    const auto colon = agg.find(':');
    const std::string asn_text = agg.substr(0, colon);
    if (!asn_text.empty() && asn_text.size() <= 10 &&
        asn_text.find_first_not_of("0123456789") == std::string::npos) {
      const unsigned long long v = std::stoull(asn_text);
      if (v <= 4294967295ULL) aggregator = static_cast<std::uint32_t>(v);
    }
  }
  if (d.contains("withdrawals") && d["withdrawals"].is_array()) {
    for (const auto& w : d["withdrawals"]) {
      auto prefix = w.is_string() ? Prefix::parse(w.get<std::string>()) : std::nullopt;
      if (!prefix) continue;
      RouteEvent e = base;
      e.kind = RouteEvent::Kind::withdraw;
      e.prefix = *prefix;
      out.push_back(std::move(e));
    }
  }
  if (d.contains("announcements") && d["announcements"].is_array()) {
    for (const auto& a : d["announcements"]) {
      if (!a.is_object() || !a.contains("prefixes") || !a["prefixes"].is_array()) continue;
      for (const auto& p : a["prefixes"]) {
        auto prefix = p.is_string() ? Prefix::parse(p.get<std::string>()) : std::nullopt;
        if (!prefix) continue;
        RouteEvent e = base;
        e.prefix = *prefix;
        e.path = path;
        e.origin = origin;
        e.origin_set = origin_set;
        e.aggregator = aggregator;
        out.push_back(std::move(e));
      }
    }
  }
}

}  // namespace vantage::bgp
