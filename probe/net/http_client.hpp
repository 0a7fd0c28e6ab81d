// One HTTP(S) exchange over CurlMulti, with everything a probe needs to judge it: status,
// headers and (bounded) body of the final response, libcurl's phase timestamps, the TLS facts
// and the handshake's failure reason. This is the only code that configures libcurl easy handles.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "probe/net/failure_mapping.hpp"
#include "probe/net/tls_inspect.hpp"

namespace vantage::probe::net {

class CurlMulti;

struct TlsClientOptions {
  std::string ca_file;  // PEM bundle to trust instead of the system store
  bool insecure_skip_verify = false;
  std::string min_version;       // "1.0" | "1.1" | "1.2" | "1.3" | "" (libcurl default)
  std::string max_version;       // same, "" = no maximum
  std::string client_cert_file;  // PEM, for mutual TLS
  std::string client_key_file;
};

// Cookies and connections shared by the requests of one journey run (a CURLSH with
// CURL_LOCK_DATA_COOKIE and CURL_LOCK_DATA_CONNECT): a cookie set by one step is sent by the next,
// and steps reuse their keep-alive connections like a browser. Destroying it closes them.
class CurlShare {
 public:
  CurlShare();
  ~CurlShare();
  CurlShare(const CurlShare&) = delete;
  CurlShare& operator=(const CurlShare&) = delete;
  void* handle() const noexcept { return handle_; }

 private:
  void* handle_ = nullptr;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::string> body;
  bool follow_redirects = true;
  int max_redirects = 10;
  // Addresses to use for the URL's host:port (CURLOPT_RESOLVE); libcurl tries them in order with
  // Happy Eyeballs (RFC 8305) between families. Empty: the URL's host is an IP literal.
  std::vector<std::string> pinned_addresses;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds timeout{10000};  // whole exchange
  TlsClientOptions tls;
  std::size_t max_body_bytes = 1 << 20;  // kept for assertions; the rest is counted, not stored
  std::string http_version;              // "1.1" | "2" | "" (libcurl default: h2 over TLS)
  bool connect_only = false;             // TCP (+TLS for https) handshake only
  bool fresh_connection = true;          // no connection or TLS session reuse
  const CurlShare* share = nullptr;      // journey runs: cookie jar and connections (enables cookies)
  bool list_cookies = false;             // fill HttpExchange::cookies from the jar afterwards
  std::string user_agent = "vantage-probe/0.1";
};

struct HttpExchange {
  int curl_code = 0;       // CURLcode; 0 = the exchange completed (any status)
  bool cancelled = false;  // cancelled before completion
  std::string error_text;
  long status = 0;                                           // final response status, 0 if none
  std::string http_version;                                  // "1.0", "1.1", "2", "3"
  std::vector<std::pair<std::string, std::string>> headers;  // final response; names lower case
  std::vector<std::pair<std::string, std::string>> cookies;  // the jar after the exchange (name, value)
  std::string body;                                          // first max_body_bytes bytes
  std::int64_t body_bytes = 0;
  std::int64_t content_length = -1;
  int redirects = 0;
  std::string effective_url;
  std::string primary_ip;  // address connected to
  int primary_port = 0;
  // Cumulative libcurl timestamps from the start, µs (summed over redirects), 0 = not reached.
  std::int64_t namelookup_us = 0;
  std::int64_t total_us = 0;
  TransferProgress progress;  // connect/appconnect/pretransfer/starttransfer, errno, https
  TlsObservation tls;

  bool completed() const noexcept { return curl_code == 0 && !cancelled; }
  // The first value of a response header (name compared case-insensitively), or nullptr.
  const std::string* header(std::string_view name) const;
  // The failure of an exchange that did not complete (curl_code != 0).
  MappedFailure failure() const;
};

// Runs one exchange. Never throws for network errors (they are in the result); throws
// boost::system::system_error(operation_aborted) only when the awaiting coroutine is cancelled.
boost::asio::awaitable<HttpExchange> http_exchange(CurlMulti& multi, const HttpRequest& request);

}  // namespace vantage::probe::net
