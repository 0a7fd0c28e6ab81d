#include "probe/bgp/route_event.hpp"

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/time.hpp"

namespace vantage::bgp {
namespace {

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}

IpAddr address(const std::uint8_t* p, bool v6) {
  IpAddr a;
  a.v6 = v6;
  std::memcpy(a.bytes.data(), p, v6 ? 16 : 4);
  return a;
}

void fill_path(RouteEvent& e, const Attributes& a) {
  e.path = effective_as_path(a);
  e.origin = origin_as(e.path, &e.origin_set);
  e.communities = a.communities;
  e.large_communities = a.large_communities;
  e.only_to_customer = a.only_to_customer;
  // RFC 6793 §4.2.3: an AGGREGATOR of AS_TRANS (23456) is replaced by AS4_AGGREGATOR.
  if (a.aggregator_as) {
    e.aggregator =
        *a.aggregator_as == 23456 && a.as4_aggregator_as ? *a.as4_aggregator_as : *a.aggregator_as;
  }
}

}  // namespace

std::vector<std::uint32_t> flatten_path(const AsPath& path) {
  std::vector<std::uint32_t> out;
  for (const auto& seg : path) {
    if (seg.type != SegmentType::sequence) continue;
    for (std::uint32_t asn : seg.asns) {
      if (out.empty() || out.back() != asn) out.push_back(asn);
    }
  }
  return out;
}

void RouteEventDecoder::decode(const MrtRecord& r, std::vector<RouteEvent>& out) {
  judged_.clear();
  own_.clear();
  decode_record(r, out);
  // bgpdump's reading of the record is the judge of damage: its warnings when it has any (the
  // words of `vantage bgp dump`), else the stricter checks of route monitoring.
  auto& chosen = judged_.empty() ? own_ : judged_;
  for (auto& w : chosen) warnings_.push_back("offset " + std::to_string(r.offset) + ": " + w);
}

