// The observation model shared by probes, the collector and analysis (DESIGN §3).
//
// A CheckResult is one run of one check from one vantage point: who observed (Vantage), what was
// observed (Target), what happened (Outcome, in the NEL failure taxonomy), how long each phase
// took (Phases, milliseconds), plus kind-specific facts (HTTP, TLS, DNS, TCP).
// On the wire it is one JSON object per line (NDJSON) with `"kind": "check_result"`; see
// docs/observation-model.md for every field.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/failure_type.hpp"
#include "common/time.hpp"

namespace vantage {

enum class Source : std::uint8_t { probe, browser, bgp };
std::string_view to_string(Source s) noexcept;
std::optional<Source> parse_source(std::string_view s) noexcept;

// Where in a request a failure happened (finer than the NEL phase): the phase that was running
// when the failure was detected; `assertion` = after the response, while evaluating assertions.
enum class Phase : std::uint8_t { dns, connect, tls, ttfb, transfer, assertion };
std::string_view to_string(Phase p) noexcept;
std::optional<Phase> parse_phase(std::string_view s) noexcept;

// Who observed.
struct Vantage {
  Source source = Source::probe;
  std::string probe_id;  // vantage point id, e.g. "eu-west-dtag-1"
  std::string region;    // e.g. "eu-west"
  std::string country;   // ISO 3166-1 alpha-2, e.g. "DE"
  std::string city;
  std::uint32_t asn = 0;      // 0 = unknown
  std::string isp;            // AS organisation / ISP name
  std::string client_prefix;  // truncated client address, e.g. "192.0.2.0/24" (browsers)
  bool operator==(const Vantage&) const = default;
};

// What was observed. Only the fields that apply are set.
struct Target {
  std::string url;   // query and fragment stripped
  std::string host;  // host name (or literal address) that was resolved / connected to
  std::uint16_t port = 0;
  std::string server_ip;  // address actually connected to (or queried, for dns checks)
  std::string resolver;   // "host:port" of the DNS server used, or "system"
  std::string prefix;     // BGP prefix, e.g. "203.0.113.0/24"
  bool operator==(const Target&) const = default;
};

// What happened.
struct Outcome {
  FailureType type = FailureType::ok;
  std::optional<Phase> failed_at;  // unset when type == ok
  std::optional<int> status_code;  // HTTP status when one was received
  std::string assertion;           // name of the failing assertion (assertion.failed)
  std::string detail;              // human-readable cause, e.g. curl's or c-ares' message
  std::optional<int> step_index;   // journeys: the step that failed (0-based) …
  std::string step;                // … and its name
  bool ok() const noexcept { return type == FailureType::ok; }
  NelPhase nel() const noexcept { return nel_phase(type); }
  bool operator==(const Outcome&) const = default;
};

// Phase durations in milliseconds (blackbox_exporter's resolve/connect/tls/processing/transfer).
// A phase that did not happen (no TLS on http://, not reached after a failure) is unset.
struct Phases {
  std::optional<double> dns;       // name resolution
  std::optional<double> connect;   // TCP handshake
  std::optional<double> tls;       // TLS handshake
  std::optional<double> ttfb;      // request sent -> first response byte ("processing")
  std::optional<double> transfer;  // first byte -> last byte
  double total = 0;                // whole run, including redirects and assertion evaluation
  bool operator==(const Phases&) const = default;
};

struct AssertionResult {
  std::string name;  // e.g. "status", "body_matches", "json:/items/0/sku", "header:content-type"
  bool passed = false;
  std::string expected;  // what the config asked for
  std::string actual;    // what was observed (truncated to 256 bytes)
  bool operator==(const AssertionResult&) const = default;
};

struct HttpFacts {
  int status_code = 0;
  std::string http_version;  // "1.1", "2"
  int redirects = 0;
  std::int64_t content_length = -1;  // Content-Length header, -1 when absent
  std::int64_t body_bytes = 0;       // bytes of body received (after decoding)
  std::string final_url;             // after redirects, query stripped
  bool operator==(const HttpFacts&) const = default;
};

struct TlsFacts {
  std::string version;                           // "TLSv1.3"
  std::string cipher;                            // "TLS_AES_256_GCM_SHA384"
  std::string subject;                           // leaf certificate subject, RFC 2253 form
  std::string issuer;                            // leaf certificate issuer, RFC 2253 form
  std::vector<std::string> dns_names;            // leaf subjectAltName DNS names
  std::vector<std::string> ip_addresses;         // leaf subjectAltName IP addresses
  std::optional<UtcTime> earliest_expiry;        // min notAfter over the chain the server presented
  std::optional<UtcTime> verified_chain_expiry;  // min notAfter over the verified chain, up to
                                                 // the trust anchor (after a verified handshake)
  int chain_length = 0;
  std::string verify_error;  // OpenSSL verification error text, empty when verified
  bool operator==(const TlsFacts&) const = default;
};

struct DnsRecord {
  std::string name;
  std::string type;       // "A", "AAAA", "CNAME", "TXT", "MX", "NS", "SOA", or "TYPE<n>"
  std::uint32_t ttl = 0;  // seconds
  std::string data;       // presentation form: "192.0.2.1", "10 mx.example.com.", …
  bool operator==(const DnsRecord&) const = default;
};

struct DnsFacts {
  std::string rcode;  // "NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", …
  std::string query_name;
  std::string query_type;
  std::vector<DnsRecord> answers;
  int authority_rrs = 0;
  int additional_rrs = 0;
  bool authoritative = false;
  bool truncated = false;
  bool operator==(const DnsFacts&) const = default;
};

struct TcpFacts {
  std::int64_t bytes_received = 0;
  std::string received;  // what the server sent, up to 256 bytes (banner)
  bool operator==(const TcpFacts&) const = default;
};

// One step of a journey run (DESIGN §4: an HTTP request with assertions and extractions).
struct StepResult {
  int index = 0;          // 0-based position in the journey
  std::string name;
  bool always = false;    // a cleanup step, run even after an earlier step failed
  bool skipped = false;   // not run (an earlier step failed, or a variable it needs is missing)
  std::string method;
  std::string url;        // after variable substitution; query and fragment stripped; redacted
  std::string span_id;    // W3C span id of the step's (first) request
  Outcome outcome;
  Phases phases;
  std::optional<int> status_code;
  std::int64_t body_bytes = 0;
  int redirects = 0;
  std::vector<AssertionResult> assertions;
  std::vector<std::string> extracted;  // names of the variables the step set (never the values)
  bool operator==(const StepResult&) const = default;
};

// One run of one check. Record kind on the wire: "check_result", or "journey_result" when it has
// steps.
struct CheckResult {
  std::string id;          // unique per result (UUIDv7); receivers drop duplicates by it
  std::string check_id;    // the check's configured id
  std::string check_kind;  // "http", "dns", "tcp", "tls", …
  UtcTime time{};          // UTC start of the run
  Vantage vantage;
  Target target;
  Outcome outcome;
  Phases phases;
  std::vector<AssertionResult> assertions;
  std::optional<HttpFacts> http;
  std::optional<TlsFacts> tls;
  std::optional<DnsFacts> dns;
  std::optional<TcpFacts> tcp;
  std::vector<StepResult> steps;  // journeys
  std::string trace_id;  // W3C trace-id sent in `traceparent`, 32 hex digits (HTTP checks)
  int attempts = 1;      // runs made; > 1 when retried
  bool flaky = false;    // passed only after a retry (outcome ok, failed_attempts not empty)
  std::vector<Outcome> failed_attempts;
  double weight = 1.0;  // how many observations this stands for (browser sampling; probes 1)

