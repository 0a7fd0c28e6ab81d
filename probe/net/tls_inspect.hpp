// Observes the TLS handshake of a libcurl transfer (OpenSSL backend) to record the facts a probe
// reports — version, cipher, peer chain, earliest expiry — and the precise reason a handshake or
// verification failed (X509 verification error, TLS alert), which libcurl's CURLcode alone does
// not carry. Installed with CURLOPT_SSL_CTX_FUNCTION; never changes whether verification passes.
#pragma once

#include <curl/curl.h>

#include <string>

#include "common/observation.hpp"

namespace vantage::probe::net {

struct TlsObservation {
  TlsFacts facts;
  bool handshake_done = false;
  bool chain_seen = false;
  int verify_error = 0;        // first X509_V_ERR_* seen while verifying the chain (0 = none)
  int verify_error_depth = -1;
  int alert_received = -1;     // last TLS alert description received from the peer (RFC 8446 §6)
  int alert_sent = -1;         // last TLS alert description we sent
  void reset() { *this = TlsObservation{}; }
};

// CURLOPT_SSL_CTX_FUNCTION callback; CURLOPT_SSL_CTX_DATA must point at a TlsObservation that
// outlives the transfer. Installs a verify callback (keeping libcurl's verify mode) and an info
// callback on the SSL_CTX libcurl creates for each connection.
CURLcode tls_ctx_callback(CURL* easy, void* ssl_ctx, void* observation);

// Text of an X509_V_ERR_* code (OpenSSL's X509_verify_cert_error_string).
std::string x509_error_text(int code);
// Name of a TLS alert description, e.g. 70 -> "protocol_version".
std::string tls_alert_name(int alert);

}  // namespace vantage::probe::net
