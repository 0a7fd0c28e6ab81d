#include "probe/net/failure_mapping.hpp"

#include <ares.h>
#include <curl/curl.h>
#include <openssl/x509_vfy.h>

#include <catch2/catch.hpp>
#include <cerrno>

#include "probe/net/tls_inspect.hpp"

using namespace vantage;
using namespace vantage::probe::net;

TEST_CASE("connect errors map by errno", "[probe][mapping]") {
  TransferProgress p;
  p.os_errno = ECONNREFUSED;
  CHECK(map_curl_failure(CURLE_COULDNT_CONNECT, p).type == FailureType::tcp_refused);
  CHECK(map_curl_failure(CURLE_COULDNT_CONNECT, p).phase == Phase::connect);
  p.os_errno = ENETUNREACH;
  CHECK(map_curl_failure(CURLE_COULDNT_CONNECT, p).type == FailureType::tcp_address_unreachable);
  p.os_errno = EHOSTUNREACH;
  CHECK(map_curl_failure(CURLE_COULDNT_CONNECT, p).type == FailureType::tcp_address_unreachable);
  p.os_errno = 0;
  CHECK(map_curl_failure(CURLE_COULDNT_CONNECT, p).type == FailureType::tcp_failed);
}

TEST_CASE("timeouts map by how far the transfer got", "[probe][mapping]") {
  TransferProgress p;
  p.https = true;
  auto f = map_curl_failure(CURLE_OPERATION_TIMEDOUT, p);
  CHECK(f.type == FailureType::tcp_timed_out);
  CHECK(f.phase == Phase::connect);
  p.connect_us = 100;
  f = map_curl_failure(CURLE_OPERATION_TIMEDOUT, p);
  CHECK(f.type == FailureType::tcp_timed_out);
  CHECK(f.phase == Phase::tls);
  p.appconnect_us = 200;
  p.pretransfer_us = 210;
  f = map_curl_failure(CURLE_OPERATION_TIMEDOUT, p);
  CHECK(f.type == FailureType::timeout);
  CHECK(f.phase == Phase::ttfb);
  p.starttransfer_us = 300;
  f = map_curl_failure(CURLE_OPERATION_TIMEDOUT, p);
  CHECK(f.type == FailureType::timeout);
  CHECK(f.phase == Phase::transfer);
}

TEST_CASE("certificate failures map by the X509 verification error", "[probe][mapping]") {
  TlsObservation obs;
  TransferProgress p;
  p.https = true;
  p.connect_us = 10;
  p.tls = &obs;
  obs.verify_error = X509_V_ERR_CERT_HAS_EXPIRED;
  CHECK(map_curl_failure(CURLE_PEER_FAILED_VERIFICATION, p).type ==
        FailureType::tls_cert_date_invalid);
  obs.verify_error = X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT;
  CHECK(map_curl_failure(CURLE_PEER_FAILED_VERIFICATION, p).type ==
        FailureType::tls_cert_authority_invalid);
  obs.verify_error = X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
  CHECK(map_curl_failure(CURLE_PEER_FAILED_VERIFICATION, p).type ==
        FailureType::tls_cert_authority_invalid);
  obs.verify_error = X509_V_ERR_CERT_REVOKED;
  CHECK(map_curl_failure(CURLE_PEER_FAILED_VERIFICATION, p).type == FailureType::tls_cert_revoked);
  obs.verify_error = 0;  // chain fine, libcurl's host name check failed
  const auto f = map_curl_failure(CURLE_PEER_FAILED_VERIFICATION, p);
  CHECK(f.type == FailureType::tls_cert_name_invalid);
  CHECK(f.phase == Phase::tls);
}

TEST_CASE("handshake failures map by TLS alert", "[probe][mapping]") {
  TlsObservation obs;
  TransferProgress p;
  p.https = true;
  p.connect_us = 10;
  p.tls = &obs;
  obs.alert_received = 70;  // protocol_version
  CHECK(map_curl_failure(CURLE_SSL_CONNECT_ERROR, p).type ==
        FailureType::tls_version_or_cipher_mismatch);
  obs.alert_received = 116;  // certificate_required
  CHECK(map_curl_failure(CURLE_SSL_CONNECT_ERROR, p).type == FailureType::tls_bad_client_auth_cert);
  obs.alert_received = 80;  // internal_error
  CHECK(map_curl_failure(CURLE_SSL_CONNECT_ERROR, p).type == FailureType::tls_protocol_error);
  obs.alert_received = -1;
  p.os_errno = ECONNRESET;
  CHECK(map_curl_failure(CURLE_SSL_CONNECT_ERROR, p).type == FailureType::tcp_reset);
}

TEST_CASE("HTTP-level libcurl errors map to http.* types", "[probe][mapping]") {
  TransferProgress p;
  p.connect_us = 10;
  p.pretransfer_us = 11;
  CHECK(map_curl_failure(CURLE_GOT_NOTHING, p).type == FailureType::http_response_invalid);
  CHECK(map_curl_failure(CURLE_WEIRD_SERVER_REPLY, p).type == FailureType::http_response_invalid);
  CHECK(map_curl_failure(CURLE_TOO_MANY_REDIRECTS, p).type ==
        FailureType::http_response_redirect_loop);
  CHECK(map_curl_failure(CURLE_HTTP2, p).type == FailureType::http_protocol_error);
  p.os_errno = ECONNRESET;
  CHECK(map_curl_failure(CURLE_RECV_ERROR, p).type == FailureType::tcp_reset);
  p.os_errno = 0;
  CHECK(map_curl_failure(CURLE_RECV_ERROR, p).type == FailureType::tcp_closed);
}

TEST_CASE("c-ares statuses map to dns.* types", "[probe][mapping]") {
  CHECK(map_ares_failure(ARES_ENOTFOUND, "r").type == FailureType::dns_name_not_resolved);
  CHECK(map_ares_failure(ARES_ENODATA, "r").type == FailureType::dns_name_not_resolved);
  CHECK(map_ares_failure(ARES_ESERVFAIL, "r").type == FailureType::dns_failed);
  CHECK(map_ares_failure(ARES_EREFUSED, "r").type == FailureType::dns_failed);
  CHECK(map_ares_failure(ARES_ETIMEOUT, "r").type == FailureType::dns_unreachable);
  CHECK(map_ares_failure(ARES_ECONNREFUSED, "r").type == FailureType::dns_unreachable);
  CHECK(map_ares_failure(ARES_ETIMEOUT, "127.0.0.1:53").detail ==
        "no answer from the resolver (resolver 127.0.0.1:53)");
  CHECK(map_dns_rcode(3) == FailureType::dns_name_not_resolved);
  CHECK(map_dns_rcode(2) == FailureType::dns_failed);
  CHECK(map_dns_rcode(0) == FailureType::ok);
}
