// libFuzzer target: the collector's upload parsers (beacon-collector/ingest/reports.cpp) and the
// forwarding-header parser (enrich/client_ip.cpp) must answer every input — Reporting API, legacy
// CSP and agent bodies, X-Forwarded-For / Forwarded values — with records or a reason, never
// crash, never store a body that is not JSON or a URL with a query or fragment. The first input byte picks the parser.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "beacon-collector/enrich/client_ip.hpp"
#include "beacon-collector/ingest/origins.hpp"
#include "beacon-collector/ingest/reports.hpp"

using namespace vantage::collector;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  static const ingest::OriginPolicy origins({"https://*.test:*", "https://shop.example.com"});
  ingest::ParseContext ctx;
  ctx.received_ns = 1'800'000'000'000'000'000;
  ctx.endpoint = "reports/fuzz";
  ctx.origin = "https://app.test:1";
  ctx.user_agent = "Mozilla/5.0 Chrome/156.0.0.0";
  ctx.origins = (data[0] & 0x10) ? &origins : nullptr;
  ingest::ParseOutcome out;
  switch (data[0] % 4) {
    case 0: out = ingest::parse_reporting_api(body, ctx); break;
    case 1: out = ingest::parse_csp_report(body, ctx); break;
    case 2: out = ingest::parse_beacon(body, ctx); break;
    default: {
      const enrich::IpAddress peer = *enrich::IpAddress::parse("10.0.0.1");
      const std::vector<enrich::Cidr> trusted{*enrich::Cidr::parse("10.0.0.0/8")};
      const auto half = body.size() / 2;
      const auto client = enrich::resolve_client(peer, body.substr(0, half), body.substr(half), trusted);
      if (client.truncated(24, 48).empty()) __builtin_trap();
      return 0;
    }
  }
  if (!out.ok()) {
    if (out.error_reason.empty() || !out.records.empty()) __builtin_trap();
    return 0;
  }
  simdjson::dom::parser parser;
  for (const auto& r : out.records) {
    // Every stored body is valid JSON, every stored URL has no query or fragment.
    simdjson::dom::element e;
    if (parser.parse(r.body).get(e) != simdjson::SUCCESS) __builtin_trap();
    if (r.url.find_first_of("?#") != std::string::npos) __builtin_trap();
    if (r.event_ns > r.received_ns) __builtin_trap();
  }
  return 0;
}
