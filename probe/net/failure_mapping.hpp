// Maps every libcurl, c-ares, OpenSSL and socket error onto the failure taxonomy
// (common/failure_type.hpp) with the phase it happened in. The table is documented in
// docs/failure-mapping.md with, for each row, the unit or integration test that covers it.
#pragma once

#include <cstdint>
#include <string>

#include "common/failure_type.hpp"
#include "common/observation.hpp"

namespace vantage::probe::net {

struct TlsObservation;

struct MappedFailure {
  FailureType type = FailureType::unknown;
  Phase phase = Phase::connect;
  std::string detail;
};

// Sets an outcome's type, failing phase and detail from a mapped failure.
inline void apply(const MappedFailure& f, Outcome& outcome) {
  outcome.type = f.type;
  outcome.failed_at = f.phase;
  outcome.detail = f.detail;
}

// What is known about a libcurl transfer when it ended (times in µs from the transfer's start,
// 0 = that point was never reached).
struct TransferProgress {
  bool https = false;
  std::int64_t connect_us = 0;        // CURLINFO_CONNECT_TIME_T
  std::int64_t appconnect_us = 0;     // CURLINFO_APPCONNECT_TIME_T (TLS done)
  std::int64_t pretransfer_us = 0;    // CURLINFO_PRETRANSFER_TIME_T (request about to be sent)
  std::int64_t starttransfer_us = 0;  // CURLINFO_STARTTRANSFER_TIME_T (first response byte)
  long os_errno = 0;                  // CURLINFO_OS_ERRNO
  std::string error_text;             // CURLOPT_ERRORBUFFER
  const TlsObservation* tls = nullptr;
};

// A failed libcurl transfer (code != CURLE_OK). `code` is a CURLcode.
MappedFailure map_curl_failure(int code, const TransferProgress& progress);

// A failed c-ares lookup (status != ARES_SUCCESS), e.g. ARES_ENOTFOUND -> dns.name_not_resolved,
// ARES_ESERVFAIL -> dns.failed, ARES_ETIMEOUT -> dns.unreachable. Phase is always dns.
MappedFailure map_ares_failure(int status, const std::string& resolver);

// A DNS response code (RFC 1035 §4.1.1, RFC 6895): 3 -> dns.name_not_resolved, 2/5/others ->
// dns.failed. rcode 0 maps to ok.
FailureType map_dns_rcode(int rcode) noexcept;

// An errno from connect()/send()/recv(): ECONNREFUSED -> tcp.refused, ETIMEDOUT -> tcp.timed_out,
// ECONNRESET -> tcp.reset, EPIPE -> tcp.closed, ENETUNREACH/EHOSTUNREACH ->
// tcp.address_unreachable, EADDRNOTAVAIL -> tcp.address_invalid, ECONNABORTED -> tcp.aborted,
// others -> tcp.failed.
FailureType map_socket_errno(int err) noexcept;

// An X509_V_ERR_* verification error (RFC 5280 path validation):
// expired / not yet valid -> tls.cert.date_invalid; unknown issuer / self-signed ->
// tls.cert.authority_invalid; hostname / IP mismatch -> tls.cert.name_invalid; revoked ->
// tls.cert.revoked; others -> tls.cert.invalid.
FailureType map_x509_error(int code) noexcept;

// A TLS alert received or sent during the handshake (RFC 8446 §6.2):
// protocol_version / handshake_failure / insufficient_security -> tls.version_or_cipher_mismatch;
// bad_certificate / certificate_required / unknown_ca (received) -> tls.bad_client_auth_cert;
// others -> tls.protocol.error.
FailureType map_tls_alert(int alert, bool received) noexcept;

}  // namespace vantage::probe::net
