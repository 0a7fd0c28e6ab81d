#include "probe/bgp/bgpdump_format.hpp"

#include <charconv>
#include <cstring>

#include "probe/bgp/bgp_message.hpp"

namespace vantage::bgp {
namespace {

constexpr std::uint32_t kAsTrans = 23456;

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

template <typename T>
void num(std::string& out, T v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

void ipv4(std::string& out, const std::uint8_t* p) {
  num(out, p[0]);
  out += '.';
  num(out, p[1]);
  out += '.';
  num(out, p[2]);
  out += '.';
  num(out, p[3]);
}

void addr(std::string& out, const IpAddr& a) {
  if (a.v6) {
    append_bgpdump_ipv6(out, a.bytes.data());
  } else {
    ipv4(out, a.bytes.data());
  }
}

void prefix(std::string& out, const Prefix& p) {
  addr(out, p.addr);
  out += '/';
  num(out, p.length);
}

void time_field(std::string& out, const MrtRecord& r, bool et) {
  num(out, r.timestamp);
  if (et) {
    char buf[16];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, r.microseconds);
    const auto digits = static_cast<std::size_t>(end - buf);
    out += '.';
    if (digits < 6) out.append(6 - digits, '0');
    out.append(buf, end);
  }
}

std::size_t path_count(const AsPath& path) {
  std::size_t n = 0;
  for (const auto& s : path) {
    n += (s.type == SegmentType::sequence || s.type == SegmentType::confed_sequence) ? s.asns.size() : 1;
  }
  return n;
}

// bgpdump's process_asn32_trans, bug for bug (docs/bgp.md#dump): runs for 2-byte AS_PATHs only.
void asn32_trans(Attributes& a) {
  if (a.aggregator_as && a.as4_aggregator_as) {
    if (*a.aggregator_as != kAsTrans) return;  // and AS4_PATH is not merged either
    a.aggregator_as = a.as4_aggregator_as;
    a.aggregator_ip = a.as4_aggregator_ip;
  }
  if (!a.has_as4_path || !a.has_as_path || a.as_path_malformed || a.as4_path_malformed) return;
  const std::size_t have = path_count(a.as_path);
  const std::size_t four = path_count(a.as4_path);
  if (have < four) return;
  const std::size_t target = have - four;
  AsPath merged;
  std::size_t taken = 0;
  // The source segment never advances in bgpdump's asn32_merge_paths: the first segment is
  // copied again and again.
  while (taken < target && !a.as_path.empty()) {
    const AsPathSegment& first = a.as_path.front();
    if (first.type == SegmentType::set || first.type == SegmentType::confed_set) {
      merged.push_back(first);
      ++taken;
    } else {
      if (first.asns.empty()) break;  // bgpdump loops forever here
      AsPathSegment s{first.type, {}};
      for (std::size_t k = 0; k < first.asns.size() && taken < target; ++k, ++taken) {
        s.asns.push_back(first.asns[k]);
      }
      merged.push_back(std::move(s));
    }
  }
  for (const auto& s : a.as4_path) merged.push_back(s);
  a.as_path = std::move(merged);
}

void as_path(std::string& out, const Attributes& a) {
  if (!a.has_as_path) return;
  if (a.as_path_malformed) {
    out += "! Error !";
    return;
  }
  bool first_segment = true;
  for (const auto& seg : a.as_path) {
    if (!first_segment) out += ' ';
    first_segment = false;
    char open = 0, close = 0, sep = ' ';
    switch (seg.type) {
      case SegmentType::sequence: break;
      case SegmentType::set: open = '{', close = '}', sep = ','; break;
      case SegmentType::confed_sequence: open = '(', close = ')'; break;
      case SegmentType::confed_set: open = '[', close = ']', sep = ','; break;
    }
    if (open) out += open;
    for (std::size_t k = 0; k < seg.asns.size(); ++k) {
      if (k) out += sep;
      num(out, seg.asns[k]);
    }
    if (close) out += close;
  }
}

const char* origin(const Attributes& a) {
  if (a.origin && *a.origin == 0) return "IGP";
  if (a.origin && *a.origin == 1) return "EGP";
  return "INCOMPLETE";
}

void communities(std::string& out, const Attributes& a) {
  for (std::size_t k = 0; k < a.communities.size(); ++k) {
    if (k) out += ' ';
    const std::uint32_t c = a.communities[k];
    if (c == 0xFFFFFF01) {
      out += "no-export";
    } else if (c == 0xFFFFFF02) {
      out += "no-advertise";
    } else if (c == 0xFFFFFF03) {
      out += "local-AS";
    } else {
      num(out, c >> 16);
      out += ':';
      num(out, c & 0xFFFF);
    }
  }
}

// "COMMUNITIES|AG|AGGREGATOR|\n"
void communities_to_end(std::string& out, const Attributes& a) {
  communities(out, a);
  out += a.atomic_aggregate ? "|AG|" : "|NAG|";
  if (a.aggregator_as && !(a.aggregator_ip.bytes[0] == 255 && a.aggregator_ip.bytes[1] == 255 &&
                           a.aggregator_ip.bytes[2] == 255 && a.aggregator_ip.bytes[3] == 255)) {
    num(out, *a.aggregator_as);
    out += ' ';
    ipv4(out, a.aggregator_ip.bytes.data());
  }
  out += "|\n";
}

// "|COMMUNITIES|AG|AGGREGATOR|\n" (type-5 records lose the first "|").
void tail(std::string& out, const Attributes& a, bool missing_separator = false) {
  if (!missing_separator) out += '|';
  communities_to_end(out, a);
}

void lp_med_unsigned(std::string& out, const Attributes& a) {
  num(out, a.local_pref.value_or(0));
  out += '|';
  num(out, a.med.value_or(0));
}

void next_hop_attr(std::string& out, const Attributes& a) {
  if (a.next_hop) {
    ipv4(out, a.next_hop->bytes.data());
  } else {
    out += "255.255.255.255";
  }
}

// The MP next hop as bgpdump prints it: IPv4 for length 4, the global IPv6 address for 16/32.
bool mp_next_hop(std::string& out, const Attributes& a) {
  if (!a.mp_next_hop) return false;
  addr(out, *a.mp_next_hop);
  return true;
}

// "AS_PATH|ORIGIN|": how every A and B line's attributes begin.
void path_and_origin(std::string& out, const Attributes& a) {
  as_path(out, a);
  out += '|';
  out += origin(a);
  out += '|';
}

// "|LOCAL_PREF|MED|COMMUNITIES|AG|AGGREGATOR|\n": what follows the next hop (LP/MED unsigned).
void after_next_hop(std::string& out, const Attributes& a, bool missing_separator = false) {
  out += '|';
  lp_med_unsigned(out, a);
  tail(out, a, missing_separator);
}

// The end of a STATE line, after the peer address: "|PEER_AS|OLD_STATE|NEW_STATE\n".
void state_tail(std::string& out, std::uint32_t peer_as, std::uint16_t old_state, std::uint16_t new_state) {
  out += '|';
  num(out, peer_as);
  out += '|';
  num(out, old_state);
  out += '|';
  num(out, new_state);
  out += '\n';
}

void line_start(std::string& out, const char* format, const MrtRecord& r, bool et, const char* kind) {
  out += format;
  out += '|';
  time_field(out, r, et);
  out += '|';
  out += kind;
  out += '|';
}

}  // namespace

void append_bgpdump_ipv6(std::string& out, const std::uint8_t* a) {
  static constexpr std::uint8_t kZero12[12] = {};
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(a, kMapped, 12) == 0) {
    out += "::ffff:";
    ipv4(out, a + 12);
    return;
  }
  if (std::memcmp(a, kZero12, 12) == 0 && be32(a + 12) > 1) {
    out += "::";
    ipv4(out, a + 12);
    return;
  }
  std::uint16_t g[8];
  for (int i = 0; i < 8; ++i) g[i] = be16(a + 2 * i);
  int best = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0) ++j;
    if (j - i > best_len) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (i > 0 && i != best + best_len) out += ':';
    char buf[4];
    int n = 0;
    std::uint16_t v = g[i];
    do {
      buf[n++] = kHex[v & 0xF];
      v >>= 4;
    } while (v);
    while (n) out += buf[--n];
  }
}

