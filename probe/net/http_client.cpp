#include "probe/net/http_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>
#include <memory>

#include "probe/net/curl_multi.hpp"
#include "probe/net/errors.hpp"
#include "probe/net/url.hpp"

namespace vantage::probe::net {

namespace asio = boost::asio;

namespace {

struct EasyDeleter {
  void operator()(CURL* e) const { curl_easy_cleanup(e); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

struct Sink {
  HttpExchange* out;
  std::size_t max_body;
  std::size_t header_bytes = 0;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* userp) {
  auto* s = static_cast<Sink*>(userp);
  const std::size_t len = size * n;
  s->out->body_bytes += static_cast<std::int64_t>(len);
  if (s->out->body.size() < s->max_body) {
    s->out->body.append(data, std::min(len, s->max_body - s->out->body.size()));
  }
  return len;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* userp) {
  auto* s = static_cast<Sink*>(userp);
  const std::size_t len = size * n;
  std::string_view line(data, len);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    // A new response (after a redirect or a 1xx): keep only the final response's headers.
    s->out->headers.clear();
    s->header_bytes = 0;
    return len;
  }
  s->header_bytes += len;
  if (s->header_bytes > 256 * 1024) return len;  // bound what we keep from a hostile server
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return len;
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  s->out->headers.emplace_back(std::move(name), std::string(value));
  return len;
}

long tls_version_flag(const std::string& v, bool max) {
  if (max) {
    if (v == "1.0") return CURL_SSLVERSION_MAX_TLSv1_0;
    if (v == "1.1") return CURL_SSLVERSION_MAX_TLSv1_1;
    if (v == "1.2") return CURL_SSLVERSION_MAX_TLSv1_2;
    if (v == "1.3") return CURL_SSLVERSION_MAX_TLSv1_3;
    return CURL_SSLVERSION_MAX_DEFAULT;
  }
  if (v == "1.0") return CURL_SSLVERSION_TLSv1_0;
  if (v == "1.1") return CURL_SSLVERSION_TLSv1_1;
  if (v == "1.2") return CURL_SSLVERSION_TLSv1_2;
  if (v == "1.3") return CURL_SSLVERSION_TLSv1_3;
  return CURL_SSLVERSION_DEFAULT;
}

std::string version_text(long v) {
  switch (v) {
    case CURL_HTTP_VERSION_1_0:
      return "1.0";
    case CURL_HTTP_VERSION_1_1:
      return "1.1";
    case CURL_HTTP_VERSION_2_0:
      return "2";
    case CURL_HTTP_VERSION_3:
      return "3";
    default:
      return "";
  }
}

}  // namespace

CurlShare::CurlShare() {
  CURLSH* sh = curl_share_init();
  if (sh) {
    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  }
  handle_ = sh;
}

CurlShare::~CurlShare() {
  if (handle_) curl_share_cleanup(static_cast<CURLSH*>(handle_));
}

const std::string* HttpExchange::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return &v;
    }
  }
  return nullptr;
}

MappedFailure HttpExchange::failure() const {
  if (cancelled) return {FailureType::abandoned, Phase::connect, "cancelled"};
  TransferProgress p = progress;
  p.tls = &tls;
  return map_curl_failure(curl_code, p);
}

