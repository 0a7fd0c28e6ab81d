// Assertions shared by the check kinds that look at responses (http, journey steps, tcp, dns):
// status sets, regular expressions (RE2: linear time, safe on untrusted bodies), JSON values
// addressed by JSON Pointer (RFC 6901) or a JSONPath subset (RFC 9535 §2.5 name and index
// selectors: `$.items[0].sku`, `$['a b']`), and header values.
// Parsing happens at config load and throws ConfigError; evaluation never throws.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/observation.hpp"

namespace re2 {
class RE2;
}

namespace vantage {
class ConfigNode;
}

namespace vantage::probe::checks {

// A compiled regular expression (RE2 syntax, https://github.com/google/re2/wiki/Syntax).
class Pattern {
 public:
  // Throws ConfigError at `node` if the expression does not compile.
  static Pattern parse(const ConfigNode& node);
  static std::optional<Pattern> compile(const std::string& source, std::string& error);
  // True if the pattern matches anywhere in `text` (unanchored search).
  bool search(std::string_view text) const;
  // The first capture group's text of the first match (or the whole match without groups).
  std::optional<std::string> capture(std::string_view text) const;
  const std::string& source() const noexcept { return source_; }

 private:
  std::shared_ptr<const re2::RE2> re_;
  std::string source_;
};

// Valid HTTP status codes: numbers (200) and classes ("2xx"). Default: 2xx.
class StatusSet {
 public:
  static StatusSet parse(const ConfigNode& node);  // a number, a class, or a list of them
  static StatusSet default_set();                  // 200-299
  bool contains(long status) const;
  const std::string& text() const noexcept { return text_; }  // "200, 204" / "2xx"

 private:
  std::vector<std::pair<int, int>> ranges_;
  std::string text_;
};

// What a value must be: equal to a JSON scalar, match a regex, or merely exist / be absent.
// YAML forms: `value` (equals), `{equals: value}`, `{matches: regex}`, `{exists: true|false}`.
class ValueMatcher {
 public:
  static ValueMatcher parse(const ConfigNode& node);
  // `value` is nullptr when absent. Sets `actual` to the observed value's text.
  bool check(const nlohmann::json* value, std::string& actual) const;
  bool check_text(const std::string* value, std::string& actual) const;
  std::string expected_text() const;

 private:
  enum class Kind { equals, matches, exists, absent } kind_ = Kind::exists;
  nlohmann::json expected_;
  std::optional<Pattern> pattern_;
};

// A location in a JSON document: JSON Pointer ("/items/0/sku") or JSONPath ("$.items[0].sku").
// Returns the pointer or sets `error`.
std::optional<nlohmann::json::json_pointer> parse_json_location(const std::string& text,
                                                                std::string& error);

struct JsonAssertion {
  std::string location;  // as written, names the assertion: "json:/items/0/sku"
  nlohmann::json::json_pointer pointer;
  ValueMatcher matcher;
};

struct HeaderAssertion {
  std::string name;  // lower case
  ValueMatcher matcher;
};

// Appends an assertion's outcome to `result`; the first failing assertion sets the outcome
// (assertion.failed, failed_at assertion, the assertion's name and "name: expected …, got …"),
// unless an earlier failure already did.
void record_assertion(CheckResult& result, std::string name, bool passed, std::string expected,
                      std::string actual);
// The same for any record with assertions and an outcome (a journey step).
void record_assertion(std::vector<AssertionResult>& assertions, Outcome& outcome, std::string name,
                      bool passed, std::string expected, std::string actual);

// The body, JSON and header assertions of one HTTP response, shared by http checks and journey
// steps, recorded in this order: body_matches, body_not_matches, json:<location>,
// header:<name>. `doc` is the parsed body (a discarded value when it is not JSON; only read when
// `json` is not empty); `header(name)` returns a response header by lower-case name or null.
struct ResponseAssertions {
  const std::vector<Pattern>& body_matches;
  const std::vector<Pattern>& body_not_matches;
  const std::vector<JsonAssertion>& json;
  const std::vector<HeaderAssertion>& headers;
};
template <typename HeaderLookup>
void record_response_assertions(const ResponseAssertions& expect, std::string_view body,
                                const nlohmann::json& doc, HeaderLookup&& header,
                                std::vector<AssertionResult>& assertions, Outcome& outcome) {
  const std::string size = std::to_string(body.size()) + " bytes";
  for (const auto& p : expect.body_matches) {
    const bool ok = p.search(body);
    record_assertion(assertions, outcome, "body_matches", ok, p.source(),
                     ok ? "matched" : "no match in " + size);
  }
  for (const auto& p : expect.body_not_matches) {
    const bool ok = !p.search(body);
    record_assertion(assertions, outcome, "body_not_matches", ok, "no match for " + p.source(),
                     ok ? "no match" : "matched");
  }
  for (const auto& a : expect.json) {
    std::string actual;
    bool ok = false;
    if (doc.is_discarded()) {
      actual = "the body is not JSON";
    } else {
      const nlohmann::json* v = doc.contains(a.pointer) ? &doc.at(a.pointer) : nullptr;
      ok = a.matcher.check(v, actual);
    }
    record_assertion(assertions, outcome, "json:" + a.location, ok, a.matcher.expected_text(),
                     actual);
  }
  for (const auto& h : expect.headers) {
    std::string actual;
    const bool ok = h.matcher.check_text(header(h.name), actual);
    record_assertion(assertions, outcome, "header:" + h.name, ok, h.matcher.expected_text(),
                     actual);
  }
}

// The `cert_expires_after` assertion: the earliest notAfter of the presented chain must be at
// least `threshold` after `now`.
void record_cert_expiry(CheckResult& result, const TlsFacts& facts, UtcTime now,
                        std::chrono::nanoseconds threshold);

// Truncates observed text for an AssertionResult (256 bytes, valid UTF-8 not guaranteed to be
// preserved at the cut; JSON serialisation replaces invalid sequences).
std::string clip(std::string_view text, std::size_t max = 256);

}  // namespace vantage::probe::checks
