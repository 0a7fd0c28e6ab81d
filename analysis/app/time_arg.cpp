#include "analysis/app/time_arg.hpp"

#include <stdexcept>
#include <string>

#include "common/time.hpp"

namespace vantage::analysis {

std::int64_t parse_time_arg(std::string_view text, std::int64_t now_ns, std::string_view argument) {
  const std::string original(text);
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  auto fail = [&](const std::string& why) -> std::int64_t {
    throw std::invalid_argument(std::string(argument) + ": \"" + original + "\" " + why);
  };
  if (text.empty()) {
    return fail(
        "is empty; give an RFC 3339 time (2026-11-22T01:00:00Z) or a duration before now (1h, "
        "30m, 90s, 2d, now)");
  }
  // A date-time starts with four digits and a '-'; a duration never has a '-' after its start.
  if (text.size() > 4 && text[4] == '-') {
    if (auto t = parse_rfc3339(text)) return to_unix_nanos(*t);
    return fail("is not an RFC 3339 time (2026-11-22T01:00:00Z, 2026-11-22T02:00:00+01:00)");
  }
  if (text == "now") return now_ns;
  std::string_view duration = text;
  if (duration.substr(0, 3) == "now") duration.remove_prefix(3);
  if (!duration.empty() && duration.front() == '-') duration.remove_prefix(1);
  const auto d = parse_duration(duration);
  if (!d) {
    return fail(
        "is neither an RFC 3339 time (2026-11-22T01:00:00Z) nor a duration before now (1h, -1h, "
        "now-1h, 30m, 90s, 2d, 1h30m; units ns, us, ms, s, m, h, d)");
  }
  if (d->count() > now_ns) return fail("reaches back before 1970-01-01T00:00:00Z");
  return now_ns - d->count();
}

}  // namespace vantage::analysis
