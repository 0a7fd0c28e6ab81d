#include "probe/bgp/bgp_message.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace vantage::bgp {
namespace {

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}

const char* attribute_name(std::uint8_t type) {
  switch (type) {
    case 1:
      return "ORIGIN";
    case 2:
      return "AS_PATH";
    case 3:
      return "NEXT_HOP";
    case 4:
      return "MULTI_EXIT_DISC";
    case 5:
      return "LOCAL_PREF";
    case 6:
      return "ATOMIC_AGGREGATE";
    case 7:
      return "AGGREGATOR";
    case 8:
      return "COMMUNITIES";
    case 14:
      return "MP_REACH_NLRI";
    case 15:
      return "MP_UNREACH_NLRI";
    case 17:
      return "AS4_PATH";
    case 18:
      return "AS4_AGGREGATOR";
    case 32:
      return "LARGE_COMMUNITIES";
    case 35:
      return "ONLY_TO_CUSTOMER";
    default:
      return "unknown";
  }
}

bool decode_as_path(const std::uint8_t* p, std::size_t n, bool as4, AsPath& out) {
  const std::size_t width = as4 ? 4 : 2;
  std::size_t i = 0;
  while (i < n) {
    if (n - i < 2) return false;
    const std::uint8_t type = p[i];
    const std::size_t count = p[i + 1];
    i += 2;
    if (type < 1 || type > 4 || n - i < count * width) return false;
    AsPathSegment seg;
    seg.type = static_cast<SegmentType>(type);
    seg.asns.reserve(count);
    for (std::size_t k = 0; k < count; ++k, i += width) {
      seg.asns.push_back(as4 ? be32(p + i) : be16(p + i));
    }
    out.push_back(std::move(seg));
  }
  return true;
}

IpAddr v4_addr(const std::uint8_t* p) {
  IpAddr a;
  std::memcpy(a.bytes.data(), p, 4);
  return a;
}

IpAddr v6_addr(const std::uint8_t* p) {
  IpAddr a;
  a.v6 = true;
  std::memcpy(a.bytes.data(), p, 16);
  return a;
}

// MP next hop of `len` bytes: 4 (IPv4), 16 (global), 32 (global + link-local).
void read_next_hop(const std::uint8_t* p, std::uint8_t len, Attributes& out) {
  out.mp_next_hop_length = len;
  if (len == 4) {
    out.mp_next_hop = v4_addr(p);
  } else if (len == 16 || len == 32) {
    out.mp_next_hop = v6_addr(p);
    if (len == 32) out.mp_next_hop_local = v6_addr(p + 16);
  }
}

}  // namespace

void Attributes::clear() { *this = Attributes{}; }

bool decode_nlri(const std::uint8_t* p, std::size_t n, bool v6, bool add_path,
                 std::vector<Nlri>& out, std::string& error, bool bgpdump_compat) {
  std::size_t i = 0;
  const std::size_t max_bits = v6 ? 128 : 32;
  while (i < n) {
    Nlri nlri;
    if (add_path) {
      if (n - i < 4) {
        error = "NLRI: path id runs past the end";
        return false;
      }
      nlri.path_id = be32(p + i);
      i += 4;
    }
    if (i >= n) {
      error = "NLRI: prefix length missing";
      return false;
    }
    const std::size_t bits = p[i++];
    if (bits > max_bits && !bgpdump_compat) {
      error = "NLRI: prefix length " + std::to_string(bits) + " is longer than the address";
      return false;
    }
    const std::size_t bytes = (bits + 7) / 8;
    if (n - i < bytes) {
      error = "NLRI: prefix runs past the end";
      return false;
    }
    nlri.prefix.addr.v6 = v6;
    std::memcpy(nlri.prefix.addr.bytes.data(), p + i, std::min<std::size_t>(bytes, 16));
    // Host bits beyond the length are masked (a sender may leave garbage there).
    if (bits % 8 && bits <= max_bits) {
      nlri.prefix.addr.bytes[bytes - 1] &= static_cast<std::uint8_t>(0xFF << (8 - bits % 8));
    }
    nlri.prefix.length = static_cast<std::uint8_t>(bits);
    i += bytes;
    out.push_back(nlri);
  }
  return true;
}

