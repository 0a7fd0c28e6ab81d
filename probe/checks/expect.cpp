#include "probe/checks/expect.hpp"

#include <re2/re2.h>

#include <cmath>

#include "common/config_node.hpp"

namespace vantage::probe::checks {

using nlohmann::json;

std::string clip(std::string_view text, std::size_t max) {
  if (text.size() <= max) return std::string(text);
  return std::string(text.substr(0, max)) + "…";
}

void record_assertion(std::vector<AssertionResult>& assertions, Outcome& outcome, std::string name,
                      bool passed, std::string expected, std::string actual) {
  assertions.push_back({std::move(name), passed, std::move(expected), std::move(actual)});
  if (passed || !outcome.ok()) return;
  const auto& a = assertions.back();
  outcome.type = FailureType::assertion_failed;
  outcome.failed_at = Phase::assertion;
  outcome.assertion = a.name;
  outcome.detail = a.name + ": expected " + a.expected + ", got " + a.actual;
}

void record_assertion(CheckResult& r, std::string name, bool passed, std::string expected,
                      std::string actual) {
  record_assertion(r.assertions, r.outcome, std::move(name), passed, std::move(expected),
                   std::move(actual));
}

void record_cert_expiry(CheckResult& r, const TlsFacts& facts, UtcTime now,
                        std::chrono::nanoseconds threshold) {
  const bool ok = facts.earliest_expiry && *facts.earliest_expiry - now >= threshold;
  record_assertion(
      r, "cert_expires_after", ok, "later than " + format_duration(threshold) + " from now",
      facts.earliest_expiry ? format_rfc3339(*facts.earliest_expiry) : "no certificate");
}

// --- Pattern --------------------------------------------------------------------------------

std::optional<Pattern> Pattern::compile(const std::string& source, std::string& error) {
  RE2::Options opts;
  opts.set_log_errors(false);
  opts.set_max_mem(8 << 20);
  auto re = std::make_shared<const re2::RE2>(source, opts);
  if (!re->ok()) {
    error = "invalid regular expression: " + re->error();
    return std::nullopt;
  }
  Pattern p;
  p.re_ = std::move(re);
  p.source_ = source;
  return p;
}

Pattern Pattern::parse(const ConfigNode& node) {
  std::string error;
  auto p = compile(node.as_string(), error);
  if (!p) node.fail(error);
  return *p;
}

bool Pattern::search(std::string_view text) const {
  return re2::RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), *re_);
}

std::optional<std::string> Pattern::capture(std::string_view text) const {
  re2::StringPiece input(text.data(), text.size());
  const int groups = re_->NumberOfCapturingGroups();
  std::vector<re2::StringPiece> sub(static_cast<std::size_t>(groups + 1));
  if (!re_->Match(input, 0, input.size(), re2::RE2::UNANCHORED, sub.data(), groups + 1)) {
    return std::nullopt;
  }
  const auto& s = groups >= 1 ? sub[1] : sub[0];
  return std::string(s.data(), s.size());
}

// --- StatusSet ------------------------------------------------------------------------------

StatusSet StatusSet::default_set() {
  StatusSet s;
  s.ranges_ = {{200, 299}};
  s.text_ = "2xx";
  return s;
}

StatusSet StatusSet::parse(const ConfigNode& node) {
  std::vector<ConfigNode> items;
  if (node.is_sequence())
    items = node.items();
  else
    items.push_back(node);
  if (items.empty()) node.fail("expected at least one status code");
  StatusSet s;
  for (const ConfigNode& item : items) {
    const std::string t = item.as_string();
    if (t.size() == 3 && t[0] >= '1' && t[0] <= '5' && (t[1] == 'x' || t[1] == 'X') &&
        (t[2] == 'x' || t[2] == 'X')) {
      const int base = (t[0] - '0') * 100;
      s.ranges_.emplace_back(base, base + 99);
    } else {
      bool digits = t.size() == 3 && t.find_first_not_of("0123456789") == std::string::npos;
      const int v = digits ? std::stoi(t) : 0;
      if (!digits || v < 100 || v > 599) {
        item.fail("expected an HTTP status code (100-599) or a class like 2xx, got \"" + t + "\"");
      }
      s.ranges_.emplace_back(v, v);
    }
    if (!s.text_.empty()) s.text_ += ", ";
    s.text_ += t;
  }
  return s;
}

bool StatusSet::contains(long status) const {
  for (const auto& [lo, hi] : ranges_) {
    if (status >= lo && status <= hi) return true;
  }
  return false;
}

// --- ValueMatcher ---------------------------------------------------------------------------

