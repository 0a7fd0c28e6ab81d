#include "probe/net/tls_inspect.hpp"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <mutex>

namespace vantage::probe::net {
namespace {

int observation_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

TlsObservation* observation_of(const SSL* ssl) {
  if (!ssl) return nullptr;
  return static_cast<TlsObservation*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), observation_index()));
}

std::string name_text(const X509_NAME* name) {
  if (!name) return {};
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio) return {};
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(std::max(0L, len)));
  BIO_free(bio);
  return out;
}

std::optional<UtcTime> asn1_time(const ASN1_TIME* t) {
  if (!t) return std::nullopt;
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return std::nullopt;
  const std::time_t secs = timegm(&tm);
  return UtcTime{std::chrono::seconds(secs)};
}

// subjectAltName DNS names and IP addresses (RFC 5280 §4.2.1.6), at most 64 of each.
void subject_alt_names(X509* cert, TlsFacts& facts) {
  facts.dns_names.clear();
  facts.ip_addresses.clear();
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_DNS && facts.dns_names.size() < 64) {
      const auto* s = n->d.dNSName;
      facts.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                   static_cast<std::size_t>(ASN1_STRING_length(s)));
    } else if (n->type == GEN_IPADD && facts.ip_addresses.size() < 64) {
      const auto* s = n->d.iPAddress;
      char buf[INET6_ADDRSTRLEN] = {};
      const int len = ASN1_STRING_length(s);
      if (len == 4 || len == 16) {
        inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(s), buf, sizeof buf);
        facts.ip_addresses.emplace_back(buf);
      }
    }
  }
  GENERAL_NAMES_free(names);
}

std::optional<UtcTime> earliest_not_after(STACK_OF(X509) * chain) {
  std::optional<UtcTime> out;
  for (int i = 0; chain && i < sk_X509_num(chain); ++i) {
    auto t = asn1_time(X509_get0_notAfter(sk_X509_value(chain, i)));
    if (t && (!out || *t < *out)) out = t;
  }
  return out;
}

// Records chain facts from the certificates the peer presented, leaf first.
void record_chain(TlsObservation& obs, STACK_OF(X509) * chain) {
  if (!chain || sk_X509_num(chain) == 0) return;
  obs.chain_seen = true;
  obs.facts.chain_length = sk_X509_num(chain);
  X509* leaf = sk_X509_value(chain, 0);
  obs.facts.subject = name_text(X509_get_subject_name(leaf));
  obs.facts.issuer = name_text(X509_get_issuer_name(leaf));
  subject_alt_names(leaf, obs.facts);
  obs.facts.earliest_expiry = earliest_not_after(chain);
}

int verify_callback(int preverify_ok, X509_STORE_CTX* store) {
  // Runs inside OpenSSL inside libcurl: record only, never change the verdict, never throw.
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  TlsObservation* obs = observation_of(ssl);
  if (!obs) return preverify_ok;
  if (!obs->chain_seen) record_chain(*obs, X509_STORE_CTX_get0_untrusted(store));
  if (!preverify_ok && obs->verify_error == 0) {
    obs->verify_error = X509_STORE_CTX_get_error(store);
    obs->verify_error_depth = X509_STORE_CTX_get_error_depth(store);
    obs->facts.verify_error = x509_error_text(obs->verify_error);
  }
  return preverify_ok;
}

void info_callback(const SSL* ssl, int where, int ret) {
  TlsObservation* obs = observation_of(ssl);
  if (!obs) return;
  if ((where & SSL_CB_HANDSHAKE_START) && obs->handshake_started_ns == 0) {
    obs->handshake_started_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::steady_clock::now().time_since_epoch())
                                    .count();
  }
  if (where & SSL_CB_ALERT) {
    const int desc = ret & 0xff;
    if (where & SSL_CB_READ)
      obs->alert_received = desc;
    else
      obs->alert_sent = desc;
  }
  if (where & SSL_CB_HANDSHAKE_DONE) {
    obs->handshake_done = true;
    obs->facts.version = SSL_get_version(ssl);
    if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl))
      obs->facts.cipher = SSL_CIPHER_get_name(c);
    record_chain(*obs, SSL_get_peer_cert_chain(ssl));
    // The chain OpenSSL verified, up to the trust anchor (blackbox_exporter's "last chain").
    obs->facts.verified_chain_expiry = earliest_not_after(SSL_get0_verified_chain(ssl));
  }
}

}  // namespace

