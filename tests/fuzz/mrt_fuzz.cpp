// libFuzzer target: the MRT record decoders behind `vantage bgp dump` (TABLE_DUMP, TABLE_DUMP_V2,
// BGP4MP(_ET), the deprecated BGP type) and the BGP UPDATE/attribute decoder, on arbitrary
// bytes walked as an MRT stream. They must never read out of bounds, loop or crash; every line
// they print ends with a newline.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "probe/bgp/bgp_message.hpp"
#include "probe/bgp/bgpdump_format.hpp"
#include "probe/bgp/bmp.hpp"
#include "probe/bgp/route_event.hpp"

using namespace vantage::bgp;

namespace {
// Walks `data` as a stream of MRT records (12-byte common header, RFC 6396 §2).
template <typename Fn>
void for_each_record(const std::uint8_t* data, std::size_t size, Fn&& fn) {
  std::size_t pos = 0;
  while (size - pos >= 12) {
    const std::uint8_t* h = data + pos;
    const std::uint32_t length = (std::uint32_t{h[8]} << 24) | (std::uint32_t{h[9]} << 16) |
                                 (std::uint32_t{h[10]} << 8) | h[11];
    if (length > size - pos - 12) break;
    MrtRecord r;
    r.timestamp = (std::uint32_t{h[0]} << 24) | (std::uint32_t{h[1]} << 16) | (std::uint32_t{h[2]} << 8) | h[3];
    r.type = static_cast<std::uint16_t>((h[4] << 8) | h[5]);
    r.subtype = static_cast<std::uint16_t>((h[6] << 8) | h[7]);
    r.data = h + 12;
    r.size = length;
    r.offset = pos;
    if (r.type == kMrtBgp4mpEt && length >= 4) {
      r.data += 4;
      r.size -= 4;
    }
    fn(r);
    pos += 12 + length;
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The same bytes as a BMP stream, fed in uneven chunks (a TCP stream), and as RIS Live lines.
  {
    BmpDecoder bmp("fuzz");
    std::vector<RouteEvent> events;
    std::size_t pos = 0, step = 1;
    while (pos < size) {
      const std::size_t n = std::min(step, size - pos);
      bmp.feed(data + pos, n, events);
      pos += n;
      step = step * 3 + 1;
    }
    std::string warning;
    parse_ris_live_line(std::string(reinterpret_cast<const char*>(data), size), events, warning);
  }
  RouteEventDecoder decoder("fuzz");
  std::vector<RouteEvent> events;
  BgpdumpFormatter formatter;
  std::string out;
  for_each_record(data, size, [&](const MrtRecord& r) {
    decoder.decode(r, events);
    formatter.format(r, out);
  });
  if (!out.empty() && out.back() != '\n') __builtin_trap();
  // The same bytes as a bare UPDATE body, strict and bgpdump-compatible.
  for (bool compat : {false, true}) {
    Update u;
    std::string error;
    const bool ok = decode_update(data, size, (size & 1) != 0, (size & 2) != 0, u, error, compat);
    if (!ok && error.empty()) __builtin_trap();
    (void)effective_as_path(u.attributes);
    for (const auto& n : u.announced) {
      if (!compat && n.prefix.length > 32) __builtin_trap();
    }
  }
  return 0;
}
