#include "probe/bgp/monitor.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "common/config_node.hpp"
#include "common/time.hpp"

namespace vantage::bgp {
namespace {

std::string join(const std::vector<std::uint32_t>& v, const char* sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += std::to_string(v[i]);
  }
  return out;
}

std::vector<std::uint32_t> asn_list(const ConfigNode& n) {
  std::vector<std::uint32_t> out;
  if (n.is_sequence()) {
    for (const auto& item : n.items())
      out.push_back(static_cast<std::uint32_t>(item.as_int(0, 4294967295LL)));
  } else {
    out.push_back(static_cast<std::uint32_t>(n.as_int(0, 4294967295LL)));
  }
  return out;
}

}  // namespace

bool is_private_or_reserved_asn(std::uint32_t asn) {
  return asn == 0 || asn == 23456 || (asn >= 64496 && asn <= 131071) ||
         (asn >= 4200000000u);  // documentation, private (RFC 6996), reserved, last
}

bool is_bogon(const Prefix& p) {
  static const char* const kV4[] = {
      "0.0.0.0/8",       "10.0.0.0/8",     "100.64.0.0/10", "127.0.0.0/8",    "169.254.0.0/16",
      "172.16.0.0/12",   "192.0.0.0/24",   "192.0.2.0/24",  "192.168.0.0/16", "198.18.0.0/15",
      "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3"};
  static const char* const kV6[] = {"::/8", "2001:db8::/32", "fc00::/7", "fe80::/10", "ff00::/8"};
  static const std::vector<Prefix> bogons = [] {
    std::vector<Prefix> out;
    for (const char* s : kV4) out.push_back(*Prefix::parse(s));
    for (const char* s : kV6) out.push_back(*Prefix::parse(s));
    return out;
  }();
  if (!p.addr.v6 && p.length < 8) return true;  // default and too-short routes
  return std::any_of(bogons.begin(), bogons.end(), [&](const Prefix& b) { return b.contains(p); });
}

Expectations load_expectations(const std::string& path) {
  const ConfigNode root = ConfigNode::load_file(path);
  root.expect_map();
  Expectations e;
  for (const auto& [key, node] : root.entries()) {
    if (key == "options") {
      node.expect_keys({"min_peers", "visibility_threshold", "resolve_hold"});
      if (auto v = node.get("min_peers")) e.min_peers = static_cast<int>(v->as_int(1, 100000));
      if (auto v = node.get("visibility_threshold")) e.visibility_threshold = v->as_double(0.01, 1);
      if (auto v = node.get("resolve_hold")) {
        e.resolve_hold_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                v->as_duration(std::chrono::seconds(0), std::chrono::hours(24)))
                                .count();
      }
      continue;
    }
    auto prefix = Prefix::parse(key);
    if (!prefix)
      node.fail("\"" + key +
                "\" is not a prefix like 192.0.2.0/24 or 2001:db8::/32 (host bits must be zero)");
    node.expect_keys({"description", "asn", "ignoreMorespecifics", "ignore", "group", "upstreams"});
    MonitoredPrefix m;
    m.prefix = *prefix;
    if (auto v = node.get("description")) m.description = v->as_string();
    m.origins = asn_list(node.require("asn"));
    if (auto v = node.get("upstreams")) m.upstreams = asn_list(*v);
    if (auto v = node.get("ignoreMorespecifics")) m.ignore_more_specifics = v->as_bool();
    if (auto v = node.get("ignore")) m.ignore = v->as_bool();
    e.prefixes.push_back(std::move(m));
  }
  return e;
}

AsRelationships AsRelationships::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read AS relationships \"" + path + "\"");
  AsRelationships r;
  std::string line;
  int no = 0;
  while (std::getline(in, line)) {
    ++no;
    if (line.empty() || line[0] == '#') continue;
    std::uint32_t a = 0, b = 0;
    int rel = 0;
    char s1 = 0, s2 = 0;
    std::istringstream ss(line);
    if (!(ss >> a >> s1 >> b >> s2 >> rel) || s1 != '|' || s2 != '|' || (rel != -1 && rel != 0)) {
      throw std::runtime_error(path + ":" + std::to_string(no) +
                               ": expected \"a|b|-1\" or \"a|b|0\", got \"" + line + "\"");
    }
    r.add(a, b, rel);
  }
  return r;
}