CURLcode tls_ctx_callback(CURL*, void* ssl_ctx, void* observation) {
  auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
  auto* obs = static_cast<TlsObservation*>(observation);
  if (!ctx || !obs) return CURLE_OK;
  // Each connection is observed afresh (the configuration fields survive reset()).
  detach_tls_observation(*obs);
  obs->reset();
  SSL_CTX_set_ex_data(ctx, observation_index(), obs);
  if (SSL_CTX_up_ref(ctx) == 1) obs->attached_ctx = ctx;
  if (obs->ca_file) {
    // Shared and reference-counted: parsed once per process, not once per connection.
    if (X509_STORE* store = shared_ca_store(*obs->ca_file)) SSL_CTX_set1_cert_store(ctx, store);
  }
  // libcurl 7.88 sets its mode with a NULL callback before calling us; keep the mode.
  SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), &verify_callback);
  SSL_CTX_set_info_callback(ctx, &info_callback);
  return CURLE_OK;
}

void detach_tls_observation(TlsObservation& obs) {
  auto* ctx = static_cast<SSL_CTX*>(obs.attached_ctx);
  if (!ctx) return;
  if (SSL_CTX_get_ex_data(ctx, observation_index()) == &obs)
    SSL_CTX_set_ex_data(ctx, observation_index(), nullptr);
  SSL_CTX_free(ctx);  // our reference; the connection keeps its own
  obs.attached_ctx = nullptr;
}

namespace {

struct CachedStore {
  CachedStore() = default;
  CachedStore(const CachedStore&) = delete;
  CachedStore& operator=(const CachedStore&) = delete;
  ~CachedStore() {
    if (store) X509_STORE_free(store);  // at exit; connections hold their own references
  }
  X509_STORE* store = nullptr;
  struct timespec mtime {};
  std::chrono::steady_clock::time_point checked{};
};

}  // namespace

const std::string& default_ca_path() {
  // libcurl's built-in default (CURLINFO_CAINFO, libcurl 7.84+), so a check trusts exactly what
  // libcurl would have trusted.
  static const std::string path = [] {
    std::string out;
    if (CURL* e = curl_easy_init()) {
      char* p = nullptr;
      if (curl_easy_getinfo(e, CURLINFO_CAINFO, &p) == CURLE_OK && p) out = p;
      curl_easy_cleanup(e);
    }
    return out;
  }();
  return path;
}

X509_STORE* shared_ca_store(const std::string& ca_file) {
  static std::mutex mutex;
  static std::map<std::string, CachedStore> cache;
  const std::string& path = ca_file.empty() ? default_ca_path() : ca_file;
  if (path.empty()) return nullptr;
  std::lock_guard lock(mutex);
  CachedStore& entry = cache[path];
  const auto now = std::chrono::steady_clock::now();
  if (entry.store && now - entry.checked < std::chrono::seconds(30)) return entry.store;
  entry.checked = now;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return entry.store;
  if (entry.store && st.st_mtim.tv_sec == entry.mtime.tv_sec &&
      st.st_mtim.tv_nsec == entry.mtime.tv_nsec) {
    return entry.store;
  }
  X509_STORE* fresh = X509_STORE_new();
  if (!fresh || X509_STORE_load_file(fresh, path.c_str()) != 1) {
    if (fresh) X509_STORE_free(fresh);
    return entry.store;  // keep the previous store (or none: libcurl loads the file itself)
  }
  if (entry.store) X509_STORE_free(entry.store);  // connections holding it keep their reference
  entry.store = fresh;
  entry.mtime = st.st_mtim;
  return entry.store;
}

bool check_ca_file(const std::string& path, std::string& error) {
  X509_STORE* store = X509_STORE_new();
  if (!store) {
    error = "out of memory";
    return false;
  }
  const bool loaded = X509_STORE_load_file(store, path.c_str()) == 1;
  STACK_OF(X509_OBJECT)* objects = X509_STORE_get0_objects(store);
  const bool has_certs = loaded && objects && sk_X509_OBJECT_num(objects) > 0;
  X509_STORE_free(store);
  if (!has_certs) error = "no PEM certificate could be read from \"" + path + "\"";
  return has_certs;
}

std::string x509_error_text(int code) { return X509_verify_cert_error_string(code); }

std::string tls_alert_name(int alert) {
  const char* s = SSL_alert_desc_string_long(alert);
  return s ? s : "unknown";
}

}  // namespace vantage::probe::net
