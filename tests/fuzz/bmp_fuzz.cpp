// libFuzzer target: what a router (or anyone who reaches the probe's BMP port) sends to a bgp
// check. The bytes are a BMP v3 stream (RFC 7854) fed in uneven TCP-like chunks; the decoded
// route events go through the monitor, which must keep its alert lifecycle consistent (nothing
// resolves that was not open, nothing opens twice) and whose records must serialise.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "probe/bgp/bmp.hpp"
#include "probe/bgp/monitor.hpp"
#include "probe/bgp/route_event.hpp"

using namespace vantage::bgp;

namespace {

Expectations everything() {
  Expectations x;
  for (const char* p : {"0.0.0.0/1", "128.0.0.0/1", "208.65.152.0/22", "::/0", "2001:db8::/32"}) {
    MonitoredPrefix m;
    m.prefix = *Prefix::parse(p);
    m.origins = {36561, 13335};
    m.upstreams = {3356};
    m.ignore_more_specifics = p[0] == '2';
    x.prefixes.push_back(m);
  }
  return x;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Expectations expectations = everything();
  static const AsRelationships rels = [] {
    AsRelationships r;
    r.add(3356, 13335, -1);
    r.add(3356, 33154, -1);
    r.add(33154, 396531, -1);
    r.add(701, 396531, -1);
    r.add(3356, 701, 0);
    return r;
  }();
  Monitor monitor(expectations, &rels, nullptr);
  BmpDecoder bmp("fuzz-router");
  std::vector<RouteEvent> events;
  std::vector<Alert> alerts;
  std::set<std::string> open;
  std::size_t pos = 0, step = 1 + (size % 7);
  while (pos < size) {
    const std::size_t n = std::min(step, size - pos);
    events.clear();
    bmp.feed(data + pos, n, events);
    pos += n;
    step = step * 2 + 1;
    for (const auto& e : events) {
      (void)to_json(e).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      alerts.clear();
      monitor.observe(e, alerts);
      for (const auto& a : alerts) {
        if (a.key.empty()) __builtin_trap();
        if (a.resolved) {
          if (open.erase(a.key) != 1) __builtin_trap();  // resolved without being open
        } else if (!open.insert(a.key).second) {
          __builtin_trap();  // opened twice
        }
        (void)a.json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      }
    }
  }
  return 0;
}
