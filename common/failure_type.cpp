#include "common/failure_type.hpp"

#include <array>
#include <utility>

namespace vantage {
namespace {

constexpr std::array<std::pair<FailureType, std::string_view>, 32> kNames{{
    {FailureType::ok, "ok"},
    {FailureType::dns_unreachable, "dns.unreachable"},
    {FailureType::dns_name_not_resolved, "dns.name_not_resolved"},
    {FailureType::dns_failed, "dns.failed"},
    {FailureType::dns_address_changed, "dns.address_changed"},
    {FailureType::tcp_timed_out, "tcp.timed_out"},
    {FailureType::tcp_closed, "tcp.closed"},
    {FailureType::tcp_reset, "tcp.reset"},
    {FailureType::tcp_refused, "tcp.refused"},
    {FailureType::tcp_aborted, "tcp.aborted"},
    {FailureType::tcp_address_invalid, "tcp.address_invalid"},
    {FailureType::tcp_address_unreachable, "tcp.address_unreachable"},
    {FailureType::tcp_failed, "tcp.failed"},
    {FailureType::tls_version_or_cipher_mismatch, "tls.version_or_cipher_mismatch"},
    {FailureType::tls_bad_client_auth_cert, "tls.bad_client_auth_cert"},
    {FailureType::tls_cert_name_invalid, "tls.cert.name_invalid"},
    {FailureType::tls_cert_date_invalid, "tls.cert.date_invalid"},
    {FailureType::tls_cert_authority_invalid, "tls.cert.authority_invalid"},
    {FailureType::tls_cert_invalid, "tls.cert.invalid"},
    {FailureType::tls_cert_revoked, "tls.cert.revoked"},
    {FailureType::tls_cert_pinned_key_not_in_cert_chain, "tls.cert.pinned_key_not_in_cert_chain"},
    {FailureType::tls_protocol_error, "tls.protocol.error"},
    {FailureType::tls_failed, "tls.failed"},
    {FailureType::http_error, "http.error"},
    {FailureType::http_protocol_error, "http.protocol.error"},
    {FailureType::http_response_invalid, "http.response.invalid"},
    {FailureType::http_response_redirect_loop, "http.response.redirect_loop"},
    {FailureType::http_failed, "http.failed"},
    {FailureType::abandoned, "abandoned"},
    {FailureType::unknown, "unknown"},
    {FailureType::assertion_failed, "assertion.failed"},
    {FailureType::timeout, "timeout"},
}};

constexpr std::array<FailureType, kNames.size()> make_all() {
  std::array<FailureType, kNames.size()> all{};
  for (std::size_t i = 0; i < kNames.size(); ++i) all[i] = kNames[i].first;
  return all;
}
constexpr auto kAll = make_all();

}  // namespace

std::string_view to_string(FailureType type) noexcept {
  for (const auto& [t, name] : kNames) {
    if (t == type) return name;
  }
  return "unknown";
}

std::optional<FailureType> parse_failure_type(std::string_view name) noexcept {
  for (const auto& [t, n] : kNames) {
    if (n == name) return t;
  }
  return std::nullopt;
}

NelPhase nel_phase(FailureType type) noexcept {
  switch (type) {
    case FailureType::dns_unreachable:
    case FailureType::dns_name_not_resolved:
    case FailureType::dns_failed:
    case FailureType::dns_address_changed:
      return NelPhase::dns;
    case FailureType::tcp_timed_out:
    case FailureType::tcp_closed:
    case FailureType::tcp_reset:
    case FailureType::tcp_refused:
    case FailureType::tcp_aborted:
    case FailureType::tcp_address_invalid:
    case FailureType::tcp_address_unreachable:
    case FailureType::tcp_failed:
    case FailureType::tls_version_or_cipher_mismatch:
    case FailureType::tls_bad_client_auth_cert:
    case FailureType::tls_cert_name_invalid:
    case FailureType::tls_cert_date_invalid:
    case FailureType::tls_cert_authority_invalid:
    case FailureType::tls_cert_invalid:
    case FailureType::tls_cert_revoked:
    case FailureType::tls_cert_pinned_key_not_in_cert_chain:
    case FailureType::tls_protocol_error:
    case FailureType::tls_failed:
      return NelPhase::connection;
    default:
      return NelPhase::application;
  }
}

std::string_view to_string(NelPhase phase) noexcept {
  switch (phase) {
    case NelPhase::dns:
      return "dns";
    case NelPhase::connection:
      return "connection";
    case NelPhase::application:
      return "application";
  }
  return "application";
}

std::span<const FailureType> all_failure_types() noexcept { return kAll; }

}  // namespace vantage