void RouteEventDecoder::decode_record(const MrtRecord& r, std::vector<RouteEvent>& out) {
  const std::uint8_t* p = r.data;
  const std::size_t n = r.size;
  const std::int64_t time_us = std::int64_t{r.timestamp} * 1'000'000 + r.microseconds;
  // judge(): damage as BgpdumpFormatter words it; own(): what only route monitoring rejects.
  auto judge = [&](std::string what) { judged_.push_back(std::move(what)); };
  auto own = [&](std::string what) { own_.push_back(std::move(what)); };
  // Runs only when the strict decoding failed: bgpdump's lenient reading (prefix lengths past the
  // address, AGGREGATOR by the AS width) accepts everything the strict one does, so a record the
  // strict decoder accepts has nothing for the judge either.
  auto judge_attributes = [&](const std::uint8_t* data, std::size_t size, AttributeOptions opt,
                              const char* what) {
    opt.bgpdump_compat = true;
    Attributes lenient;
    std::string error;
    if (!decode_attributes(data, size, opt, lenient, error)) judge(what + error);
  };
  RouteEvent base;
  base.time_us = time_us;
  base.collector = collector_;

  if (r.type == kMrtTableDump) {  // v1: one RIB entry per record (RFC 6396 §4.2)
    const std::uint16_t sub = r.subtype;
    if (sub < 1 || sub > 4) return judge("TABLE_DUMP: unknown subtype " + std::to_string(sub));
    const bool v6 = sub == 2 || sub == 4;
    const bool as4 = sub == 3 || sub == 4;
    const std::size_t alen = v6 ? 16 : 4;
    const std::size_t fixed = 4 + alen + 2 + 4 + alen + (as4 ? 4 : 2) + 2;
    if (n < fixed) return judge("TABLE_DUMP: record shorter than its fixed fields");
    RouteEvent ev = base;
    ev.prefix.addr = address(p + 4, v6);
    ev.prefix.length = p[4 + alen];
    const std::uint8_t* q = p + 4 + alen + 2 + 4;
    ev.peer_ip = address(q, v6);
    q += alen;
    ev.peer_asn = as4 ? be32(q) : be16(q);
    q += as4 ? 4 : 2;
    const std::size_t attr_len = std::min<std::size_t>(be16(q), n - fixed);
    AttributeOptions opt;
    opt.as4 = as4;
    opt.table_dump_v2 = true;
    opt.rib_afi = v6 ? 2 : 1;
    Attributes a;
    std::string error;
    const bool attributes_ok = decode_attributes(q + 2, attr_len, opt, a, error);
    if (!attributes_ok) judge_attributes(q + 2, attr_len, opt, "TABLE_DUMP: ");
    // bgpdump prints such a mask as it is; a route to it cannot be monitored.
    if (ev.prefix.length > (v6 ? 128 : 32)) return own("TABLE_DUMP: bad prefix length");
    if (!attributes_ok) own("TABLE_DUMP: " + error);
    fill_path(ev, a);
    out.push_back(std::move(ev));
    return;
  }

  if (r.type == kMrtTableDumpV2) {
    if (r.subtype == 1) {
      peers_.clear();
      have_peer_index_ = false;
      if (n < 6) return judge("PEER_INDEX_TABLE: too short");
      std::size_t i = 6 + be16(p + 4);
      if (n < i + 2) return judge("PEER_INDEX_TABLE: too short");
      const std::size_t count = be16(p + i);
      i += 2;
      for (std::size_t k = 0; k < count; ++k) {
        if (n < i + 1) return judge("PEER_INDEX_TABLE: peer entries run past the record");
        const bool v6 = p[i] & 1;
        const std::size_t as_len = (p[i] & 2) ? 4 : 2;
        const std::size_t ip_len = v6 ? 16 : 4;
        if (n < i + 5 + ip_len + as_len)
          return judge("PEER_INDEX_TABLE: peer entries run past the record");
        Peer peer{address(p + i + 5, v6),
                  as_len == 4 ? be32(p + i + 5 + ip_len) : be16(p + i + 5 + ip_len)};
        peers_.push_back(peer);
        i += 5 + ip_len + as_len;
      }
      have_peer_index_ = true;
      return;
    }
    const std::uint16_t sub = r.subtype;
    if (sub != 2 && sub != 4 && sub != 8 && sub != 10) return;
    // The peers of a damaged table are still used (those read before the damage), but the
    // records are reported: bgpdump skips them.
    if (!have_peer_index_) judge("TABLE_DUMP_V2 RIB record before any PEER_INDEX_TABLE");
    // Without peers no entry gives an event (each one's index is out of range, which bgpdump
    // reports after a table of no peers).
    if (peers_.empty()) own("RIB record before any PEER_INDEX_TABLE");
    const bool judged = !have_peer_index_;  // bgpdump stops here: nothing more for the judge
    auto judge_rib = [&](std::string what) {
      if (!judged) judge(std::move(what));
    };
    const bool v6 = sub == 4 || sub == 10;
    const bool add_path = sub >= 8;
    if (n < 5) return judge_rib("TABLE_DUMP_V2 RIB: too short");
    Prefix pfx;
    pfx.addr.v6 = v6;
    pfx.length = p[4];
    const std::size_t pbytes = (std::size_t{pfx.length} + 7) / 8;
    if (pfx.length > (v6 ? 128 : 32) || n < 5 + pbytes + 2)
      return judge_rib("TABLE_DUMP_V2 RIB: bad prefix");
    std::memcpy(pfx.addr.bytes.data(), p + 5, pbytes);
    std::size_t i = 5 + pbytes;
    const std::size_t entries = be16(p + i);
    i += 2;
    AttributeOptions opt;
    opt.table_dump_v2 = true;
    opt.rib_afi = v6 ? 2 : 1;
    for (std::size_t e = 0; e < entries; ++e) {
      const std::size_t head = 8 + (add_path ? 4 : 0);
      if (n < i + head) return judge_rib("TABLE_DUMP_V2 RIB: entries run past the record");
      const std::size_t index = be16(p + i);
      const std::size_t alen = be16(p + i + head - 2);
      RouteEvent ev = base;
      if (add_path) ev.path_id = be32(p + i + 6);
      i += head;
      if (n < i + alen) return judge_rib("TABLE_DUMP_V2 RIB: attributes run past the record");
      if (index >= peers_.size()) {
        if (!peers_.empty()) own("RIB: peer index out of range");
        judge_rib("TABLE_DUMP_V2 RIB: peer index " + std::to_string(index) +
                  " is not in the PEER_INDEX_TABLE");
        i += alen;
        continue;
      }
      Attributes a;
      std::string error;
      if (!decode_attributes(p + i, alen, opt, a, error)) {
        own("RIB: " + error);
        if (!judged) judge_attributes(p + i, alen, opt, "TABLE_DUMP_V2 RIB: ");
      }
      i += alen;
      ev.peer_ip = peers_[index].ip;
      ev.peer_asn = peers_[index].asn;
      ev.prefix = pfx;
      fill_path(ev, a);
      out.push_back(std::move(ev));
    }
    return;
  }

  if (r.type == kMrtBgp4mp || r.type == kMrtBgp4mpEt) {
    const std::uint16_t sub = r.subtype;
    const bool as4 = sub == 4 || sub == 5 || sub == 7 || sub == 9 || sub == 11;
    const std::size_t as_len = as4 ? 4 : 2;
    if (sub == 0 || sub == 5) {  // state change
      if (n == 8 && sub == 0) return judge("BGP4MP STATE_CHANGE: 8-byte record (Zebra bug)");
      if (n < 2 * as_len + 4) return judge("BGP4MP STATE_CHANGE: too short");
      const std::uint16_t afi = be16(p + 2 * as_len + 2);
      const std::size_t ip_len = afi == 2 ? 16 : 4;
      const std::size_t need = 2 * as_len + 4 + 2 * ip_len + 4;
      if ((afi != 1 && afi != 2) || n != need) {
        judge("BGP4MP STATE_CHANGE: unexpected length " + std::to_string(n));
        if ((afi != 1 && afi != 2) || n < need) return;  // a longer one still says the states
      }
      base.peer_asn = as4 ? be32(p) : be16(p);
      base.peer_ip = address(p + 2 * as_len + 4, afi == 2);
      const std::uint16_t old_state = be16(p + 2 * as_len + 4 + 2 * ip_len);
      const std::uint16_t new_state = be16(p + 2 * as_len + 4 + 2 * ip_len + 2);
      if (old_state == 6 && new_state != 6) {
        RouteEvent ev = base;
        ev.kind = RouteEvent::Kind::peer_down;
        out.push_back(std::move(ev));
      }
      return;
    }
    if (sub == 2 || sub == 3)
      return judge("BGP4MP subtype " + std::to_string(sub) +
                   " (ENTRY/SNAPSHOT) is not implemented");
    if (sub > 11) return judge("BGP4MP: unknown subtype " + std::to_string(sub));
    // MESSAGE subtypes 1, 4, 6-11. LOCAL (6, 7, 10, 11: our own router's view) give no events
    // but are checked as bgpdump checks them.
    if (n < 2 * as_len + 4) return judge("BGP4MP MESSAGE: too short");
    const std::uint16_t afi = be16(p + 2 * as_len + 2);
    if (afi != 1 && afi != 2)
      return judge("BGP4MP MESSAGE: unsupported AFI " + std::to_string(afi));
    const std::size_t ip_len = afi == 2 ? 16 : 4;
    const std::size_t head = 2 * as_len + 4 + 2 * ip_len;
    if (n < head + 19) return judge("BGP4MP MESSAGE: too short for a BGP header");
    const std::uint8_t* m = p + head;
    static constexpr std::uint8_t kMarker[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    // Not a BGP message: what follows would be read as routes that were never announced.
    if (std::memcmp(m, kMarker, 16) != 0) return judge("BGP4MP MESSAGE: bad BGP marker");
    if (m[18] != 2) return;  // OPEN, NOTIFICATION, KEEPALIVE, ROUTE-REFRESH
    const std::size_t declared = be16(m + 16);
    if (declared < 19) return judge("BGP4MP MESSAGE: BGP length " + std::to_string(declared));
    const std::size_t bgp_len = std::min(declared, n - head);  // a short record: read what is there
    const bool local = sub == 6 || sub == 7 || sub == 10 || sub == 11;
    const bool add_path = sub >= 8;
    Update u;
    std::string error;
    if (!decode_update(m + 19, bgp_len - 19, as4, add_path, u, error, /*bgpdump_compat=*/local)) {
      if (!local) {
        own("UPDATE: " + error);
        Update lenient;
        error.clear();
        if (!decode_update(m + 19, bgp_len - 19, as4, add_path, lenient, error, true)) {
          judge("BGP4MP UPDATE: " + error);
        }
      } else {
        judge("BGP4MP UPDATE: " + error);
      }
    }
    if (local) return;
    base.peer_asn = as4 ? be32(p) : be16(p);
    base.peer_ip = address(p + 2 * as_len + 4, afi == 2);
    update_to_events(u, base, out);
    return;
  }

  if (r.type == kMrtBgp) {
    // The deprecated BGP type (1999-2001 RIS files) gives no events (the caller counts its
    // records), but its damage is reported as bgpdump reports it.
    if (r.subtype == 3 && n < 10) return judge("BGP STATE_CHANGE: too short");
    if (r.subtype != 1) return;
    if (n < 12) return judge("BGP UPDATE: too short");
    Update lenient;
    std::string error;
    if (!decode_update(p + 12, n - 12, false, false, lenient, error, true)) {
      judge("BGP UPDATE: " + error);
    }
  }
}

void update_to_events(const Update& u, const RouteEvent& base, std::vector<RouteEvent>& out) {
  auto withdraw = [&](const Nlri& w) {
    RouteEvent ev = base;
    ev.kind = RouteEvent::Kind::withdraw;
    ev.prefix = w.prefix;
    ev.path_id = w.path_id;
    out.push_back(std::move(ev));
  };
  for (const auto& w : u.withdrawn) withdraw(w);
  for (const auto& w : u.attributes.mp_unreach_nlri) withdraw(w);
  if (u.announced.empty() && u.attributes.mp_reach_nlri.empty()) return;
  RouteEvent announced = base;
  fill_path(announced, u.attributes);
  auto announce = [&](const Nlri& a) {
    RouteEvent ev = announced;
    ev.prefix = a.prefix;
    ev.path_id = a.path_id;
    out.push_back(std::move(ev));
  };
  for (const auto& a : u.announced) announce(a);
  for (const auto& a : u.attributes.mp_reach_nlri) announce(a);
}

std::string path_text(const AsPath& path) {
  std::string text;
  for (const auto& seg : path) {
    const bool set = seg.type == SegmentType::set || seg.type == SegmentType::confed_set;
    const bool confed =
        seg.type == SegmentType::confed_sequence || seg.type == SegmentType::confed_set;
    if (!text.empty()) text += ' ';
    text += confed ? "(" : set ? "{" : "";
    for (std::size_t i = 0; i < seg.asns.size(); ++i) {
      if (i) text += set ? "," : " ";
      text += std::to_string(seg.asns[i]);
    }
    text += confed ? ")" : set ? "}" : "";
  }
  return text;
}

nlohmann::json to_json(const RouteEvent& e) {
  static constexpr const char* kEvent[] = {"announce", "withdraw", "peer_down", "peer_up",
                                           "end_of_rib"};
  nlohmann::json j{{"event", kEvent[static_cast<int>(e.kind)]},
                   {"time", format_rfc3339(from_unix_nanos(e.time_us * 1000))},
                   {"collector", e.collector},
                   {"peer", {{"ip", e.peer_ip.to_string()}, {"asn", e.peer_asn}}}};
  if (e.kind == RouteEvent::Kind::peer_down || e.kind == RouteEvent::Kind::peer_up) return j;
  if (e.kind == RouteEvent::Kind::end_of_rib) {
    j["afi"] = e.prefix.addr.v6 ? "ipv6" : "ipv4";
    return j;
  }
  j["prefix"] = e.prefix.to_string();
  if (e.path_id) j["path_id"] = *e.path_id;
  if (e.kind == RouteEvent::Kind::withdraw) return j;
  nlohmann::json path = nlohmann::json::array();
  for (const auto& seg : e.path) {
    const bool set = seg.type == SegmentType::set || seg.type == SegmentType::confed_set;
    const bool confed =
        seg.type == SegmentType::confed_sequence || seg.type == SegmentType::confed_set;
    if (confed) continue;  // confederation segments are local to the peer: not in `path`
    if (set) {
      path.push_back(seg.asns);
    } else {
      for (auto asn : seg.asns) path.push_back(asn);
    }
  }
  j["path"] = std::move(path);
  j["as_path"] = path_text(e.path);
  if (e.origin) j["origin"] = *e.origin;
  if (!e.origin_set.empty()) j["origin_set"] = e.origin_set;
  if (!e.communities.empty()) {
    auto& c = j["communities"] = nlohmann::json::array();
    for (auto v : e.communities)
      c.push_back(std::to_string(v >> 16) + ":" + std::to_string(v & 0xffff));
  }
  if (!e.large_communities.empty()) {
    auto& c = j["large_communities"] = nlohmann::json::array();
    for (const auto& v : e.large_communities) {
      c.push_back(std::to_string(v[0]) + ":" + std::to_string(v[1]) + ":" + std::to_string(v[2]));
    }
  }
  if (e.only_to_customer) j["only_to_customer"] = *e.only_to_customer;
  return j;
}

}  // namespace vantage::bgp
