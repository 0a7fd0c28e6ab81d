// Parsing and normalisation of browser uploads into BrowserRecords (DESIGN §3, §5):
//   - Reporting API V0 (Report-To) and V1 (Reporting-Endpoints) bodies, `application/reports+json`:
//     a JSON array of {age, type, url, user_agent, body}
//     (https://w3c.github.io/reporting/#serialize-reports), including Network Error Logging
//     `network-error` reports
//     (https://w3c.github.io/network-error-logging/#generate-a-network-error-report);
//   - legacy CSP `application/csp-report` bodies {"csp-report": {...}} (CSP2 §7.1), mapped onto
//     the Reporting API `csp-violation` body names (documentURL, blockedURL, …);
//   - the agent's beacons (docs/beacon.md): one event object, an array of them, or
//     {"sent": <ms since epoch>, "events": [...]}.
// Event time = receive time - age (ms). URL query strings and fragments are removed everywhere,
// including every absolute URL inside report bodies; each record's url_template is its URL with
// object ids templated (url_template.hpp). Unknown report types and unknown agent
// events are kept (raw body), never rejected.
//
// Errors: a body that is not valid JSON, has the wrong top-level shape, exceeds a JSON limit or
// carries more reports than allowed is rejected as a whole (ParseOutcome::error, 400); a single
// bad report inside a good batch is dropped and counted (ParseOutcome::dropped). Never throws.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "beacon-collector/store/record.hpp"

namespace vantage::collector::ingest {

class OriginPolicy;

struct ParseLimits {
  int max_reports = 100;  // reports (or agent events) per upload
  int max_depth = 16;     // JSON nesting
  std::uint64_t max_string_bytes = 16 * 1024;
  std::int64_t max_age_ms = 24LL * 3600 * 1000;  // older (or negative) `age`: report dropped
};

struct ParseContext {
  std::int64_t received_ns = 0;  // UTC nanoseconds
  // Views into the request: they must outlive the parse call.
  std::string_view endpoint;    // stored as BrowserRecord::endpoint ("reports/csp", "beacon")
  std::string_view origin;      // the Origin header, "" when absent
  std::string_view user_agent;  // the User-Agent header (reports carry their own user_agent)
  const OriginPolicy* origins = nullptr;  // report URLs outside it are dropped; null = any
  ParseLimits limits;
};

struct ParseOutcome {
  std::vector<BrowserRecord> records;
  // Whole-body rejection: `error_reason` is a metric label ("malformed_json", "json_too_deep",
  // "string_too_long", "too_many_reports", "wrong_shape"), `error` the human reason (400 body).
  std::string error_reason;
  std::string error;
  // Reports dropped from an accepted body, by reason ("age_out_of_range", "url_not_allowed",
  // "invalid_report").
  std::map<std::string, int> dropped;
  bool ok() const noexcept { return error.empty(); }
};

ParseOutcome parse_reporting_api(std::string_view body, const ParseContext& ctx);
ParseOutcome parse_csp_report(std::string_view body, const ParseContext& ctx);
ParseOutcome parse_beacon(std::string_view body, const ParseContext& ctx);

// The JSON limits, checked by one pass over the raw bytes before any parsing: nesting depth of
// objects/arrays and the byte length of every string (escapes counted as written). Returns ""
// when within limits, else the reason; `reason_label` gets the metric label.
std::string check_json_limits(std::string_view body, int max_depth, std::uint64_t max_string_bytes,
                              std::string& reason_label);

}  // namespace vantage::collector::ingest