void BgpdumpFormatter::warn(const MrtRecord& r, const std::string& what) {
  warnings_.push_back("offset " + std::to_string(r.offset) + ": " + what);
}

void BgpdumpFormatter::format(const MrtRecord& r, std::string& out) {
  switch (r.type) {
    case kMrtTableDump: table_dump(r, out); break;
    case kMrtTableDumpV2: table_dump_v2(r, out); break;
    case kMrtBgp4mp:
    case kMrtBgp4mpEt: bgp4mp(r, out); break;
    case kMrtBgp: mrtd_bgp(r, out); break;
    default: break;  // other MRT types (OSPF, IS-IS, …): nothing to print
  }
}

void BgpdumpFormatter::table_dump(const MrtRecord& r, std::string& out) {
  const std::uint16_t sub = r.subtype;
  if (sub < 1 || sub > 4) {
    warn(r, "TABLE_DUMP: unknown subtype " + std::to_string(sub));
    return;
  }
  const bool v6 = sub == 2 || sub == 4;
  const bool as4 = sub == 3 || sub == 4;
  const std::size_t alen = v6 ? 16 : 4;
  const std::size_t fixed = 4 + alen + 2 + 4 + alen + (as4 ? 4 : 2) + 2;
  if (r.size < fixed) {
    warn(r, "TABLE_DUMP: record shorter than its fixed fields");
    return;
  }
  const std::uint8_t* p = r.data + 4;
  const std::uint8_t* pfx = p;
  p += alen;
  const std::uint8_t mask = p[0];
  p += 2 + 4;  // mask, status, originated time
  const std::uint8_t* peer_ip = p;
  p += alen;
  const std::uint32_t peer_as = as4 ? be32(p) : be16(p);
  p += as4 ? 4 : 2;
  const std::size_t attr_len = be16(p);
  p += 2;
  const std::size_t avail = r.size - fixed;
  Attributes a;
  AttributeOptions opt;
  opt.as4 = as4;
  opt.table_dump_v2 = true;  // RIB dumps abbreviate MP_REACH
  opt.bgpdump_compat = true;
  std::string error;
  if (!decode_attributes(p, std::min(attr_len, avail), opt, a, error)) warn(r, "TABLE_DUMP: " + error);
  if (!as4) asn32_trans(a);
  line_start(out, "TABLE_DUMP", r, false, "B");
  // bgpdump prints IPv6 addresses only for subtype 2 (AFI_IP6): subtype 4 shows the first 4 bytes.
  const bool print_v6 = sub == 2;
  if (print_v6) append_bgpdump_ipv6(out, peer_ip); else ipv4(out, peer_ip);
  out += '|';
  num(out, peer_as);
  out += '|';
  if (print_v6) append_bgpdump_ipv6(out, pfx); else ipv4(out, pfx);
  out += '/';
  num(out, mask);
  out += '|';
  path_and_origin(out, a);
  if (a.has_mp_reach && a.mp_next_hop && a.mp_reach_afi == 2) {
    append_bgpdump_ipv6(out, a.mp_next_hop->bytes.data());
  } else {
    next_hop_attr(out, a);
  }
  after_next_hop(out, a);
}