void AsRelationships::add(std::uint32_t a, std::uint32_t b, int rel) {
  rels_[{a, b}] = static_cast<std::int8_t>(rel);
}

AsRelationships::Rel AsRelationships::relation(std::uint32_t from, std::uint32_t to) const {
  if (auto it = rels_.find({from, to}); it != rels_.end()) {
    return it->second == 0 ? Rel::peer : Rel::provider_to_customer;  // from is provider of to
  }
  if (auto it = rels_.find({to, from}); it != rels_.end()) {
    return it->second == 0 ? Rel::peer : Rel::customer_to_provider;  // to is provider of from
  }
  return Rel::unknown;
}

Vrps Vrps::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read VRPs \"" + path + "\"");
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded()) throw std::runtime_error(path + ": not valid JSON");
  const nlohmann::json* list = &j;
  if (j.is_object() && j.contains("roas")) list = &j["roas"];
  if (!list->is_array())
    throw std::runtime_error(path + ": expected {\"roas\": [...]} or an array of VRPs");
  Vrps v;
  std::size_t index = 0;
  for (const auto& item : *list) {
    auto fail = [&](const std::string& what) {
      throw std::runtime_error(path + ": entry " + std::to_string(index) + ": " + what);
    };
    if (!item.is_object() || !item.contains("asn") || !item.contains("prefix"))
      fail("needs asn and prefix");
    std::uint64_t asn = 0;
    const auto& a = item["asn"];
    if (a.is_number_unsigned()) {
      asn = a.get<std::uint64_t>();
    } else if (a.is_string()) {
      std::string s = a.get<std::string>();
      if (s.size() > 2 && (s[0] == 'A' || s[0] == 'a') && (s[1] == 'S' || s[1] == 's'))
        s = s.substr(2);
      if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 10)
        fail("bad asn");
      asn = std::stoull(s);
    } else {
      fail("bad asn");
    }
    if (asn > 4294967295ULL) fail("asn out of range");
    auto prefix = item["prefix"].is_string() ? Prefix::parse(item["prefix"].get<std::string>())
                                             : std::nullopt;
    if (!prefix) fail("bad prefix");
    int max_length = prefix->length;
    if (item.contains("maxLength")) {
      if (!item["maxLength"].is_number_integer()) fail("bad maxLength");
      max_length = item["maxLength"].get<int>();
    }
    if (max_length < prefix->length || max_length > (prefix->addr.v6 ? 128 : 32))
      fail("bad maxLength");
    v.vrps_.insert(*prefix,
                   {static_cast<std::uint8_t>(max_length), static_cast<std::uint32_t>(asn)});
    ++index;
  }
  return v;
}

Vrps::State Vrps::validate(const Prefix& prefix, std::optional<std::uint32_t> origin) const {
  // RFC 6811 §2: covered by any VRP; valid if one matches the origin and the length.
  bool covered = false, valid = false;
  vrps_.for_each_covering(prefix, [&](int, const Vrp& v) {
    covered = true;
    if (origin && v.asn == *origin && v.asn != 0 && prefix.length <= v.max_length) valid = true;
  });
  return valid ? State::valid : covered ? State::invalid : State::not_found;
}

std::string Alert::kind_name() const {
  switch (kind) {
    case Kind::hijack:
      return "hijack";
    case Kind::sub_prefix_hijack:
      return "sub_prefix_hijack";
    case Kind::route_leak:
      return "route_leak";
    case Kind::unexpected_upstream:
      return "unexpected_upstream";
    case Kind::visibility_loss:
      return "visibility_loss";
    case Kind::rpki_invalid:
      return "rpki_invalid";
    case Kind::moas:
      return "moas";
    case Kind::private_origin:
      return "private_origin";
  }
  return "unknown";
}

std::string Alert::severity() const {
  if (score >= 0) return score >= 70 ? "page" : score >= 40 ? "ticket" : "log";
  switch (kind) {
    case Kind::unexpected_upstream:
    case Kind::rpki_invalid:
    case Kind::private_origin:
      return "ticket";
    default:
      return "page";
  }
}

