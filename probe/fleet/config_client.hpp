// The probe's central-configuration client (docs/configuration.md, "Central configuration"):
// polls `GET collector.config_url` every config_poll_interval with `Authorization: Bearer
// <token>` and `If-None-Match: <ETag of the cached copy>` (RFC 9110 §13.1.2), on the probe's
// io_context through CurlMulti.
//
//  * 200 with a document different from the cached one: validated through the loader
//    (validate_central_config, exactly what a reload will do); a rejected document is logged as
//    `probe.central_config_invalid` {url, etag, error: the ConfigError text} once per document and
//    NOT cached. A valid one is written to collector.config_cache atomically (temporary file,
//    fsync, rename, fsync of the directory), its ETag to `<config_cache>.etag`, then `reload` is
//    called (ProbeApp::request_reload).
//  * 200 with the cached bytes (e.g. the .etag file was lost): only the ETag is stored.
//  * 304: nothing.
//  * A network error, 401, 403, 404, 5xx or any other status: the cached copy stays in use;
//    `probe.central_config_unavailable` {url, status, error} is logged when this state begins or
//    changes (the collector's error text included), `probe.central_config_available` when a poll
//    succeeds again.
// The first poll runs at start(); without a cached copy yet its timeout is at most 5 s, so a
// fresh probe gets its checks at once when the collector is up, and keeps polling when not.
#pragma once

#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/time.hpp"
#include "probe/config.hpp"
#include "probe/net/http_client.hpp"

namespace vantage::probe::net {
class CurlMulti;
}

namespace vantage::probe::fleet {

class ConfigClient {
 public:
  // The largest document accepted (bytes); a larger one is an invalid document.
  static constexpr std::size_t kMaxDocumentBytes = 4u << 20;

  // `config_path`: the probe's local configuration file (served documents are validated against
  // it). `collector`: config_url/config_cache/config_poll_interval/request_timeout/tls and the
  // token at start. `current`: returns the collector settings running now (after reloads); read
  // before every poll, so a reload's token, config_url, config_poll_interval, config_cache, tls
  // and request_timeout apply from the next poll on (an empty config_url stops the polling).
  // Empty: `collector` stays in use. `reload`: called on the io_context after a new document was
  // cached. Reads the cached copy and its ETag (if present). Never throws for a missing cache.
  ConfigClient(boost::asio::io_context& io, net::CurlMulti& curl, const Clock& clock,
               std::string config_path, CollectorConfig collector, std::function<void()> reload,
               std::function<CollectorConfig()> current = {});
  ~ConfigClient();
  ConfigClient(const ConfigClient&) = delete;
  ConfigClient& operator=(const ConfigClient&) = delete;

  // Starts polling (first poll now). Call once, from the io_context's thread.
  void start();
  // Stops polling; an exchange in flight is cancelled.
  void stop();

  // ---- the pieces, public for tests ----
  enum class Outcome { not_modified, updated, unchanged, invalid, failed };
  // Takes the settings running now from `current` (reading the cache again when config_cache
  // changed). Returns false when config_url is empty now (polling ends).
  bool refresh();
  // The request of the next poll (URL, bearer token, If-None-Match when an ETag is known).
  net::HttpRequest build_request() const;
  // Acts on one exchange's result as described above (may write the cache and call reload).
  Outcome handle(const net::HttpExchange& exchange);
  // The ETag of the cached copy ("" when none), as the collector sent it (quotes included).
  const std::string& etag() const noexcept { return etag_; }
  bool has_cache() const noexcept { return has_cache_; }

  struct Stats {
    std::uint64_t polls = 0;
    std::uint64_t updates = 0;        // new documents cached (reload called)
    std::uint64_t not_modified = 0;   // 304
    std::uint64_t unchanged = 0;      // 200 with the cached bytes
    std::uint64_t invalid = 0;        // documents the loader rejected
    std::uint64_t failures = 0;       // network errors and non-200/304 answers, cache write errors
    std::int64_t last_update_ns = 0;  // UTC ns (Clock) of the last document cached, 0 = none
  };
  const Stats& stats() const noexcept { return stats_; }
  // True while the collector cannot be asked (network error, non-200/304 answer, cache write
  // error) or serves a document the probe rejects: the probe runs an older copy (or none).
  bool failing() const noexcept { return state_ != "ok" || !last_invalid_.empty(); }

 private:
  boost::asio::awaitable<void> loop();
  void set_state(std::string state, const net::HttpExchange* ex);
  bool write_cache(const std::string& body, const std::string& etag);
  void load_cache();

  boost::asio::io_context& io_;
  net::CurlMulti& curl_;
  const Clock& clock_;
  std::string config_path_;
  CollectorConfig collector_;
  std::function<void()> reload_;
  std::function<CollectorConfig()> current_;
  boost::asio::steady_timer timer_;
  boost::asio::cancellation_signal cancel_;
  bool started_ = false;
  bool stopped_ = false;
  bool has_cache_ = false;
  std::string cached_;  // bytes of the cached copy
  std::string etag_;
  std::string state_ = "ok";  // "ok" | "status:<code>" | "network:<error>" | "cache:<error>"
  std::string last_invalid_;  // config hash of the last rejected document (logged once)
  Stats stats_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Writes `bytes` to `path` atomically: `<path>.tmp` written and fsync'ed, renamed over `path`,
// the directory fsync'ed (created if missing). Throws std::system_error.
void write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace vantage::probe::fleet
