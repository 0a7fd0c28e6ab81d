#include <catch2/catch.hpp>
#include <regex>
#include <set>

#include "common/ids.hpp"

using namespace vantage;

TEST_CASE("UUIDv7 ids carry the version, variant and millisecond time", "[common][ids]") {
  IdGenerator ids(42);
  const UtcTime t = from_unix_nanos(1'700'000'000'123'000'000LL);
  const std::string id = ids.uuid_v7(t);
  CHECK(std::regex_match(id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
  // 1700000000123 ms = 0x018bcfe5687b
  CHECK(id.substr(0, 13) == "018bcfe5-687b");
}

TEST_CASE("ids are unique and trace ids have W3C shapes", "[common][ids]") {
  IdGenerator ids(7);
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) CHECK(seen.insert(ids.uuid_v7(UtcTime{})).second);
  const std::string trace = ids.trace_id();
  const std::string span = ids.span_id();
  CHECK(trace.size() == 32);
  CHECK(span.size() == 16);
  CHECK(make_traceparent(trace, span) == "00-" + trace + "-" + span + "-01");
}

TEST_CASE("the same seed gives the same ids", "[common][ids]") {
  IdGenerator a(99), b(99);
  CHECK(a.trace_id() == b.trace_id());
  CHECK(a.below(1000) == b.below(1000));
}