std::string Alert::to_text() const {
  std::string s = format_rfc3339(from_unix_nanos(time_us * 1000)) +
                  (resolved ? " RESOLVED " : " OPEN ") + kind_name() + " " + prefix.to_string();
  if (!(prefix == monitored)) s += " (monitored " + monitored.to_string() + ")";
  if (!description.empty()) s += " [" + description + "]";
  s += ": ";
  std::string origin_text =
      origin ? "AS" + std::to_string(*origin) : "AS_SET {" + join(origin_set, ",") + "}";
  switch (kind) {
    case Kind::hijack:
    case Kind::sub_prefix_hijack:
      s += "origin " + origin_text + ", expected AS" + join(expected, ", AS");
      break;
    case Kind::moas:
      s += "origin " + origin_text + " while other peers see expected AS" + join(expected, ", AS") +
           " (multiple origins)";
      break;
    case Kind::private_origin:
      s += "private AS" + join(private_asns, ", AS") + " behind " + origin_text +
           ": a private AS not stripped at the edge";
      break;
    case Kind::route_leak:
      s += "AS" + std::to_string(leaker) + " leaked the route (segment " + join(segment, " ") + ")";
      break;
    case Kind::unexpected_upstream:
      s += "upstream AS" + std::to_string(upstream) + " of " + origin_text + ", expected AS" +
           join(expected, ", AS");
      break;
    case Kind::visibility_loss: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.0f%% of peers still see it", visibility * 100);
      s += buf;
      break;
    }
    case Kind::rpki_invalid:
      s += "RPKI invalid for origin " + origin_text;
      break;
  }
  s += "; " + std::to_string(peers) + (peers == 1 ? " peer" : " peers");
  if (!raw_path.empty()) s += "; path " + raw_path;
  if (score >= 0 && !resolved) {
    s += "; score " + std::to_string(score) + " (" + severity() + ")";
    auto has = [&](const char* tag) {
      return std::find(tags.begin(), tags.end(), tag) != tags.end();
    };
    if (has("origin_after_expected") && origin && example_path.size() >= 2) {
      // Behind the expected AS: on the prefix itself the pattern of a prepend typo ("24867 3"
      // for "24867 24867"); on a more-specific, more often the expected AS's customer.
      s += " — AS" + std::to_string(*origin) + " directly after AS" +
           std::to_string(example_path[example_path.size() - 2]) +
           (kind == Kind::sub_prefix_hijack
                ? ": likely its customer's more-specific, or a prepend typo"
                : ": likely a prepend typo");
    }
    if (has("aggregator_is_expected")) s += " — AGGREGATOR names an expected AS";
    if (has("rpki_valid_new_origin")) s += " — RPKI says this origin is authorised";
    if (has("rpki_invalid_new_origin")) s += " — RPKI invalid";
    if (has("new_origin_never_seen")) s += " — origin never seen for this prefix before";
    if (has("private_origin") && kind != Kind::private_origin) {
      s += " — private AS" + join(private_asns, ", AS") + " appended";
    }
  }
  return s;
}

std::string Alert::to_json() const { return json().dump(); }

nlohmann::json Alert::json() const {
  nlohmann::json j{{"kind", "bgp_alert"},
                   {"alert", kind_name()},
                   {"status", resolved ? "resolved" : "open"},
                   {"alert_key", key},
                   {"time", format_rfc3339(from_unix_nanos(time_us * 1000))},
                   {"prefix", prefix.to_string()},
                   {"monitored_prefix", monitored.to_string()},
                   {"description", description},
                   {"peers", peers}};
  if (origin) j["origin"] = *origin;
  if (!origin_set.empty()) j["origin_set"] = origin_set;
  if (!expected.empty()) j["expected"] = expected;
  if (kind == Kind::route_leak) {
    j["leaker"] = leaker;
    j["segment"] = segment;
  }
  if (kind == Kind::unexpected_upstream) j["upstream"] = upstream;
  if (kind == Kind::visibility_loss) j["visibility"] = visibility;
  if (!example_path.empty()) j["path"] = example_path;
  if (!raw_path.empty()) j["raw_path"] = raw_path;
  if (!private_asns.empty()) j["private_asns"] = private_asns;
  j["severity"] = severity();
  if (score >= 0) {
    j["score"] = score;
    j["tags"] = tags;
  }
  return j;
}

Monitor::Monitor(Expectations expectations, const AsRelationships* relationships, const Vrps* vrps)
    : exp_(std::move(expectations)), rels_(relationships), vrps_(vrps) {
  for (const auto& m : exp_.prefixes) trie_.insert(m.prefix, &m);
}

