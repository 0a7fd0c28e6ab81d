#include "probe/net/failure_mapping.hpp"

#include <ares.h>
#include <curl/curl.h>
#include <openssl/x509_vfy.h>

#include <cerrno>
#include <cstring>

#include "probe/net/tls_inspect.hpp"

namespace vantage::probe::net {

FailureType map_socket_errno(int err) noexcept {
  switch (err) {
    case ECONNREFUSED:
      return FailureType::tcp_refused;
    case ETIMEDOUT:
      return FailureType::tcp_timed_out;
    case ECONNRESET:
      return FailureType::tcp_reset;
    case EPIPE:
      return FailureType::tcp_closed;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
      return FailureType::tcp_address_unreachable;
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT:
      return FailureType::tcp_address_invalid;
    case ECONNABORTED:
      return FailureType::tcp_aborted;
    default:
      return FailureType::tcp_failed;
  }
}

FailureType map_x509_error(int code) noexcept {
  switch (code) {
    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
    case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
      return FailureType::tls_cert_date_invalid;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
      return FailureType::tls_cert_authority_invalid;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
    case X509_V_ERR_EMAIL_MISMATCH:
      return FailureType::tls_cert_name_invalid;
    case X509_V_ERR_CERT_REVOKED:
      return FailureType::tls_cert_revoked;
    default:
      return FailureType::tls_cert_invalid;
  }
}

FailureType map_tls_alert(int alert, bool received) noexcept {
  switch (alert) {
    case 70:  // protocol_version
    case 40:  // handshake_failure
    case 71:  // insufficient_security
      return FailureType::tls_version_or_cipher_mismatch;
    case 42:   // bad_certificate
    case 116:  // certificate_required
      return received ? FailureType::tls_bad_client_auth_cert : FailureType::tls_protocol_error;
    case 48:  // unknown_ca
      return received ? FailureType::tls_bad_client_auth_cert
                      : FailureType::tls_cert_authority_invalid;
    default:
      return FailureType::tls_protocol_error;
  }
}

FailureType map_dns_rcode(int rcode) noexcept {
  switch (rcode) {
    case 0:
      return FailureType::ok;
    case 3:  // NXDOMAIN
      return FailureType::dns_name_not_resolved;
    default:  // FORMERR, SERVFAIL, NOTIMP, REFUSED, …
      return FailureType::dns_failed;
  }
}

MappedFailure map_ares_failure(int status, const std::string& resolver) {
  MappedFailure f;
  f.phase = Phase::dns;
  const std::string via = resolver.empty() ? std::string() : " (resolver " + resolver + ")";
  switch (status) {
    case ARES_ENOTFOUND:
      f.type = FailureType::dns_name_not_resolved;
      f.detail = "NXDOMAIN: the name does not exist" + via;
      break;
    case ARES_ENODATA:
      f.type = FailureType::dns_name_not_resolved;
      f.detail = "no address records for the name" + via;
      break;
    case ARES_ESERVFAIL:
      f.type = FailureType::dns_failed;
      f.detail = "SERVFAIL from the resolver" + via;
      break;
    case ARES_EREFUSED:
      f.type = FailureType::dns_failed;
      f.detail = "REFUSED by the resolver" + via;
      break;
    case ARES_ETIMEOUT:
      f.type = FailureType::dns_unreachable;
      f.detail = "no answer from the resolver" + via;
      break;
    case ARES_ECONNREFUSED:
      f.type = FailureType::dns_unreachable;
      f.detail = "the resolver refused the connection" + via;
      break;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
      f.type = FailureType::abandoned;
      f.detail = "lookup cancelled";
      break;
    default:
      f.type = FailureType::dns_failed;
      f.detail = std::string(ares_strerror(status)) + via;
      break;
  }
  return f;
}

namespace {

// The phase a transfer was in when it stopped, from how far its timestamps got.
Phase phase_reached(const TransferProgress& p) {
  if (p.connect_us == 0) return Phase::connect;
  if (p.https && p.appconnect_us == 0) return Phase::tls;
  if (p.starttransfer_us == 0) return Phase::ttfb;
  return Phase::transfer;
}

MappedFailure tls_handshake_failure(const TransferProgress& p) {
  MappedFailure f{FailureType::tls_protocol_error, Phase::tls, p.error_text};
  const TlsObservation* t = p.tls;
  if (t && t->verify && t->verify_error != 0) {
    f.type = map_x509_error(t->verify_error);
    f.detail = "certificate verification failed: " + x509_error_text(t->verify_error);
    return f;
  }
  if (t && t->alert_received >= 0) {
    f.type = map_tls_alert(t->alert_received, true);
    f.detail = "TLS alert from the server: " + tls_alert_name(t->alert_received);
    return f;
  }
  if (t && t->alert_sent >= 0) {
    f.type = map_tls_alert(t->alert_sent, false);
    f.detail = "TLS alert sent to the server: " + tls_alert_name(t->alert_sent);
    return f;
  }
  if (p.os_errno == ECONNRESET) return {FailureType::tcp_reset, Phase::tls, p.error_text};
  // OpenSSL's reason strings are the only signal left for these.
  const std::string& e = p.error_text;
  if (e.find("unexpected eof") != std::string::npos ||
      e.find("SSL_ERROR_SYSCALL") != std::string::npos) {
    return {FailureType::tcp_closed, Phase::tls, e};
  }
  if (e.find("wrong version number") != std::string::npos ||
      e.find("unsupported protocol") != std::string::npos ||
      e.find("no protocols available") != std::string::npos ||
      e.find("no shared cipher") != std::string::npos || e.find("no cipher") != std::string::npos) {
    f.type = FailureType::tls_version_or_cipher_mismatch;
  }
  return f;
}

}  // namespace

MappedFailure map_curl_failure(int code_int, const TransferProgress& p) {
  const auto code = static_cast<CURLcode>(code_int);
  const std::string text = p.error_text.empty() ? curl_easy_strerror(code) : p.error_text;
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return {FailureType::dns_name_not_resolved, Phase::dns, text};
    case CURLE_COULDNT_CONNECT: {
      FailureType t = map_socket_errno(static_cast<int>(p.os_errno));
      return {t, Phase::connect, text};
    }
    case CURLE_OPERATION_TIMEDOUT: {
      const Phase at = phase_reached(p);
      // Like a browser, a connection that could not be set up in time is tcp.timed_out; once it
      // is up, the check's own deadline expired while waiting for the server: timeout.
      if (at == Phase::connect || at == Phase::tls) return {FailureType::tcp_timed_out, at, text};
      return {FailureType::timeout, at, text};
    }
    case CURLE_SSL_CONNECT_ERROR:
      return tls_handshake_failure(p);
    case CURLE_PEER_FAILED_VERIFICATION: {
      MappedFailure f = tls_handshake_failure(p);
      if (p.tls && p.tls->verify && p.tls->verify_error != 0) return f;
      // The chain verified but libcurl's host name check failed (it keeps CURLINFO_SSL_VERIFYRESULT
      // at 1 in that case): the certificate does not name the host.
      return {FailureType::tls_cert_name_invalid, Phase::tls, text};
    }
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return {FailureType::tls_cert_pinned_key_not_in_cert_chain, Phase::tls, text};
    case CURLE_SSL_INVALIDCERTSTATUS:
      return {FailureType::tls_cert_invalid, Phase::tls, text};
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CLIENTCERT:
      return {FailureType::tls_bad_client_auth_cert, Phase::tls, text};
    case CURLE_SSL_CIPHER:
      return {FailureType::tls_version_or_cipher_mismatch, Phase::tls, text};
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_SHUTDOWN_FAILED:
      return {FailureType::tls_failed, Phase::tls, text};
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR: {
      Phase at = phase_reached(p);
      if (at == Phase::tls) return tls_handshake_failure(p);
      FailureType t = map_socket_errno(static_cast<int>(p.os_errno));
      if (t == FailureType::tcp_failed && p.os_errno == 0) t = FailureType::tcp_closed;
      return {t, at, text};
    }
    case CURLE_GOT_NOTHING:
      return {FailureType::http_response_invalid, Phase::ttfb, "empty response: " + text};
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_PARTIAL_FILE:
      return {FailureType::http_response_invalid, phase_reached(p), text};
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
      return {FailureType::http_protocol_error, phase_reached(p), text};
    case CURLE_TOO_MANY_REDIRECTS:
      return {FailureType::http_response_redirect_loop, Phase::transfer, text};
    case CURLE_ABORTED_BY_CALLBACK:
      return {FailureType::abandoned, phase_reached(p), text};
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_FAILED_INIT:
    case CURLE_OUT_OF_MEMORY:
      return {FailureType::http_failed, Phase::connect, text};
    default:
      return {FailureType::unknown, phase_reached(p), text};
  }
}

}  // namespace vantage::probe::net