void BgpdumpFormatter::table_dump_v2(const MrtRecord& r, std::string& out) {
  const std::uint8_t* p = r.data;
  const std::size_t n = r.size;
  if (r.subtype == 1) {  // PEER_INDEX_TABLE
    peers_.clear();
    have_peer_index_ = false;
    if (n < 6) return warn(r, "PEER_INDEX_TABLE: too short");
    std::size_t i = 4;
    const std::size_t view_len = be16(p + i);
    i += 2 + view_len;
    if (n < i + 2) return warn(r, "PEER_INDEX_TABLE: too short");
    const std::size_t count = be16(p + i);
    i += 2;
    for (std::size_t k = 0; k < count; ++k) {
      if (n < i + 1) return warn(r, "PEER_INDEX_TABLE: peer entries run past the record");
      const std::uint8_t type = p[i];
      Peer peer;
      peer.v6 = type & 1;
      const std::size_t ip_len = peer.v6 ? 16 : 4;
      const std::size_t as_len = (type & 2) ? 4 : 2;
      if (n < i + 1 + 4 + ip_len + as_len) return warn(r, "PEER_INDEX_TABLE: peer entries run past the record");
      std::memcpy(peer.ip, p + i + 5, ip_len);
      peer.asn = as_len == 4 ? be32(p + i + 5 + ip_len) : be16(p + i + 5 + ip_len);
      peers_.push_back(peer);
      i += 1 + 4 + ip_len + as_len;
    }
    have_peer_index_ = true;
    return;
  }
  const std::uint16_t sub = r.subtype;
  if (sub != 2 && sub != 4 && sub != 8 && sub != 10) return;  // multicast, RIB_GENERIC: not printed
  if (!have_peer_index_) return warn(r, "TABLE_DUMP_V2 RIB record before any PEER_INDEX_TABLE");
  const bool v6 = sub == 4 || sub == 10;
  const bool add_path = sub == 8 || sub == 10;
  if (n < 5) return warn(r, "TABLE_DUMP_V2 RIB: too short");
  Prefix pfx;
  pfx.addr.v6 = v6;
  pfx.length = p[4];
  const std::size_t pbytes = (std::size_t{pfx.length} + 7) / 8;
  if (pbytes > (v6 ? 16u : 4u) || n < 5 + pbytes + 2) return warn(r, "TABLE_DUMP_V2 RIB: bad prefix");
  std::memcpy(pfx.addr.bytes.data(), p + 5, pbytes);
  std::size_t i = 5 + pbytes;
  const std::size_t entries = be16(p + i);
  i += 2;
  const char* format = add_path ? "TABLE_DUMP2_AP" : "TABLE_DUMP2";
  AttributeOptions opt;
  opt.as4 = true;
  opt.table_dump_v2 = true;
  opt.rib_afi = v6 ? 2 : 1;
  opt.bgpdump_compat = true;
  Attributes a;
  std::string error;
  for (std::size_t e = 0; e < entries; ++e) {
    const std::size_t head = 2 + 4 + (add_path ? 4 : 0) + 2;
    if (n < i + head) return warn(r, "TABLE_DUMP_V2 RIB: entries run past the record");
    const std::size_t peer_index = be16(p + i);
    const std::uint32_t path_id = add_path ? be32(p + i + 6) : 0;
    const std::size_t attr_len = be16(p + i + head - 2);
    i += head;
    if (n < i + attr_len) return warn(r, "TABLE_DUMP_V2 RIB: attributes run past the record");
    if (peer_index >= peers_.size()) {
      warn(r, "TABLE_DUMP_V2 RIB: peer index " + std::to_string(peer_index) + " is not in the PEER_INDEX_TABLE");
      i += attr_len;
      continue;
    }
    a.clear();
    if (!decode_attributes(p + i, attr_len, opt, a, error)) warn(r, "TABLE_DUMP_V2 RIB: " + error);
    i += attr_len;
    const Peer& peer = peers_[peer_index];
    line_start(out, format, r, false, "B");
    if (peer.v6) append_bgpdump_ipv6(out, peer.ip); else ipv4(out, peer.ip);
    out += '|';
    num(out, peer.asn);
    out += '|';
    prefix(out, pfx);
    out += '|';
    if (add_path) {
      num(out, path_id);
      out += '|';
    }
    path_and_origin(out, a);
    const bool mp = a.has_mp_reach && a.mp_reach_safi == 1 && (a.mp_reach_afi == 1 || a.mp_reach_afi == 2);
    if (mp) {
      mp_next_hop(out, a);  // other lengths: bgpdump prints garbage; we print nothing
    } else {
      next_hop_attr(out, a);
    }
    after_next_hop(out, a);
  }
}