const MonitoredPrefix* Monitor::monitored(const Prefix& p) const {
  const auto* match = trie_.longest_match(p);
  return match ? match->front() : nullptr;  // a prefix listed twice: the first entry
}

std::uint64_t Monitor::ignored() const noexcept {
  std::uint64_t n = 0;
  for (const auto& [reason, count] : ignored_) n += count;
  return n;
}

std::vector<Monitor::Issue> Monitor::issues_of(const RouteEvent& e, const MonitoredPrefix& m) {
  std::vector<Issue> out;
  std::vector<std::uint32_t> path = flatten_path(e.path);
  Alert base;
  base.time_us = e.time_us;
  base.monitored = m.prefix;
  base.description = m.description;
  base.prefix = e.prefix;
  base.origin = e.origin;
  base.origin_set = e.origin_set;
  base.example_path = path;
  base.raw_path = path_text(e.path);
  const bool exact = e.prefix == m.prefix;
  auto allowed = [&](std::uint32_t asn) {
    return std::find(m.origins.begin(), m.origins.end(), asn) != m.origins.end();
  };
  std::optional<std::uint32_t> origin = e.origin;
  // A path ending in private or reserved ASNs behind anything but an expected origin: strip
  // them (remove-private-AS) and judge the public AS before them.
  if (origin && !allowed(*origin) && is_private_or_reserved_asn(*origin)) {
    while (!path.empty() && is_private_or_reserved_asn(path.back()) && !allowed(path.back())) {
      base.private_asns.insert(base.private_asns.begin(), path.back());
      path.pop_back();
    }
    if (path.empty()) {
      ++ignored_["private_path"];
      return out;
    }
    origin = path.back();
    base.origin = origin;
  }
  const bool origin_ok =
      origin ? allowed(*origin) : std::any_of(e.origin_set.begin(), e.origin_set.end(), allowed);
  const std::string origin_key =
      origin ? std::to_string(*origin) : "{" + join(e.origin_set, ",") + "}";
  // Confidence tags of hijack-like alerts: what the route itself says (the peers come at open).
  auto tag = [&](Alert& a) {
    if (!base.private_asns.empty()) a.tags.push_back("private_origin");
    if (vrps_ && origin) {
      const auto rov = vrps_->validate(e.prefix, origin);
      if (rov == Vrps::State::invalid) a.tags.push_back("rpki_invalid_new_origin");
      if (rov == Vrps::State::valid) a.tags.push_back("rpki_valid_new_origin");
    }
    if (origin && path.size() >= 2 && allowed(path[path.size() - 2]))
      a.tags.push_back("origin_after_expected");
    if (e.aggregator && allowed(*e.aggregator)) a.tags.push_back("aggregator_is_expected");
    const auto& seen = ever_seen_[&m];
    const bool never = origin ? !seen.count(*origin)
                              : std::none_of(e.origin_set.begin(), e.origin_set.end(),
                                             [&](std::uint32_t x) { return seen.count(x) > 0; });
    if (never) a.tags.push_back("new_origin_never_seen");
  };
  if (origin_ok && !base.private_asns.empty() && (exact || !m.ignore_more_specifics)) {
    Alert a = base;
    a.kind = Alert::Kind::private_origin;
    a.expected = m.origins;
    tag(a);
    out.push_back({a.kind,
                   e.prefix.to_string() + " " + join(a.private_asns, ",") + " behind " + origin_key,
                   a});
  }
  if (!origin_ok && (exact || !m.ignore_more_specifics)) {
    Alert a = base;
    // The exact prefix from a foreign origin while peers see it from an expected one: a
    // multiple-origin conflict (MOAS) rather than a takeover.
    bool expected_seen = false;
    if (exact) {
      for (const auto& [asn, routes] : origins_[&m])
        expected_seen = expected_seen || (routes > 0 && allowed(asn));
    }
    a.kind = !exact          ? Alert::Kind::sub_prefix_hijack
             : expected_seen ? Alert::Kind::moas
                             : Alert::Kind::hijack;
    a.expected = m.origins;
    tag(a);
    out.push_back({a.kind, e.prefix.to_string() + " " + origin_key, a});
  }
  if (origin_ok && !m.upstreams.empty() && path.size() >= 2) {
    const std::uint32_t up = path[path.size() - 2];
    if (std::find(m.upstreams.begin(), m.upstreams.end(), up) == m.upstreams.end()) {
      Alert a = base;
      a.kind = Alert::Kind::unexpected_upstream;
      a.upstream = up;
      a.expected = m.upstreams;
      out.push_back({a.kind, e.prefix.to_string() + " " + std::to_string(up), a});
    }
  }
  if (rels_ && path.size() >= 3) {
    // Walk from the origin towards the peer: uphill (customer to provider) links, at most one
    // peer link, then downhill. Anything else is a valley: the sender leaked.
    bool downhill = false;
    for (std::size_t i = path.size() - 1; i >= 1; --i) {
      const std::uint32_t from = path[i], to = path[i - 1];
      const auto rel = rels_->relation(from, to);
      if (rel == AsRelationships::Rel::unknown) continue;
      const bool up = rel == AsRelationships::Rel::customer_to_provider;
      const bool peer = rel == AsRelationships::Rel::peer;
      if (downhill && (up || peer) && i + 1 < path.size()) {
        Alert a = base;
        a.kind = Alert::Kind::route_leak;
        a.leaker = from;
        a.segment = {path[i + 1], from, to};
        out.push_back({a.kind, e.prefix.to_string() + " " + std::to_string(from), a});
        break;
      }
      if (peer || rel == AsRelationships::Rel::provider_to_customer) downhill = true;
    }
  }
  if (vrps_ && vrps_->validate(e.prefix, origin) == Vrps::State::invalid) {
    Alert a = base;
    a.kind = Alert::Kind::rpki_invalid;
    out.push_back({a.kind, e.prefix.to_string() + " " + origin_key, a});
  }
  return out;
}