asio::awaitable<HttpExchange> http_exchange(CurlMulti& multi, const HttpRequest& req) {
  HttpExchange out;
  // The connection may outlive this exchange (keep-alive in a CurlShare): detach the TLS
  // observation whichever way this coroutine ends, cancellation and exceptions included.
  struct DetachTls {
    TlsObservation& obs;
    ~DetachTls() { detach_tls_observation(obs); }
  } detach_tls{out.tls};
  EasyPtr easy(curl_easy_init());
  if (!easy) {
    out.curl_code = CURLE_FAILED_INIT;
    out.error_text = "curl_easy_init failed";
    co_return out;
  }
  CURL* e = easy.get();
  char errbuf[CURL_ERROR_SIZE] = {};
  Sink sink{&out, req.max_body_bytes};

  std::string parse_error;
  const auto url = parse_http_url(req.url, parse_error);
  out.progress.https = url && url->scheme == "https";

  curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &sink);
  curl_easy_setopt(e, CURLOPT_USERAGENT, req.user_agent.c_str());
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::max<std::int64_t>(1, req.connect_timeout.count())));
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(std::max<std::int64_t>(1, req.timeout.count())));
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, req.follow_redirects ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, static_cast<long>(req.max_redirects));
  if (req.fresh_connection) {
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
  }
  if (req.connect_only) curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
  if (req.share && req.share->handle()) {
    curl_easy_setopt(e, CURLOPT_SHARE, static_cast<CURLSH*>(req.share->handle()));
    curl_easy_setopt(e, CURLOPT_COOKIEFILE, "");  // enable the (shared) cookie engine
  }
  if (req.http_version == "1.1")
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  else if (req.http_version == "2")
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);

  // Method and body.
  if (req.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (req.method != "GET" || req.body) {
    if (req.body) {
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body->size()));
      curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req.body->c_str());
    } else if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
      // An empty body, sent as one (Content-Length: 0): without it curl would send a GET.
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(0));
      curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, "");
    }
    if (req.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }

  SlistPtr headers;
  for (const auto& [name, value] : req.headers) {
    const std::string line = value.empty() ? name + ";" : name + ": " + value;
    curl_slist* grown = curl_slist_append(headers.get(), line.c_str());
    if (grown) {
      (void)headers.release();
      headers.reset(grown);
    }
  }
  if (req.body) {
    // libcurl would otherwise send "Expect: 100-continue" for bodies over 1 MiB and wait.
    curl_slist* grown = curl_slist_append(headers.get(), "Expect:");
    if (grown) {
      (void)headers.release();
      headers.reset(grown);
    }
  }
  if (headers) curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers.get());

  SlistPtr resolve;
  if (url && !url->host_is_ip && !req.pinned_addresses.empty()) {
    std::string entry = "+" + url->host + ":" + std::to_string(url->port) + ":";
    for (std::size_t i = 0; i < req.pinned_addresses.size(); ++i) {
      if (i) entry += ",";
      const std::string& a = req.pinned_addresses[i];
      entry += a.find(':') != std::string::npos ? "[" + a + "]" : a;
    }
    resolve.reset(curl_slist_append(nullptr, entry.c_str()));
    curl_easy_setopt(e, CURLOPT_RESOLVE, resolve.get());
  }

  if (out.progress.https || req.follow_redirects) {
    curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, &tls_ctx_callback);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, &out.tls);
    out.tls.verify = !req.tls.insecure_skip_verify;
    if (!req.tls.insecure_skip_verify) {
      // Our callback installs a shared trust store (see shared_ca_store): libcurl must not parse
      // a CA file for every connection.
      out.tls.ca_file = &req.tls.ca_file;
      curl_easy_setopt(e, CURLOPT_CAINFO, nullptr);
      curl_easy_setopt(e, CURLOPT_CAPATH, nullptr);
    }
    if (req.tls.insecure_skip_verify) {
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    curl_easy_setopt(
        e, CURLOPT_SSLVERSION,
        tls_version_flag(req.tls.min_version, false) | tls_version_flag(req.tls.max_version, true));
    if (!req.tls.client_cert_file.empty()) {
      curl_easy_setopt(e, CURLOPT_SSLCERT, req.tls.client_cert_file.c_str());
    }
    if (!req.tls.client_key_file.empty()) {
      curl_easy_setopt(e, CURLOPT_SSLKEY, req.tls.client_key_file.c_str());
    }
  }

  boost::system::error_code ec;
  const auto started = std::chrono::steady_clock::now();
  co_await multi.async_perform(e, asio::redirect_error(asio::use_awaitable, ec));

  // CurlMulti completes with a boost::system::error_code wrapping a std::error_code: compare
  // categories on the std side, where the wrapped category is preserved.
  const std::error_code std_ec = ec;
  if (ec == asio::error::operation_aborted) {
    out.cancelled = true;
  } else if (std_ec && std_ec.category() == curl_category()) {
    out.curl_code = std_ec.value();
  } else if (ec) {
    out.curl_code = CURLE_FAILED_INIT;
    out.error_text = ec.message();
  }
  if (errbuf[0])
    out.error_text = errbuf;
  else if (out.curl_code && out.error_text.empty())
    out.error_text = curl_easy_strerror(static_cast<CURLcode>(out.curl_code));

  long status = 0, version = 0, redirects = 0, os_errno = 0, port = 0;
  curl_off_t t = 0, cl = -1;
  char* str = nullptr;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
  curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &redirects);
  curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
  curl_easy_getinfo(e, CURLINFO_PRIMARY_PORT, &port);
  curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
  out.status = status;
  out.http_version = status ? version_text(version) : "";
  out.redirects = static_cast<int>(redirects);
  out.primary_port = static_cast<int>(port);
  out.content_length = cl;
  out.progress.os_errno = os_errno;
  out.progress.error_text = out.error_text;
  if (curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &str) == CURLE_OK && str)
    out.effective_url = str;
  if (curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &str) == CURLE_OK && str) out.primary_ip = str;
  if (curl_easy_getinfo(e, CURLINFO_NAMELOOKUP_TIME_T, &t) == CURLE_OK) out.namelookup_us = t;
  if (curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &t) == CURLE_OK) out.progress.connect_us = t;
  if (curl_easy_getinfo(e, CURLINFO_APPCONNECT_TIME_T, &t) == CURLE_OK)
    out.progress.appconnect_us = t;
  if (curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &t) == CURLE_OK)
    out.progress.pretransfer_us = t;
  if (curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &t) == CURLE_OK)
    out.progress.starttransfer_us = t;
  if (curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &t) == CURLE_OK) out.total_us = t;
  if (req.list_cookies) {
    curl_slist* cookies = nullptr;
    if (curl_easy_getinfo(e, CURLINFO_COOKIELIST, &cookies) == CURLE_OK) {
      for (curl_slist* c = cookies; c; c = c->next) {
        // Netscape format: domain, subdomains, path, secure, expiry, name, value (tab-separated).
        std::string_view line(c->data);
        std::vector<std::string_view> f;
        std::size_t start = 0;
        for (;;) {
          const auto tab = line.find('\t', start);
          f.push_back(line.substr(
              start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
          if (tab == std::string_view::npos) break;
          start = tab + 1;
        }
        if (f.size() >= 7) out.cookies.emplace_back(std::string(f[5]), std::string(f[6]));
      }
      curl_slist_free_all(cookies);
    }
  }
  if (out.progress.connect_us == 0 && out.tls.handshake_started_ns > 0) {
    // A TLS handshake began, so TCP was connected: libcurl 7.88 leaves CONNECT_TIME at 0 when
    // the handshake then fails, so take the connect time from the handshake's start.
    const auto since =
        std::chrono::nanoseconds(out.tls.handshake_started_ns) -
        std::chrono::duration_cast<std::chrono::nanoseconds>(started.time_since_epoch());
    out.progress.connect_us = std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::microseconds>(since).count());
  }
  // The final URL decides whether the connection that answered used TLS.
  if (!out.effective_url.empty()) {
    out.progress.https = out.effective_url.rfind("https://", 0) == 0;
  }
  detach_tls_observation(out.tls);  // before `out` is moved to the caller
  if (out.cancelled) {
    throw boost::system::system_error(asio::error::operation_aborted);
  }
  co_return out;
}

}  // namespace vantage::probe::net