bool decode_attributes(const std::uint8_t* p, std::size_t n, const AttributeOptions& options,
                       Attributes& out, std::string& error) {
  std::size_t i = 0;
  while (i < n) {
    if (n - i < 3) {
      error = "attribute header runs past the attribute block";
      return false;
    }
    const std::uint8_t flags = p[i];
    const std::uint8_t type = p[i + 1];
    std::size_t len;
    if (flags & 0x10) {  // extended length
      if (n - i < 4) {
        error = "attribute header runs past the attribute block";
        return false;
      }
      len = be16(p + i + 2);
      i += 4;
    } else {
      len = p[i + 2];
      i += 3;
    }
    if (n - i < len) {
      error = "attribute " + std::to_string(type) + " (" + attribute_name(type) +
              "): " + std::to_string(len) + " bytes promised, " + std::to_string(n - i) + " left";
      return false;
    }
    const std::uint8_t* a = p + i;
    i += len;
    auto bad = [&](const std::string& what) {
      error = "attribute " + std::to_string(type) + " (" + attribute_name(type) + "): " + what;
      return false;
    };
    switch (type) {
      case 1:
        if (len != 1) return bad("length " + std::to_string(len));
        out.origin = a[0];
        break;
      case 2:
        out.has_as_path = true;
        out.as_path.clear();
        if (!decode_as_path(a, len, options.as4, out.as_path)) out.as_path_malformed = true;
        break;
      case 3:
        if (len != 4) return bad("length " + std::to_string(len));
        out.next_hop = v4_addr(a);
        break;
      case 4:
        if (len != 4) return bad("length " + std::to_string(len));
        out.med = be32(a);
        break;
      case 5:
        if (len != 4) return bad("length " + std::to_string(len));
        out.local_pref = be32(a);
        break;
      case 6:
        out.atomic_aggregate = true;
        break;
      case 7:
        if (options.bgpdump_compat && len >= (options.as4 ? 8u : 6u)) {
          // bgpdump reads the AS by the session's AS width whatever the attribute length says.
          out.aggregator_as = options.as4 ? be32(a) : be16(a);
          out.aggregator_ip = v4_addr(a + (options.as4 ? 4 : 2));
        } else if (len == 8) {
          out.aggregator_as = be32(a);
          out.aggregator_ip = v4_addr(a + 4);
        } else if (len == 6) {
          out.aggregator_as = be16(a);
          out.aggregator_ip = v4_addr(a + 2);
        } else {
          return bad("length " + std::to_string(len));
        }
        break;
      case 8:
        if (len % 4) return bad("length " + std::to_string(len) + " is not a multiple of 4");
        for (std::size_t k = 0; k < len; k += 4) out.communities.push_back(be32(a + k));
        break;
      case 14: {
        if (out.has_mp_reach) break;  // a second one is ignored
        if (len == 0) return bad("empty");
        if (options.table_dump_v2 && a[0] != 0) {
          // Abbreviated form (RFC 6396 §4.3.4): next-hop length, next hop.
          const std::uint8_t nh = a[0];
          if (len < 1u + nh) return bad("next hop runs past the attribute");
          out.has_mp_reach = true;
          out.mp_reach_afi = options.rib_afi ? options.rib_afi : 2;
          out.mp_reach_safi = 1;
          read_next_hop(a + 1, nh, out);
          break;
        }
        if (len < 5) return bad("length " + std::to_string(len));
        out.has_mp_reach = true;
        out.mp_reach_afi = be16(a);
        out.mp_reach_safi = a[2];
        const std::uint8_t nh = a[3];
        if (len < 5u + nh) return bad("next hop runs past the attribute");
        read_next_hop(a + 4, nh, out);
        const std::size_t nlri_at = 5u + nh;  // after the reserved (SNPA) byte
        if ((out.mp_reach_afi == 1 || out.mp_reach_afi == 2) && out.mp_reach_safi >= 1 &&
            out.mp_reach_safi <= 3 && !options.table_dump_v2) {
          std::string e;
          if (!decode_nlri(a + nlri_at, len - nlri_at, out.mp_reach_afi == 2, options.add_path,
                           out.mp_reach_nlri, e, options.bgpdump_compat)) {
            return bad(e);
          }
        }
        break;
      }
      case 15: {
        if (out.has_mp_unreach) break;
        if (len < 3) return bad("length " + std::to_string(len));
        out.has_mp_unreach = true;
        out.mp_unreach_afi = be16(a);
        out.mp_unreach_safi = a[2];
        if ((out.mp_unreach_afi == 1 || out.mp_unreach_afi == 2) && out.mp_unreach_safi >= 1 &&
            out.mp_unreach_safi <= 3) {
          std::string e;
          if (!decode_nlri(a + 3, len - 3, out.mp_unreach_afi == 2, options.add_path,
                           out.mp_unreach_nlri, e, options.bgpdump_compat)) {
            return bad(e);
          }
        }
        break;
      }
      case 17:
        out.has_as4_path = true;
        out.as4_path.clear();
        if (!decode_as_path(a, len, true, out.as4_path)) out.as4_path_malformed = true;
        break;
      case 18:
        if (len != 8) return bad("length " + std::to_string(len));
        out.as4_aggregator_as = be32(a);
        out.as4_aggregator_ip = v4_addr(a + 4);
        break;
      case 32:
        if (len % 12) return bad("length " + std::to_string(len) + " is not a multiple of 12");
        for (std::size_t k = 0; k < len; k += 12) {
          out.large_communities.push_back({be32(a + k), be32(a + k + 4), be32(a + k + 8)});
        }
        break;
      case 35:
        if (len != 4) return bad("length " + std::to_string(len));
        out.only_to_customer = be32(a);
        break;
      default:
        break;  // other attributes are not needed for route monitoring
    }
  }
  return true;
}