void Monitor::score(Alert& a, int peers) const {
  int base = 0;
  switch (a.kind) {
    case Alert::Kind::hijack:
      base = 50;
      break;
    case Alert::Kind::sub_prefix_hijack:
      base = 60;
      break;  // more-specifics win the traffic
    case Alert::Kind::moas:
      base = 45;
      break;
    case Alert::Kind::private_origin:
      base = 40;
      break;
    default:
      return;
  }
  static const std::map<std::string, int> kWeights = {
      {"rpki_invalid_new_origin", 20}, {"rpki_valid_new_origin", -40},
      {"origin_after_expected", -35},  {"aggregator_is_expected", -20},
      {"new_origin_never_seen", 10},   {"private_origin", 0}};
  int total = base;
  for (const auto& t : a.tags) {
    if (auto it = kWeights.find(t); it != kWeights.end()) total += it->second;
  }
  a.tags.push_back("seen_by_n_peers");
  total += std::min(20, 4 * std::max(0, peers - 1));
  a.score = std::clamp(total, 0, 100);
}

void Monitor::add(const std::string& peer, const Issue& issue, std::int64_t time_us,
                  std::vector<Alert>& alerts) {
  State& s = states_[{std::to_string(static_cast<int>(issue.kind)) + issue.key,
                      issue.alert.monitored.to_string()}];
  if (s.peers.empty() && !s.open) {
    s.alert = issue.alert;
    s.alert.key = s.alert.kind_name() + " " + s.alert.monitored.to_string() + " " + issue.key;
  }
  ++s.peers[peer];
  s.resolve_at_us = 0;  // back within the hold: the same alert goes on
  if (!s.open && static_cast<int>(s.peers.size()) >= exp_.min_peers) {
    s.open = true;
    Alert a = s.alert;
    a.time_us = time_us;
    a.peers = static_cast<int>(s.peers.size());
    score(a, a.peers);
    s.alert.tags = a.tags;
    s.alert.score = a.score;
    alerts.push_back(a);
  }
}

void Monitor::remove(const std::string& peer, const Issue& issue, std::int64_t time_us,
                     std::vector<Alert>& alerts) {
  const StateKey key{std::to_string(static_cast<int>(issue.kind)) + issue.key,
                     issue.alert.monitored.to_string()};
  auto it = states_.find(key);
  if (it == states_.end()) return;
  State& s = it->second;
  auto p = s.peers.find(peer);
  if (p == s.peers.end()) return;
  if (--p->second > 0)
    return;  // another route of this peer still carries it (ADD-PATH, a replacement)
  s.alert.peers = static_cast<int>(s.peers.size());
  s.peers.erase(p);
  if (!s.peers.empty()) return;
  if (!s.open) {
    states_.erase(it);
    return;
  }
  s.dropped_us = time_us;
  if (exp_.resolve_hold_us <= 0) return resolve(it, alerts);
  s.resolve_at_us = time_us + exp_.resolve_hold_us;
  pending_[s.resolve_at_us].push_back(key);
}

