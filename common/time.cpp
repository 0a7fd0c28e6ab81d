#include "common/time.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace vantage {

std::string format_rfc3339(UtcTime t) {
  using namespace std::chrono;
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%09lldZ", int(ymd.year()),
                unsigned(ymd.month()), unsigned(ymd.day()), int(hms.hours().count()),
                int(hms.minutes().count()), int(hms.seconds().count()),
                static_cast<long long>(hms.subseconds().count()));
  return buf;
}

namespace {

bool read_digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

}  // namespace

std::optional<UtcTime> parse_rfc3339(std::string_view s) {
  using namespace std::chrono;
  int y, mo, d, h, mi, sec;
  if (!read_digits(s, 0, 4, y) || s.size() < 20 || s[4] != '-' || !read_digits(s, 5, 2, mo) ||
      s[7] != '-' || !read_digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !read_digits(s, 11, 2, h) || s[13] != ':' || !read_digits(s, 14, 2, mi) || s[16] != ':' ||
      !read_digits(s, 17, 2, sec)) {
    return std::nullopt;
  }
  const year_month_day ymd{year{y}, month{unsigned(mo)}, day{unsigned(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  // UtcTime counts nanoseconds in 64 bits: 1677-09-21 to 2262-04-11. Whole years inside that
  // range only, so nothing overflows (found by the check_result fuzzer: year 7535).
  if (y < 1678 || y > 2261) return std::nullopt;
  std::size_t pos = 19;
  std::int64_t frac_ns = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 9) frac_ns = frac_ns * 10 + (s[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return std::nullopt;
    for (std::size_t i = digits; i < 9; ++i) frac_ns *= 10;
  }
  if (pos >= s.size()) return std::nullopt;
  minutes offset{0};
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh, om;
    if (!read_digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !read_digits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = hours{oh} + minutes{om};
    if (s[pos] == '-') offset = -offset;
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  UtcTime t = sys_days{ymd} + hours{h} + minutes{mi} + seconds{sec} + nanoseconds{frac_ns};
  return t - offset;
}

std::int64_t to_unix_nanos(UtcTime t) noexcept { return t.time_since_epoch().count(); }
UtcTime from_unix_nanos(std::int64_t ns) noexcept { return UtcTime{std::chrono::nanoseconds{ns}}; }

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  long double total_ns = 0;
  std::size_t pos = 0;
  while (pos < s.size()) {
    std::size_t start = pos;
    while (pos < s.size() && ((s[pos] >= '0' && s[pos] <= '9') || s[pos] == '.')) ++pos;
    if (pos == start) return std::nullopt;
    double value = 0;
    auto [ptr, ec] = std::from_chars(s.data() + start, s.data() + pos, value);
    if (ec != std::errc{} || ptr != s.data() + pos) return std::nullopt;
    std::size_t ustart = pos;
    while (pos < s.size() && s[pos] >= 'a' && s[pos] <= 'z') ++pos;
    const std::string_view unit = s.substr(ustart, pos - ustart);
    long double scale;
    if (unit == "ns")
      scale = 1;
    else if (unit == "us")
      scale = 1e3;
    else if (unit == "ms")
      scale = 1e6;
    else if (unit == "s")
      scale = 1e9;
    else if (unit == "m")
      scale = 60e9;
    else if (unit == "h")
      scale = 3600e9;
    else if (unit == "d")
      scale = 86400e9;
    else
      return std::nullopt;
    total_ns += value * scale;
  }
  if (total_ns > 9.2e18L) return std::nullopt;
  return std::chrono::nanoseconds{static_cast<std::int64_t>(std::llround(total_ns))};
}

std::string format_duration(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  if (d.count() == 0) return "0s";
  std::string out;
  if (d < nanoseconds{0}) {
    out = "-";
    d = -d;
  }
  if (d < microseconds{1}) return out + std::to_string(d.count()) + "ns";
  if (d < milliseconds{1}) {
    if (d.count() % 1000 == 0) return out + std::to_string(d.count() / 1000) + "us";
    return out + std::to_string(d.count()) + "ns";
  }
  if (d < seconds{1}) {
    if (d.count() % 1000000 == 0) return out + std::to_string(d.count() / 1000000) + "ms";
    return out + std::to_string(d.count()) + "ns";
  }
  const auto h = duration_cast<hours>(d);
  d -= h;
  const auto m = duration_cast<minutes>(d);
  d -= m;
  if (h.count()) out += std::to_string(h.count()) + "h";
  if (m.count()) out += std::to_string(m.count()) + "m";
  if (d.count()) {
    const auto s = duration_cast<seconds>(d);
    const auto rest = (d - s).count();  // ns
    if (rest == 0) {
      out += std::to_string(s.count()) + "s";
    } else {
      std::string frac = std::to_string(rest + 1000000000LL).substr(1);  // 9 digits
      while (!frac.empty() && frac.back() == '0') frac.pop_back();
      out += std::to_string(s.count()) + "." + frac + "s";
    }
  }
  return out;
}

UtcTime SystemClock::utc_now() const {
  return std::chrono::time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now());
}
SteadyTime SystemClock::steady_now() const { return std::chrono::steady_clock::now(); }
const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

}  // namespace vantage