bool decode_update(const std::uint8_t* p, std::size_t n, bool as4, bool add_path, Update& out,
                   std::string& error, bool bgpdump_compat) {
  if (n < 2) {
    error = "UPDATE: withdrawn routes length missing";
    return false;
  }
  const std::size_t wlen = be16(p);
  if (n - 2 < wlen + 2) {
    error = "UPDATE: withdrawn routes run past the message";
    return false;
  }
  if (!decode_nlri(p + 2, wlen, false, add_path, out.withdrawn, error, bgpdump_compat))
    return false;
  const std::size_t alen = be16(p + 2 + wlen);
  const std::size_t attrs_at = 4 + wlen;
  if (n - attrs_at < alen) {
    error = "UPDATE: path attributes run past the message";
    return false;
  }
  AttributeOptions options;
  options.as4 = as4;
  options.add_path = add_path;
  options.bgpdump_compat = bgpdump_compat;
  // A damaged attribute ends the attribute block, not the UPDATE: the NLRI are still read.
  std::string attr_error;
  const bool attrs_ok = decode_attributes(p + attrs_at, alen, options, out.attributes, attr_error);
  const bool nlri_ok = decode_nlri(p + attrs_at + alen, n - attrs_at - alen, false, add_path,
                                   out.announced, error, bgpdump_compat);
  if (!attrs_ok) error = attr_error + (nlri_ok ? "" : "; " + error);
  return attrs_ok && nlri_ok;
}

namespace {
std::size_t path_count(const AsPath& path) {
  std::size_t n = 0;
  for (const auto& s : path) {
    n += (s.type == SegmentType::sequence || s.type == SegmentType::confed_sequence) ? s.asns.size()
                                                                                     : 1;
  }
  return n;
}
}  // namespace

AsPath effective_as_path(const Attributes& a) {
  if (!a.has_as4_path || a.as4_path_malformed || !a.has_as_path) return a.as_path;
  const std::size_t have = path_count(a.as_path);
  const std::size_t four = path_count(a.as4_path);
  if (have < four) return a.as_path;  // RFC 6793 §4.2.3: ignore AS4_PATH
  std::size_t keep = have - four;
  AsPath out;
  for (const auto& seg : a.as_path) {
    if (keep == 0) break;
    if (seg.type == SegmentType::sequence || seg.type == SegmentType::confed_sequence) {
      AsPathSegment s{seg.type, {}};
      for (std::size_t k = 0; k < seg.asns.size() && keep > 0; ++k, --keep)
        s.asns.push_back(seg.asns[k]);
      out.push_back(std::move(s));
    } else {
      out.push_back(seg);
      --keep;
    }
  }
  for (const auto& seg : a.as4_path) {
    if (!out.empty() && out.back().type == SegmentType::sequence &&
        seg.type == SegmentType::sequence) {
      out.back().asns.insert(out.back().asns.end(), seg.asns.begin(), seg.asns.end());
    } else {
      out.push_back(seg);
    }
  }
  return out;
}

std::optional<std::uint32_t> origin_as(const AsPath& path, std::vector<std::uint32_t>* origin_set) {
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    if (it->asns.empty()) continue;
    if (it->type == SegmentType::sequence) return it->asns.back();
    if (it->type == SegmentType::set) {
      if (origin_set) *origin_set = it->asns;
      return std::nullopt;
    }
    // Confederation segments are local to the neighbour's confederation: look further left.
  }
  return std::nullopt;
}

}  // namespace vantage::bgp