void Monitor::resolve(std::map<StateKey, State>::iterator it, std::vector<Alert>& alerts) {
  Alert a = it->second.alert;
  a.resolved = true;
  a.time_us = it->second.dropped_us;  // when the last peer dropped it, not when the hold ended
  alerts.push_back(a);
  states_.erase(it);
}

void Monitor::tick(std::int64_t now_us, std::vector<Alert>& alerts) {
  while (!pending_.empty() && pending_.begin()->first <= now_us) {
    const auto due = pending_.begin()->first;
    for (const auto& key : pending_.begin()->second) {
      auto it = states_.find(key);
      // Stale entries: the route came back (resolve_at reset) or a later drop re-scheduled it.
      if (it != states_.end() && it->second.peers.empty() && it->second.resolve_at_us == due)
        resolve(it, alerts);
    }
    pending_.erase(pending_.begin());
  }
}

void Monitor::flush(std::vector<Alert>& alerts) {
  tick(std::numeric_limits<std::int64_t>::max(), alerts);
}

void Monitor::forget(Route&& route, std::int64_t time_us, std::vector<Alert>& alerts) {
  for (const auto& issue : route.issues) remove(route.peer, issue, time_us, alerts);
  if (route.exact) {
    auto& seen = seen_by_[route.monitored];
    if (--seen[route.peer] <= 0) seen.erase(route.peer);
    if (route.origin) {
      auto& origins = origins_[route.monitored];
      if (--origins[*route.origin] <= 0) origins.erase(*route.origin);
    }
  }
}

void Monitor::withdraw_route(const std::string& route_key, std::int64_t time_us,
                             std::vector<Alert>& alerts) {
  auto it = routes_.find(route_key);
  if (it == routes_.end()) return;
  Route route = std::move(it->second);
  routes_.erase(it);
  const MonitoredPrefix* m = route.monitored;
  const bool exact = route.exact;
  forget(std::move(route), time_us, alerts);
  if (exact) visibility(*m, time_us, alerts);
}

void Monitor::withdraw_stale(const std::string& peer, std::optional<bool> v6, std::int64_t time_us,
                             std::vector<Alert>& alerts) {
  std::vector<std::string> keys;
  bool left = false;
  for (const auto& [k, r] : routes_) {
    if (r.peer != peer || !r.stale) continue;
    if (v6 && r.v6 != *v6) {
      left = true;
    } else {
      keys.push_back(k);
    }
  }
  for (const auto& k : keys) withdraw_route(k, time_us, alerts);
  if (!left) refreshing_.erase(peer);
}

void Monitor::sweep_stale(std::int64_t now_us, std::int64_t max_age_us,
                          std::vector<Alert>& alerts) {
  std::vector<std::string> due;
  for (const auto& [peer, since] : refreshing_) {
    if (now_us - since > max_age_us) due.push_back(peer);
  }
  for (const auto& peer : due) withdraw_stale(peer, std::nullopt, now_us, alerts);
}

void Monitor::visibility(const MonitoredPrefix& m, std::int64_t time_us,
                         std::vector<Alert>& alerts) {
  const std::size_t now = seen_by_[&m].size();
  std::size_t& max = max_seen_[&m];
  max = std::max(max, now);
  if (max < static_cast<std::size_t>(exp_.min_peers)) return;
  const double share = max ? static_cast<double>(now) / static_cast<double>(max) : 1.0;
  const bool lost = 1.0 - share >= exp_.visibility_threshold;
  bool& open = visibility_open_[&m];
  if (lost != open) {
    open = lost;
    Alert a;
    a.kind = Alert::Kind::visibility_loss;
    a.resolved = !lost;
    a.time_us = time_us;
    a.monitored = a.prefix = m.prefix;
    a.key = a.kind_name() + " " + m.prefix.to_string();
    a.description = m.description;
    a.visibility = share;
    a.peers = static_cast<int>(max - now);
    alerts.push_back(a);
  }
}

