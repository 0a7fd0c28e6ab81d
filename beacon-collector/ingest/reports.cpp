#include "beacon-collector/ingest/reports.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "beacon-collector/ingest/origins.hpp"
#include "beacon-collector/ingest/url_template.hpp"
#include "beacon-collector/ingest/user_agent.hpp"

namespace vantage::collector::ingest {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

constexpr std::int64_t kNanosPerMs = 1'000'000;

// One parser per thread: simdjson reuses its buffers between documents.
simdjson::dom::parser& thread_parser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

void append_escaped(std::string& out, std::string_view s) {
  out.push_back('"');
  std::size_t run = 0;  // start of the current run of characters that need no escaping
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default: {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

bool url_end(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '"' || c == '\'' || c == ')' ||
         c == '(' || c == '<' || c == '>' || c == ',';
}

// Removes query and fragment from every http(s)/ws(s) URL inside `s`, also inside running text
// such as a stack trace ("at https://a.example/app.js?v=3:11:34" -> "at
// https://a.example/app.js:11:34": a trailing :line[:column] is kept). Returns false and leaves
// `out` alone when there is nothing to remove.
bool strip_embedded_queries(std::string_view s, std::string& out) {
  std::size_t pos = s.find("://");
  if (pos == std::string_view::npos) return false;
  std::string result;
  std::size_t copied = 0;
  while (pos != std::string_view::npos) {
    std::size_t end = pos + 3;
    while (end < s.size() && !url_end(s[end])) ++end;
    std::size_t q = pos + 3;
    while (q < end && s[q] != '?' && s[q] != '#') ++q;
    if (q < end) {
      // Keep a trailing ":12" or ":12:34" (a stack frame's position) after the query.
      std::size_t keep = end;
      for (int part = 0; part < 2; ++part) {
        std::size_t d = keep;
        while (d > q && std::isdigit(static_cast<unsigned char>(s[d - 1]))) --d;
        if (d < keep && d > q && s[d - 1] == ':')
          keep = d - 1;
        else
          break;
      }
      result.append(s.substr(copied, q - copied));
      result.append(s.substr(keep, end - keep));
      copied = end;
    }
    pos = s.find("://", end);
  }
  if (copied == 0) return false;
  result.append(s.substr(copied));
  out = std::move(result);
  return true;
}

// Serialises `e` as compact JSON, removing query and fragment from every absolute URL string.
void write_sanitised(std::string& out, element e) {
  switch (e.type()) {
    case element_type::OBJECT: {
      out.push_back('{');
      bool first = true;
      for (auto field : object(e)) {
        if (!first) out.push_back(',');
        first = false;
        append_escaped(out, field.key);
        out.push_back(':');
        write_sanitised(out, field.value);
      }
      out.push_back('}');
      break;
    }
    case element_type::ARRAY: {
      out.push_back('[');
      bool first = true;
      for (auto item : simdjson::dom::array(e)) {
        if (!first) out.push_back(',');
        first = false;
        write_sanitised(out, item);
      }
      out.push_back(']');
      break;
    }
    case element_type::STRING: {
      const std::string_view s = std::string_view(e);
      std::string stripped;
      if (strip_embedded_queries(s, stripped)) {
        append_escaped(out, stripped);
      } else {
        append_escaped(out, s);
      }
      break;
    }
    default:
      out += simdjson::minify(e);
  }
}

std::string sanitised(element e) {
  std::string out;
  write_sanitised(out, e);
  return out;
}

std::string_view get_string(object o, std::string_view key) {
  std::string_view v;
  if (o[key].get(v) != simdjson::SUCCESS) return {};
  return v;
}

std::optional<double> get_number(object o, std::string_view key) {
  double v = 0;
  if (o[key].get(v) != simdjson::SUCCESS || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<int> get_int(object o, std::string_view key) {
  auto v = get_number(o, key);
  if (!v || *v < -2147483648.0 || *v > 2147483647.0) return std::nullopt;
  return static_cast<int>(*v);
}

// Copies `body` with every integer literal of 19 digits or more (which may not fit 64 bits)
// turned into an exponent form of the same value ("18446744073709551616" ->
// "18446744073709551616e0"), which JSON parsers read as a double. Strings are left alone.
std::string widen_big_integers(std::string_view body) {
  std::string out;
  out.reserve(body.size() + 16);
  std::size_t i = 0;
  while (i < body.size()) {
    const char c = body[i];
    if (c == '"') {
      // Copy the string through its closing quote (a quote after an odd run of backslashes is
      // escaped).
      std::size_t j = i + 1;
      while (j < body.size()) {
        if (body[j] == '\\') {
          j += 2;
          continue;
        }
        if (body[j] == '"') break;
        ++j;
      }
      j = std::min(j + 1, body.size());
      out.append(body.substr(i, j - i));
      i = j;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      std::size_t j = i + (c == '-' ? 1 : 0);
      const std::size_t digits_start = j;
      while (j < body.size() && body[j] >= '0' && body[j] <= '9') ++j;
      out.append(body.substr(i, j - i));
      const bool fraction_or_exponent =
          j < body.size() && (body[j] == '.' || body[j] == 'e' || body[j] == 'E');
      if (!fraction_or_exponent && j - digits_start >= 19) out += "e0";
      i = std::max(j, i + 1);
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

// Parses `body` after the byte-level limits; fills `out.error*` and returns false on failure.
bool parse_document(std::string_view body, const ParseLimits& limits, element& doc,
                    ParseOutcome& out) {
  std::string label;
  std::string reason = check_json_limits(body, limits.max_depth, limits.max_string_bytes, label);
  if (!reason.empty()) {
    out.error_reason = label;
    out.error = reason;
    return false;
  }
  auto err = thread_parser().parse(body.data(), body.size()).get(doc);
  if (err == simdjson::NUMBER_ERROR || err == simdjson::NUMBER_OUT_OF_RANGE) {
    // An integer beyond 64 bits (an `age` of 2^64, say) fails the whole document in simdjson
    // (NUMBER_ERROR in 3.0), yet JSON allows it (RFC 8259 §6). Parse it as the double it is, so
    // that only the report carrying it is judged (and dropped if the value is out of range).
    const std::string widened = widen_big_integers(body);
    err = thread_parser().parse(widened.data(), widened.size()).get(doc);
  }
  if (err != simdjson::SUCCESS) {
    out.error_reason = "malformed_json";
    out.error = std::string("malformed JSON: ") + simdjson::error_message(err);
    return false;
  }
  return true;
}

bool too_many(std::size_t n, const ParseLimits& limits, ParseOutcome& out) {
  if (n <= static_cast<std::size_t>(limits.max_reports)) return false;
  out.error_reason = "too_many_reports";
  out.error = "the upload has " + std::to_string(n) + " reports; the limit is " +
              std::to_string(limits.max_reports);
  return true;
}

BrowserRecord base_record(const ParseContext& ctx, std::string kind, std::string type) {
  BrowserRecord r;
  r.received_ns = ctx.received_ns;
  r.event_ns = ctx.received_ns;
  r.kind = std::move(kind);
  r.type = std::move(type);
  r.endpoint = std::string(ctx.endpoint);
  r.origin = std::string(ctx.origin);
  return r;
}

// Sets event time from an age in ms; false when the age is out of range (report dropped).
bool apply_age(BrowserRecord& r, double age_ms, const ParseLimits& limits) {
  if (!(age_ms >= 0) || age_ms > static_cast<double>(limits.max_age_ms)) return false;
  r.event_ns = r.received_ns - static_cast<std::int64_t>(age_ms * kNanosPerMs);
  return true;
}

// Every record's endpoint template, once its URL is final.
void add_templates(ParseOutcome& out) {
  for (BrowserRecord& r : out.records) r.url_template = template_url(r.url);
}

bool url_allowed(const ParseContext& ctx, std::string_view url) {
  return ctx.origins == nullptr || ctx.origins->allows_url(url);
}

void apply_user_agent(BrowserRecord& r, std::string_view ua) {
  auto f = reduce_user_agent(ua);
  r.ua_family = std::move(f.family);
  r.ua_major = f.major;
}

// NEL body fields (https://w3c.github.io/network-error-logging/#network-error-reports).
void apply_nel(BrowserRecord& r, object body) {
  r.nel_type = std::string(get_string(body, "type"));
  r.nel_phase = std::string(get_string(body, "phase"));
  r.method = std::string(get_string(body, "method"));
  r.protocol = std::string(get_string(body, "protocol"));
  r.server_ip = std::string(get_string(body, "server_ip"));
  r.status_code = get_int(body, "status_code");
  r.elapsed_ms = get_number(body, "elapsed_time");
  if (auto f = get_number(body, "sampling_fraction"); f && *f > 0 && *f <= 1) r.weight = 1.0 / *f;
}

// One Reporting API report object; returns false with the drop reason.
bool report_from(element item, const ParseContext& ctx, BrowserRecord& r, std::string& drop) {
  object o;
  std::string_view type;
  if (item.get(o) != simdjson::SUCCESS || o["type"].get(type) != simdjson::SUCCESS ||
      type.empty()) {
    drop = "invalid_report";
    return false;
  }
  r = base_record(ctx, "browser_report", std::string(type));
  r.url = strip_query(get_string(o, "url"));
  if (!url_allowed(ctx, r.url)) {
    drop = "url_not_allowed";
    return false;
  }
  double age = 0;
  if (auto a = o["age"]; a.error() == simdjson::SUCCESS) {
    if (a.get(age) != simdjson::SUCCESS) {
      drop = "invalid_report";
      return false;
    }
  }
  if (!apply_age(r, age, ctx.limits)) {
    drop = "age_out_of_range";
    return false;
  }
  const std::string_view ua = get_string(o, "user_agent");
  apply_user_agent(r, ua.empty() ? ctx.user_agent : ua);
  element body;
  if (o["body"].get(body) == simdjson::SUCCESS && body.type() != element_type::NULL_VALUE) {
    r.body = sanitised(body);
    object bo;
    if (type == "network-error" && body.get(bo) == simdjson::SUCCESS) apply_nel(r, bo);
  } else {
    r.body = "{}";
  }
  return true;
}

}  // namespace

std::string check_json_limits(std::string_view body, int max_depth, std::uint64_t max_string_bytes,
                              std::string& reason_label) {
  int depth = 0;
  const char* p = body.data();
  const char* const end = p + body.size();
  while (p < end) {
    const char c = *p++;
    if (c == '"') {
      // Jump from quote to quote (memchr is vectorised); a quote preceded by an odd number of
      // backslashes is escaped and does not end the string.
      const char* start = p;
      for (;;) {
        const auto* q =
            static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
        if (q == nullptr) {
          p = end;  // unterminated: the parser reports it
          break;
        }
        const char* b = q;
        while (b > start && b[-1] == '\\') --b;
        p = q + 1;
        if (((q - b) & 1) == 0) break;
      }
      if (static_cast<std::uint64_t>(p - start - 1) > max_string_bytes) {
        reason_label = "string_too_long";
        return "a JSON string is longer than " + std::to_string(max_string_bytes) + " bytes";
      }
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) {
        reason_label = "json_too_deep";
        return "JSON nesting is deeper than " + std::to_string(max_depth) + " levels";
      }
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return {};
}

ParseOutcome parse_reporting_api(std::string_view body, const ParseContext& ctx) {
  ParseOutcome out;
  element doc;
  if (!parse_document(body, ctx.limits, doc, out)) return out;
  simdjson::dom::array reports;
  if (doc.get(reports) != simdjson::SUCCESS) {
    out.error_reason = "wrong_shape";
    out.error = "expected a JSON array of reports (application/reports+json)";
    return out;
  }
  if (too_many(reports.size(), ctx.limits, out)) return out;
  out.records.reserve(reports.size());
  for (auto item : reports) {
    BrowserRecord r;
    std::string drop;
    if (report_from(item, ctx, r, drop)) {
      out.records.push_back(std::move(r));
    } else {
      ++out.dropped[drop];
    }
  }
  add_templates(out);
  return out;
}

ParseOutcome parse_csp_report(std::string_view body, const ParseContext& ctx) {
  ParseOutcome out;
  element doc;
  if (!parse_document(body, ctx.limits, doc, out)) return out;
  object report;
  if (doc["csp-report"].get(report) != simdjson::SUCCESS) {
    out.error_reason = "wrong_shape";
    out.error = "expected {\"csp-report\": {...}} (application/csp-report)";
    return out;
  }
  BrowserRecord r = base_record(ctx, "browser_report", "csp-violation");
  r.url = strip_query(get_string(report, "document-uri"));
  if (!url_allowed(ctx, r.url)) {
    ++out.dropped["url_not_allowed"];
    return out;
  }
  apply_user_agent(r, ctx.user_agent);
  // CSP2 report names -> Reporting API csp-violation body names (CSP3 §5.3).
  static constexpr std::pair<std::string_view, std::string_view> kNames[] = {
      {"document-uri", "documentURL"},
      {"referrer", "referrer"},
      {"blocked-uri", "blockedURL"},
      {"effective-directive", "effectiveDirective"},
      {"violated-directive", "violatedDirective"},
      {"original-policy", "originalPolicy"},
      {"disposition", "disposition"},
      {"source-file", "sourceFile"},
      {"line-number", "lineNumber"},
      {"column-number", "columnNumber"},
      {"status-code", "statusCode"},
      {"script-sample", "sample"},
  };
  std::string& b = r.body;
  b.push_back('{');
  bool first = true;
  for (auto field : report) {
    std::string_view name = field.key;
    for (const auto& [legacy, modern] : kNames) {
      if (name == legacy) {
        name = modern;
        break;
      }
    }
    if (!first) b.push_back(',');
    first = false;
    append_escaped(b, name);
    b.push_back(':');
    write_sanitised(b, field.value);
  }
  b.push_back('}');
  out.records.push_back(std::move(r));
  add_templates(out);
  return out;
}

ParseOutcome parse_beacon(std::string_view body, const ParseContext& ctx) {
  ParseOutcome out;
  element doc;
  if (!parse_document(body, ctx.limits, doc, out)) return out;
  simdjson::dom::array events;
  std::optional<double> sent;
  double weight = 1;  // the agent samples page views: each stands for 1/sample_rate
  object top;
  bool single = false;
  if (doc.get(events) != simdjson::SUCCESS) {
    if (doc.get(top) != simdjson::SUCCESS) {
      out.error_reason = "wrong_shape";
      out.error = "expected an agent event object, an array of them, or {\"events\": [...]}";
      return out;
    }
    if (top["events"].get(events) == simdjson::SUCCESS) {
      sent = get_number(top, "sent");
      if (auto rate = get_number(top, "sample_rate"); rate && *rate > 0 && *rate <= 1) {
        weight = 1.0 / *rate;
      }
    } else {
      single = true;
    }
  }
  std::vector<element> items;
  if (single) {
    items.push_back(doc);
  } else {
    if (too_many(events.size(), ctx.limits, out)) return out;
    for (auto e : events) items.push_back(e);
  }
  for (element item : items) {
    object ev;
    if (item.get(ev) != simdjson::SUCCESS) {
      ++out.dropped["invalid_report"];
      continue;
    }
    const std::string_view kind = get_string(ev, "kind");
    const std::string page = strip_query(get_string(ev, "page"));
    BrowserRecord r;
    if (kind == "reporting-observer") {
      // A ReportingObserver report forwarded by the agent: store it like an uploaded report.
      element report;
      std::string drop;
      if (ev["report"].get(report) != simdjson::SUCCESS || !report_from(report, ctx, r, drop)) {
        ++out.dropped[drop.empty() ? "invalid_report" : drop];
        continue;
      }
    } else {
      std::string type = "unknown";
      if (kind == "js-error" || kind == "unhandledrejection") {
        type = "js_error";
      } else if (kind == "fetch-http-error" || kind == "xhr-http-error") {
        type = "http_error";
      } else if (kind == "perf" || kind == "timing") {
        type = "timing";
      }
      r = base_record(ctx, "rum_event", type);
      r.url = page;
      if (type == "http_error") {
        r.url = strip_query(get_string(ev, "url"));
        r.status_code = get_int(ev, "status");
        r.method = std::string(get_string(ev, "method"));
        if (r.method.empty()) r.method = "GET";
        r.elapsed_ms = get_number(ev, "duration");
      }
      if (!url_allowed(ctx, page.empty() ? r.url : page)) {
        ++out.dropped["url_not_allowed"];
        continue;
      }
      if (auto ts = get_number(ev, "ts"); ts && sent) {
        if (!apply_age(r, std::max(0.0, *sent - *ts), ctx.limits)) {
          ++out.dropped["age_out_of_range"];
          continue;
        }
      }
      apply_user_agent(r, ctx.user_agent);
      if (type == "timing") {
        // Navigation Timing Level 2 -> the observation model's phases (ms).
        object nav;
        if (ev["nav"].get(nav) == simdjson::SUCCESS) {
          auto at = [&](std::string_view k) { return get_number(nav, k).value_or(0); };
          std::string b = "{\"page\":";
          append_escaped(b, page);
          char buf[384];
          const double secure = at("secureConnectionStart");
          std::snprintf(
              buf, sizeof buf,
              ",\"phases_ms\":{\"dns\":%.3f,\"connect\":%.3f,\"tls\":%.3f,"
              "\"ttfb\":%.3f,\"transfer\":%.3f,\"total\":%.3f},\"transfer_size\":%.0f,"
              "\"navigation_type\":",
              at("domainLookupEnd") - at("domainLookupStart"),
              at("connectEnd") - at("connectStart"), secure > 0 ? at("connectEnd") - secure : 0.0,
              at("responseStart") - at("requestStart"), at("responseEnd") - at("responseStart"),
              at("duration"), at("transferSize"));
          b += buf;
          append_escaped(b, get_string(nav, "type"));
          b.push_back('}');
          r.body = std::move(b);
          r.elapsed_ms = get_number(nav, "duration");
          r.protocol = std::string(get_string(nav, "nextHopProtocol"));
          r.status_code = get_int(nav, "responseStatus");
        } else {
          r.body = sanitised(item);
        }
      } else {
        r.body = sanitised(item);
      }
    }
    r.weight = weight;
    out.records.push_back(std::move(r));
  }
  add_templates(out);
  return out;
}

}  // namespace vantage::collector::ingest