void BgpdumpFormatter::bgp4mp(const MrtRecord& r, std::string& out) {
  const bool et = r.type == kMrtBgp4mpEt;
  const std::uint16_t sub = r.subtype;
  const std::uint8_t* p = r.data;
  const std::size_t n = r.size;
  if (sub == 0 || sub == 5) {  // STATE_CHANGE(_AS4)
    const std::size_t as_len = sub == 5 ? 4 : 2;
    if (n == 8 && as_len == 2) {
      // Zebra wrote 8-byte state changes (peer AS, local AS, old, new): bgpdump prints them
      // with address 0.0.0.0.
      warn(r, "BGP4MP STATE_CHANGE: 8-byte record (Zebra bug)");
      line_start(out, et ? "BGP4MP_ET" : "BGP4MP", r, et, "STATE");
      out += "0.0.0.0";
      state_tail(out, be16(p), be16(p + 4), be16(p + 6));
      return;
    }
    if (n < 2 * as_len + 4) return warn(r, "BGP4MP STATE_CHANGE: too short");
    const std::uint16_t afi = be16(p + 2 * as_len + 2);
    const std::size_t ip_len = afi == 2 ? 16 : 4;
    const std::size_t need = 2 * as_len + 4 + 2 * ip_len + 4;
    if ((afi != 1 && afi != 2) || n != need) {
      return warn(r, "BGP4MP STATE_CHANGE: unexpected length " + std::to_string(n));
    }
    const std::uint8_t* ip = p + 2 * as_len + 4;
    line_start(out, et ? "BGP4MP_ET" : "BGP4MP", r, et, "STATE");
    if (afi == 2) append_bgpdump_ipv6(out, ip); else ipv4(out, ip);
    state_tail(out, as_len == 4 ? be32(p) : std::uint32_t{be16(p)}, be16(ip + 2 * ip_len), be16(ip + 2 * ip_len + 2));
    return;
  }
  if (sub == 2 || sub == 3) return warn(r, "BGP4MP subtype " + std::to_string(sub) + " (ENTRY/SNAPSHOT) is not implemented");
  if (sub < 1 || sub > 11) return warn(r, "BGP4MP: unknown subtype " + std::to_string(sub));
  const bool as4 = sub == 4 || sub == 7 || sub == 9 || sub == 11;
  const bool local = sub == 6 || sub == 7;
  const bool add_path = sub >= 8;
  const bool print_local_side = sub == 10 || sub == 11;
  const std::size_t as_len = as4 ? 4 : 2;
  if (n < 2 * as_len + 4) return warn(r, "BGP4MP MESSAGE: too short");
  const std::uint16_t afi = be16(p + 2 * as_len + 2);
  if (afi != 1 && afi != 2) return warn(r, "BGP4MP MESSAGE: unsupported AFI " + std::to_string(afi));
  const std::size_t ip_len = afi == 2 ? 16 : 4;
  const std::size_t head = 2 * as_len + 4 + 2 * ip_len;
  if (n < head + 19) return warn(r, "BGP4MP MESSAGE: too short for a BGP header");
  const std::uint8_t* m = p + head;
  static constexpr std::uint8_t kMarker[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                               0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  if (std::memcmp(m, kMarker, 16) != 0) return warn(r, "BGP4MP MESSAGE: bad BGP marker");
  const std::uint8_t type = m[18];
  if (type != 2) return;  // OPEN, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH: nothing printed
  std::size_t bgp_len = be16(m + 16);
  if (bgp_len < 19) return warn(r, "BGP4MP MESSAGE: BGP length " + std::to_string(bgp_len));
  bgp_len = std::min(bgp_len, n - head);  // a short record: read what is there
  Update u;
  std::string error;
  if (!decode_update(m + 19, bgp_len - 19, as4, add_path, u, error, true)) {
    warn(r, "BGP4MP UPDATE: " + error);
  }
  Attributes& a = u.attributes;
  if (!as4) asn32_trans(a);

  const char* format = add_path ? (et ? "BGP4MP_ET_AP" : "BGP4MP_AP")
                       : local  ? (et ? "BGP4MP_ET_LOCAL" : "BGP4MP_LOCAL")
                                : (et ? "BGP4MP_ET" : "BGP4MP");
  const std::uint8_t* peer_ip = p + 2 * as_len + 4 + (print_local_side ? ip_len : 0);
  const std::uint32_t peer_as = print_local_side ? (as4 ? be32(p + as_len) : be16(p + as_len))
                                                 : (as4 ? be32(p) : be16(p));
  // Every line of this record starts the same way and every prefix of one address family
  // shares the attribute part: build both once, then each line is head + prefix + tail.
  std::string line_head;
  auto make_line_head = [&](const char* kind) {
    line_head.clear();
    line_start(line_head, format, r, et, kind);
    if (afi == 2) append_bgpdump_ipv6(line_head, peer_ip); else ipv4(line_head, peer_ip);
    line_head += '|';
    num(line_head, peer_as);
    line_head += '|';
  };
  if (!u.withdrawn.empty() || (a.has_mp_unreach && !a.mp_unreach_nlri.empty())) {
    make_line_head("W");
    auto withdraw = [&](const Nlri& w) {
      out += line_head;
      prefix(out, w.prefix);
      if (w.path_id) {
        out += '|';
        num(out, *w.path_id);
      }
      out += '\n';
    };
    for (const auto& w : u.withdrawn) withdraw(w);
    if (a.has_mp_unreach) {
      for (const auto& w : a.mp_unreach_nlri) withdraw(w);
    }
  }
  const bool mp_v4 = a.has_mp_reach && a.mp_reach_afi == 1 && !a.mp_reach_nlri.empty();
  const bool mp_v6 = a.has_mp_reach && a.mp_reach_afi == 2 && !a.mp_reach_nlri.empty();
  if (u.announced.empty() && !mp_v4 && !mp_v6) return;
  make_line_head("A");
  std::string tail_text;
  auto announce = [&](const std::vector<Nlri>& nlris) {
    for (const auto& nlri : nlris) {
      out += line_head;
      prefix(out, nlri.prefix);
      out += '|';
      if (nlri.path_id) {
        num(out, *nlri.path_id);
        out += '|';
      }
      out += tail_text;
    }
  };
  if (!u.announced.empty()) {
    tail_text.clear();
    path_and_origin(tail_text, a);
    next_hop_attr(tail_text, a);
    after_next_hop(tail_text, a);
    announce(u.announced);
  }
  if (mp_v4) {
    tail_text.clear();
    path_and_origin(tail_text, a);
    if (mp_next_hop(tail_text, a)) {
      tail_text += '|';
      // bgpdump prints these two with %d for IPv4 prefixes in MP_REACH.
      num(tail_text, static_cast<std::int32_t>(a.local_pref.value_or(0)));
      tail_text += '|';
      num(tail_text, static_cast<std::int32_t>(a.med.value_or(0)));
      tail_text += '|';
    }
    communities_to_end(tail_text, a);
    announce(a.mp_reach_nlri);
  } else if (mp_v6) {
    tail_text.clear();
    if (a.mp_next_hop) {
      path_and_origin(tail_text, a);
      mp_next_hop(tail_text, a);
      tail_text += '|';
      lp_med_unsigned(tail_text, a);
      tail_text += '|';
    }
    communities_to_end(tail_text, a);
    announce(a.mp_reach_nlri);
  }
}

void BgpdumpFormatter::mrtd_bgp(const MrtRecord& r, std::string& out) {
  const std::uint8_t* p = r.data;
  const std::size_t n = r.size;
  if (r.subtype == 3) {  // STATE_CHANGE
    if (n < 10) return warn(r, "BGP STATE_CHANGE: too short");
    line_start(out, "BGP", r, false, "STATE");
    ipv4(out, p + 2);
    state_tail(out, be16(p), be16(p + 6), be16(p + 8));
    return;
  }
  if (r.subtype != 1) return;  // only UPDATEs print
  if (n < 12) return warn(r, "BGP UPDATE: too short");
  const std::uint32_t src_as = be16(p);
  const std::uint8_t* src_ip = p + 2;
  Update u;
  std::string error;
  if (!decode_update(p + 12, n - 12, false, false, u, error, true)) warn(r, "BGP UPDATE: " + error);
  Attributes& a = u.attributes;
  asn32_trans(a);
  auto start = [&](const char* kind) {
    line_start(out, "BGP", r, false, kind);
    ipv4(out, src_ip);
    out += '|';
    num(out, src_as);
    out += '|';
  };
  for (const auto& w : u.withdrawn) {
    start("W");
    prefix(out, w.prefix);
    out += '\n';
  }
  for (const auto& nlri : u.announced) {
    start("A");
    prefix(out, nlri.prefix);
    out += '|';
    path_and_origin(out, a);
    next_hop_attr(out, a);
    after_next_hop(out, a, /*missing_separator=*/true);  // bgpdump omits the "|" after MED here
  }
}

}  // namespace vantage::bgp
