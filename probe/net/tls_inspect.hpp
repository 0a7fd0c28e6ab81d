// Observes the TLS handshake of a libcurl transfer (OpenSSL backend) to record the facts a probe
// reports — version, cipher, peer chain, earliest expiry — and the precise reason a handshake or
// verification failed (X509 verification error, TLS alert), which libcurl's CURLcode alone does
// not carry. Installed with CURLOPT_SSL_CTX_FUNCTION; never changes whether verification passes.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <string>

#include "common/observation.hpp"

struct x509_store_st;  // OpenSSL's X509_STORE

namespace vantage::probe::net {

struct TlsObservation {
  // When set, the callback installs shared_ca_store(*ca_file) on each connection's SSL_CTX
  // (looked up lazily: a plain http:// check that never meets TLS never loads a trust store).
  // Not reset by reset().
  const std::string* ca_file = nullptr;
  bool verify =
      true;  // false with insecure_skip_verify: verification errors are facts, not failures
  TlsFacts facts;
  bool handshake_done = false;
  bool chain_seen = false;
  // steady_clock nanoseconds when the handshake started (the TCP connection was up), 0 if not.
  // libcurl 7.88 records no connect time for a connection whose TLS handshake failed.
  std::int64_t handshake_started_ns = 0;
  int verify_error = 0;  // first X509_V_ERR_* seen while verifying the chain (0 = none)
  int verify_error_depth = -1;
  int alert_received = -1;  // last TLS alert description received from the peer (RFC 8446 §6)
  int alert_sent = -1;      // last TLS alert description we sent
  // The connection's SSL_CTX this observation is attached to (a reference is held), or null.
  // Set by tls_ctx_callback, cleared by detach_tls_observation.
  void* attached_ctx = nullptr;
  // Forgets what an earlier connection showed; keeps the configuration (ca_file, verify).
  // Call only when detached.
  void reset() {
    const auto* keep_ca = ca_file;
    const bool keep_verify = verify;
    *this = TlsObservation{};
    ca_file = keep_ca;
    verify = keep_verify;
  }
};

// Detaches `obs` from the connection it observed, so OpenSSL callbacks on that connection (a
// kept-alive connection in a CurlShare pool is shut down later, or reused by another transfer)
// never write into an observation that no longer exists. Idempotent. Every exchange calls it
// before its TlsObservation goes away.
void detach_tls_observation(TlsObservation& obs);

// A process-wide, shared trust store for a PEM CA file ("" = libcurl's default CA bundle, e.g.
// /etc/ssl/certs/ca-certificates.crt), parsed once and re-read when the file changes (checked at
// most every 30 s). libcurl 7.88 would otherwise parse the bundle for every new connection when an
// SSL_CTX callback is installed — ~35 million instructions for Debian's bundle, per check.
// Thread-safe. Returns nullptr (and libcurl loads the file itself) if the file cannot be read.
::x509_store_st* shared_ca_store(const std::string& ca_file);

// Start-up validation of a `tls.ca_file`: true if OpenSSL reads at least one certificate from
// it; otherwise false and `error` says why.
bool check_ca_file(const std::string& path, std::string& error);

// libcurl's built-in default CA bundle path (CURLINFO_CAINFO). Computed on first call, which
// must not happen inside a libcurl callback: CurlMulti's constructor makes it.
const std::string& default_ca_path();

// CURLOPT_SSL_CTX_FUNCTION callback; CURLOPT_SSL_CTX_DATA must point at a TlsObservation that
// outlives the transfer. Installs a verify callback (keeping libcurl's verify mode) and an info
// callback on the SSL_CTX libcurl creates for each connection.
CURLcode tls_ctx_callback(CURL* easy, void* ssl_ctx, void* observation);

// Text of an X509_V_ERR_* code (OpenSSL's X509_verify_cert_error_string).
std::string x509_error_text(int code);
// Name of a TLS alert description, e.g. 70 -> "protocol_version".
std::string tls_alert_name(int alert);

}  // namespace vantage::probe::net