  bool ok() const noexcept { return outcome.ok(); }
  bool operator==(const CheckResult&) const = default;
};

// The `vantage` object of every record kind: {"source", "probe_id", "region", "country", "city",
// "asn", "isp", "client_prefix"}, empty fields left out.
nlohmann::json to_json(const Vantage& vantage);

// Serialises to the wire form (an object with "kind": "check_result").
nlohmann::json to_json(const CheckResult& r);
// One NDJSON line (no trailing newline).
std::string to_ndjson_line(const CheckResult& r);

// Parses the wire form. Never throws: on failure returns nullopt and sets `error` to a reason
// naming the field, e.g. `outcome.type: unknown failure type "tcp.oops"`.
std::optional<CheckResult> check_result_from_json(const nlohmann::json& j, std::string& error);
std::optional<CheckResult> parse_check_result_line(std::string_view line, std::string& error);

// A record of a probe's bgp check (docs/bgp.md#records): a `route_event` (one prefix announced
// or withdrawn by one BGP peer, or a peer's session gone) or a `bgp_alert` (a detection opening
// or resolving). These are the fields a store indexes; the whole line is kept beside them.
struct BgpRecord {
  std::string kind;  // "route_event" | "bgp_alert"
  std::string id;    // unique per record (UUIDv7); receivers drop duplicates by it
  std::string check;
  UtcTime time{};  // route_event: when the peer sent it; bgp_alert: when it opened/resolved
  Vantage vantage;
  // route_event: "announce" | "withdraw" | "peer_down" | "peer_up"; bgp_alert: the alert ("hijack",
  // "sub_prefix_hijack", "route_leak", "unexpected_upstream", "visibility_loss", "rpki_invalid").
  std::string event;
  std::string status;     // bgp_alert: "open" | "resolved"
  std::string alert_key;  // bgp_alert: pairs an alert's open and resolved records
  std::string prefix;     // e.g. "208.65.153.0/24" (empty for peer_down / peer_up)
  std::string monitored_prefix;
  std::string collector;  // route_event: the BMP router's address (and RIB view) or the MRT directory
  std::string peer_ip;
  std::uint32_t peer_asn = 0;
  std::optional<std::uint32_t> origin;  // origin AS (unset for an AS_SET origin)
  std::uint32_t leaker = 0;             // route_leak: the leaking AS
  std::string as_path;                  // route_event: "65000 3491 17557"
};

// Validates the wire form of a route_event or bgp_alert. Never throws: nullopt and `error`
// naming the field on failure, e.g. `status: expected open or resolved`.
std::optional<BgpRecord> bgp_record_from_json(const nlohmann::json& j, std::string& error);

}  // namespace vantage