void Monitor::observe(const RouteEvent& e, std::vector<Alert>& alerts) {
  if (!pending_.empty()) tick(e.time_us, alerts);
  // A peer is one BGP session as one collector (router, MRT source) saw it: the same neighbour
  // seen by two routers counts twice, as it does for visibility.
  // '\0' separates the collector: no name or address contains it.
  const std::string peer =
      e.collector + '\0' + e.peer_ip.to_string() + " AS" + std::to_string(e.peer_asn);
  if (e.kind == RouteEvent::Kind::peer_up) {
    bool any = false;
    for (auto& [k, r] : routes_) {
      if (r.peer == peer) any = r.stale = true;
    }
    if (any) refreshing_[peer] = e.time_us;
    return;
  }
  if (e.kind == RouteEvent::Kind::end_of_rib) {
    withdraw_stale(peer, e.prefix.addr.v6, e.time_us, alerts);
    return;
  }
  if (e.kind == RouteEvent::Kind::peer_down) {
    refreshing_.erase(peer);
    // Some speakers (BIRD) write the final state change without the peer's address: then
    // every session of that peer AS goes down.
    const bool any_address = std::all_of(e.peer_ip.bytes.begin(), e.peer_ip.bytes.end(),
                                         [](std::uint8_t b) { return b == 0; });
    const std::string as_suffix = " AS" + std::to_string(e.peer_asn);
    std::vector<std::string> keys;
    for (const auto& [k, r] : routes_) {
      const bool same =
          any_address ? r.peer.size() >= as_suffix.size() &&
                            r.peer.compare(0, e.collector.size() + 1, e.collector + '\0') == 0 &&
                            r.peer.compare(r.peer.size() - as_suffix.size(), as_suffix.size(),
                                           as_suffix) == 0
                      : r.peer == peer;
      if (same) keys.push_back(k);
    }
    for (const auto& k : keys) withdraw_route(k, e.time_us, alerts);
    return;
  }
  const MonitoredPrefix* m = monitored(e.prefix);
  if (!m || m->ignore) return;
  if (is_bogon(e.prefix) && !is_bogon(m->prefix)) {
    ++ignored_["bogon_prefix"];
    return;
  }
  const std::string key =
      peer + "|" + e.prefix.to_string() + "|" + (e.path_id ? std::to_string(*e.path_id) : "");
  if (e.kind == RouteEvent::Kind::withdraw) {
    withdraw_route(key, e.time_us, alerts);
    return;
  }
  // An announcement replaces the peer's previous route (an implicit withdrawal). The new route
  // is counted before the old one is forgotten, so that what both carry (the prefix's
  // visibility, an issue on both paths) neither resolves nor re-opens in between.
  std::optional<Route> previous;
  if (auto it = routes_.find(key); it != routes_.end()) {
    previous = std::move(it->second);
    routes_.erase(it);
  }
  Route route{peer,  m,           e.prefix == m->prefix, issues_of(e, *m), e.prefix.addr.v6,
              false, std::nullopt};
  for (const auto& issue : route.issues) add(peer, issue, e.time_us, alerts);
  if (e.origin) ever_seen_[m].insert(*e.origin);
  for (auto asn : e.origin_set) ever_seen_[m].insert(asn);
  if (route.exact) {
    ++seen_by_[m][peer];
    // The judged origin: the last public AS when private ones trail (as issues_of judged it).
    std::optional<std::uint32_t> judged = e.origin;
    if (judged && is_private_or_reserved_asn(*judged) &&
        std::find(m->origins.begin(), m->origins.end(), *judged) == m->origins.end()) {
      judged.reset();
      const auto flat = flatten_path(e.path);
      for (auto it = flat.rbegin(); it != flat.rend(); ++it) {
        if (!is_private_or_reserved_asn(*it)) {
          judged = *it;
          break;
        }
      }
    }
    if (judged) {
      route.origin = judged;
      ++origins_[m][*judged];
    }
  }
  const bool exact = route.exact;
  routes_.emplace(key, std::move(route));
  if (previous) forget(std::move(*previous), e.time_us, alerts);
  if (exact) visibility(*m, e.time_us, alerts);
}

}  // namespace vantage::bgp