namespace {

json scalar_json(const ConfigNode& node) {
  // A quoted scalar is a string; a plain one keeps YAML's typing (numbers, booleans, null) so it
  // compares with JSON values of those types.
  const std::string t = node.as_string();
  if (node.is_quoted()) return t;
  if (t == "true") return true;
  if (t == "false") return false;
  if (t == "null") return nullptr;
  json parsed = json::parse(t, nullptr, false);
  if (!parsed.is_discarded() && parsed.is_number()) return parsed;
  return t;
}

std::string text_of(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool json_equal(const json& expected, const json& actual) {
  if (expected.is_number() && actual.is_number()) {
    return std::fabs(expected.get<double>() - actual.get<double>()) <=
           1e-9 * std::max(1.0, std::fabs(expected.get<double>()));
  }
  if (expected.type() != actual.type()) {
    // Different JSON types compare by their text: "200" matches 200, 200 matches "200".
    return text_of(expected) == text_of(actual);
  }
  return expected == actual;
}

}  // namespace

ValueMatcher ValueMatcher::parse(const ConfigNode& node) {
  ValueMatcher m;
  if (node.is_map()) {
    node.expect_keys({"equals", "matches", "exists"});
    const int given = node.has("equals") + node.has("matches") + node.has("exists");
    if (given != 1) node.fail("give exactly one of equals, matches, exists");
    if (auto v = node.get("equals")) {
      m.kind_ = Kind::equals;
      m.expected_ = scalar_json(*v);
    } else if (auto p = node.get("matches")) {
      m.kind_ = Kind::matches;
      m.pattern_ = Pattern::parse(*p);
    } else {
      m.kind_ = node.require("exists").as_bool() ? Kind::exists : Kind::absent;
    }
    return m;
  }
  if (node.is_sequence()) node.fail("expected a value or {equals|matches|exists: …}, got a list");
  m.kind_ = Kind::equals;
  m.expected_ = node.is_null() ? json(nullptr) : scalar_json(node);
  return m;
}

bool ValueMatcher::check(const json* value, std::string& actual) const {
  actual = value ? clip(text_of(*value)) : "(absent)";
  switch (kind_) {
    case Kind::exists:
      return value != nullptr;
    case Kind::absent:
      return value == nullptr;
    case Kind::equals:
      return value && json_equal(expected_, *value);
    case Kind::matches:
      return value && pattern_->search(text_of(*value));
  }
  return false;
}

bool ValueMatcher::check_text(const std::string* value, std::string& actual) const {
  if (!value) return check(nullptr, actual);
  actual = clip(*value);
  switch (kind_) {
    case Kind::exists:
      return true;
    case Kind::absent:
      return false;
    case Kind::equals:
      return text_of(expected_) == *value;
    case Kind::matches:
      return pattern_->search(*value);
  }
  return false;
}

std::string ValueMatcher::expected_text() const {
  switch (kind_) {
    case Kind::exists:
      return "exists";
    case Kind::absent:
      return "absent";
    case Kind::equals:
      return text_of(expected_);
    case Kind::matches:
      return "matches " + pattern_->source();
  }
  return {};
}

// --- JSON locations -------------------------------------------------------------------------

std::optional<json::json_pointer> parse_json_location(const std::string& text, std::string& error) {
  if (text.empty() || text.front() == '/') {
    try {
      return json::json_pointer(text);
    } catch (const json::exception& e) {
      error = "invalid JSON pointer \"" + text + "\" (RFC 6901)";
      return std::nullopt;
    }
  }
  if (text.front() != '$') {
    error =
        "expected a JSON pointer (\"/items/0/sku\") or a JSONPath (\"$.items[0].sku\"), got \"" +
        text + "\"";
    return std::nullopt;
  }
  // JSONPath subset: $ followed by .name, ['name'], ["name"] and [index] segments.
  json::json_pointer ptr;
  std::size_t i = 1;
  auto bad = [&](const std::string& why) {
    error = "unsupported JSONPath \"" + text + "\": " + why +
            " (supported: $.name, $['name'], $[0] segments)";
    return std::nullopt;
  };
  while (i < text.size()) {
    if (text[i] == '.') {
      ++i;
      const std::size_t start = i;
      while (i < text.size() && text[i] != '.' && text[i] != '[') ++i;
      const std::string name = text.substr(start, i - start);
      if (name.empty()) return bad("empty name");
      if (name == "*") return bad("wildcards are not supported");
      ptr /= name;
    } else if (text[i] == '[') {
      ++i;
      if (i < text.size() && (text[i] == '\'' || text[i] == '"')) {
        const char quote = text[i++];
        std::string name;
        while (i < text.size() && text[i] != quote) {
          if (text[i] == '\\' && i + 1 < text.size()) ++i;
          name += text[i++];
        }
        if (i + 1 >= text.size() || text[i + 1] != ']') return bad("unterminated ['name']");
        i += 2;
        ptr /= name;
      } else {
        const std::size_t start = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
        if (i == start || i >= text.size() || text[i] != ']') {
          return bad("expected an index or a quoted name in []");
        }
        ptr /= static_cast<std::size_t>(std::stoull(text.substr(start, i - start)));
        ++i;
      }
    } else {
      return bad(std::string("unexpected character '") + text[i] + "'");
    }
  }
  return ptr;
}

}  // namespace vantage::probe::checks
