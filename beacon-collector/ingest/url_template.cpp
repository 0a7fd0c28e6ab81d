#include "beacon-collector/ingest/url_template.hpp"

#include <cstddef>

namespace vantage::collector::ingest {
namespace {

constexpr std::string_view kId = ":id";

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !is_hex(s[i])) return false;
  }
  return true;
}

// 0 lower, 1 upper, 2 digit, -1 a separator ('-', '_'), -2 anything else.
int char_class(char c) {
  if (is_lower(c)) return 0;
  if (is_upper(c)) return 1;
  if (is_digit(c)) return 2;
  if (c == '-' || c == '_') return -1;
  return -2;
}

// Random tokens (session ids, base64url, base36) change character class at most positions:
// in uniform base64url about 48 % of neighbours differ, in base36 40 %; words, even camel-cased
// ones with a number ("iPhone15ProMax2024Edition": 25 %), rarely do. An upper-case letter
// followed by a lower-case one starts a word and is no change; neighbours across a separator
// are not compared, so "summer-sale-2024" counts no change at all.
bool is_random_token(std::string_view s) {
  if (s.size() < 16) return false;
  std::size_t alnum = 0, digits = 0, letters = 0, pairs = 0, changes = 0;
  int previous = -1;
  for (char c : s) {
    const int k = char_class(c);
    if (k == -2) return false;
    if (k == -1) {
      previous = -1;
      continue;
    }
    ++alnum;
    (k == 2 ? digits : letters) += 1;
    if (previous >= 0) {
      ++pairs;
      changes += previous != k && !(previous == 1 && k == 0);
    }
    previous = k;
  }
  if (digits == 0 || letters == 0) return false;
  return changes * 10 >= pairs * 3 || digits * 4 >= alnum;
}

}  // namespace

bool is_id_segment(std::string_view s) {
  if (s.empty()) return false;
  bool all_digits = true, all_hex = true, any_digit = false;
  for (char c : s) {
    all_digits = all_digits && is_digit(c);
    all_hex = all_hex && is_hex(c);
    any_digit = any_digit || is_digit(c);
  }
  if (all_digits) return true;
  if (all_hex && any_digit && s.size() >= 8) return true;
  return is_uuid(s) || is_random_token(s);
}

std::string template_path(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view segment = path.substr(start, end - start);
    out += is_id_segment(segment) ? kId : segment;
    if (end == path.size()) break;
    out += '/';
    start = end + 1;
  }
  return out;
}

std::string template_url(std::string_view url) {
  std::size_t path = 0;
  if (const auto scheme = url.find("://"); scheme != std::string_view::npos) {
    path = url.find('/', scheme + 3);
    if (path == std::string_view::npos) return std::string(url);  // no path: nothing to do
  }
  std::string out(url.substr(0, path));
  out += template_path(url.substr(path));
  return out;
}

}  // namespace vantage::collector::ingest
