// `--from` / `--to` times (analysis/app/time_arg.hpp): RFC 3339, "now", and durations before
// now, with errors that name the option.
#include "analysis/app/time_arg.hpp"

#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>

using vantage::analysis::parse_time_arg;

namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
// 2026-11-22T12:00:00Z
constexpr std::int64_t kNow = 1'795'348'800LL * kSecond;

std::string error_of(const std::string& text, const char* argument = "--from") {
  try {
    parse_time_arg(text, kNow, argument);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("RFC 3339 times are taken as they are, offsets converted to UTC",
          "[analysis][time_arg]") {
  CHECK(parse_time_arg("2026-11-22T01:00:00Z", kNow) == 1'795'309'200LL * kSecond);
  CHECK(parse_time_arg("2026-11-22T02:00:00+01:00", kNow) == 1'795'309'200LL * kSecond);
  CHECK(parse_time_arg("2026-11-22T01:00:00.5Z", kNow) == 1'795'309'200LL * kSecond + kSecond / 2);
  // Later than now is allowed (the caller clamps to the store).
  CHECK(parse_time_arg("2027-01-01T00:00:00Z", kNow) > kNow);
}

TEST_CASE("durations count back from now, with or without a minus", "[analysis][time_arg]") {
  CHECK(parse_time_arg("now", kNow) == kNow);
  CHECK(parse_time_arg("1h", kNow) == kNow - 3600 * kSecond);
  CHECK(parse_time_arg("-1h", kNow) == kNow - 3600 * kSecond);
  CHECK(parse_time_arg("now-1h", kNow) == kNow - 3600 * kSecond);
  CHECK(parse_time_arg("30m", kNow) == kNow - 1800 * kSecond);
  CHECK(parse_time_arg("90s", kNow) == kNow - 90 * kSecond);
  CHECK(parse_time_arg("2d", kNow) == kNow - 2 * 86400 * kSecond);
  CHECK(parse_time_arg("1h30m", kNow) == kNow - 5400 * kSecond);
  CHECK(parse_time_arg("1.5h", kNow) == kNow - 5400 * kSecond);
  CHECK(parse_time_arg("500ms", kNow) == kNow - kSecond / 2);
  CHECK(parse_time_arg("0s", kNow) == kNow);
  CHECK(parse_time_arg("  15m ", kNow) == kNow - 900 * kSecond);
}

TEST_CASE("bad times are refused with the option and the text named", "[analysis][time_arg]") {
  CHECK(error_of("yesterday") ==
        "--from: \"yesterday\" is neither an RFC 3339 time (2026-11-22T01:00:00Z) nor a duration "
        "before now (1h, -1h, now-1h, 30m, 90s, 2d, 1h30m; units ns, us, ms, s, m, h, d)");
  CHECK(error_of("2026-11-22", "--to") ==
        "--to: \"2026-11-22\" is not an RFC 3339 time (2026-11-22T01:00:00Z, "
        "2026-11-22T02:00:00+01:00)");
  CHECK(error_of("") ==
        "--from: \"\" is empty; give an RFC 3339 time (2026-11-22T01:00:00Z) or a duration before "
        "now (1h, 30m, 90s, 2d, now)");
  CHECK(error_of("30000d") == "--from: \"30000d\" reaches back before 1970-01-01T00:00:00Z");
  for (const char* bad : {"1", "h", "1x", "--1h", "+1h", "now-", "now+1h", "1h ago",
                          "2026-13-01T00:00:00Z", "2026-11-22T01:00:00", "-"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_time_arg(bad, kNow, "--from"), std::invalid_argument);
  }
}
