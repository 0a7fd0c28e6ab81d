// The failure taxonomy every Vantage observation is named in.
//
// Probes, browsers and BGP feeds describe the same question ("can users on network N reach
// service S?"), so they share one vocabulary: the network error types of W3C Network Error Logging
// (https://w3c.github.io/network-error-logging/#predefined-network-error-types), plus two types
// only a probe can observe: `assertion.failed` (a status/body/JSON/header assertion did not hold)
// and `timeout` (the check's own deadline expired after the connection was established).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace vantage {

// One value per type string. `ok` is NEL's success type. Order is not significant.
enum class FailureType : std::uint8_t {
  ok,
  // DNS phase (NEL §"DNS resolution errors")
  dns_unreachable,        // "dns.unreachable": the resolver did not answer
  dns_name_not_resolved,  // "dns.name_not_resolved": NXDOMAIN or no address records
  dns_failed,             // "dns.failed": SERVFAIL, REFUSED, malformed answer, other DNS error
  dns_address_changed,    // "dns.address_changed": the server IP differs from the one in the policy
  // Connection phase: TCP
  tcp_timed_out,            // "tcp.timed_out"
  tcp_closed,               // "tcp.closed": closed by the peer
  tcp_reset,                // "tcp.reset"
  tcp_refused,              // "tcp.refused": ECONNREFUSED
  tcp_aborted,              // "tcp.aborted"
  tcp_address_invalid,      // "tcp.address_invalid"
  tcp_address_unreachable,  // "tcp.address_unreachable": ENETUNREACH / EHOSTUNREACH
  tcp_failed,               // "tcp.failed"
  // Connection phase: TLS
  tls_version_or_cipher_mismatch,
  tls_bad_client_auth_cert,
  tls_cert_name_invalid,
  tls_cert_date_invalid,
  tls_cert_authority_invalid,
  tls_cert_invalid,
  tls_cert_revoked,
  tls_cert_pinned_key_not_in_cert_chain,
  tls_protocol_error,
  tls_failed,
  // Application phase
  http_error,                   // "http.error": a 4xx/5xx status (status_code says which)
  http_protocol_error,          // "http.protocol.error"
  http_response_invalid,        // "http.response.invalid"
  http_response_redirect_loop,  // "http.response.redirect_loop"
  http_failed,                  // "http.failed"
  abandoned,                    // "abandoned": the request was cancelled
  unknown,                      // "unknown"
  // Probe-only
  assertion_failed,  // "assertion.failed": the response arrived but an assertion did not hold
  timeout,           // "timeout": the check's deadline expired after the connection was made
};

// The NEL `phase` a failure type belongs to (NEL §"Network error reports": dns | connection |
// application).
enum class NelPhase : std::uint8_t { dns, connection, application };

// Returns the wire name, e.g. FailureType::tcp_refused -> "tcp.refused". Never empty.
std::string_view to_string(FailureType type) noexcept;

// Parses a wire name; returns nullopt for a name outside the taxonomy (callers that must keep
// unknown browser types keep the raw string themselves).
std::optional<FailureType> parse_failure_type(std::string_view name) noexcept;

// NEL phase of a type. `assertion.failed` and `timeout` are application-phase; `ok` is application.
NelPhase nel_phase(FailureType type) noexcept;
std::string_view to_string(NelPhase phase) noexcept;

// All types, in declaration order (for tables, metrics and tests).
std::span<const FailureType> all_failure_types() noexcept;

}  // namespace vantage
