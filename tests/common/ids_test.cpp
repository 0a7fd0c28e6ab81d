#include "common/ids.hpp"

#include <catch2/catch.hpp>
#include <set>

using namespace vantage;

TEST_CASE("UUIDv7 ids carry the version, variant and millisecond time", "[common][ids]") {
  IdGenerator ids(42);
  const UtcTime t = from_unix_nanos(1'700'000'000'123'000'000LL);
  const std::string id = ids.uuid_v7(t);
  // 8-4-4-4-12 lower-case hex, version nibble 7, variant bits 10.
  REQUIRE(id.size() == 36);
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      CHECK(id[i] == '-');
    } else {
      CHECK(std::string("0123456789abcdef").find(id[i]) != std::string::npos);
    }
  }
  CHECK(id[14] == '7');
  CHECK(std::string("89ab").find(id[19]) != std::string::npos);
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
