// The times `--from` and `--to` take (vantage incidents, report isp, …): an RFC 3339 date-time
// or a duration before now.
#pragma once

#include <cstdint>
#include <string_view>

namespace vantage::analysis {

// Parses `text` into UTC nanoseconds since the Unix epoch:
//   - RFC 3339 (common/time.hpp parse_rfc3339): "2026-11-22T01:00:00Z", "…+01:00", fractions;
//   - "now": `now_ns`;
//   - a duration before `now_ns`, in parse_duration's units (ns, us, ms, s, m, h, d), with or
//     without a leading '-' and optionally after "now": "1h", "-1h", "now-1h", "30m", "90s",
//     "2d", "1h30m", "1.5h" all mean that long ago.
// Leading and trailing blanks are ignored. `argument` names the option in the error ("--from").
// Throws std::invalid_argument naming `argument` and `text` when the text is none of these, or
// the time would fall before the Unix epoch.
std::int64_t parse_time_arg(std::string_view text, std::int64_t now_ns,
                            std::string_view argument = "time");

}  // namespace vantage::analysis
