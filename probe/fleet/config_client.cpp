#include "probe/fleet/config_client.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "common/config_node.hpp"
#include "common/log.hpp"
#include "probe/fleet/loop_end.hpp"
#include "probe/net/curl_multi.hpp"

namespace vantage::probe::fleet {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return buf.str();
}

// The first 300 bytes of a response body, for log lines ({"error":"unknown token"}).
std::string excerpt(const std::string& body) {
  std::string out = body.substr(0, 300);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

void write_all(int fd, const std::string& bytes, const std::string& path) {
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "write " + path);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& bytes) {
  fs::path target(path);
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::system_error(ec, "create directory " + dir.string());
  // A temporary name of its own (two probes sharing a directory never write one file at once).
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "create " + tmp);
  ::fchmod(fd, 0640);
  try {
    write_all(fd, bytes, tmp);
    if (::fsync(fd) != 0) throw std::system_error(errno, std::generic_category(), "fsync " + tmp);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::system_error(err, std::generic_category(), "close " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::system_error(err, std::generic_category(), "rename " + tmp);
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // the rename itself reaches the disk
    ::close(dfd);
  }
}

ConfigClient::ConfigClient(asio::io_context& io, net::CurlMulti& curl, const Clock& clock,
                           std::string config_path, CollectorConfig collector,
                           std::function<void()> reload, std::function<CollectorConfig()> current)
    : io_(io),
      curl_(curl),
      clock_(clock),
      config_path_(std::move(config_path)),
      collector_(std::move(collector)),
      reload_(std::move(reload)),
      current_(std::move(current)),
      timer_(io) {
  load_cache();
}

void ConfigClient::load_cache() {
  has_cache_ = false;
  cached_.clear();
  etag_.clear();
  if (auto bytes = read_file(collector_.config_cache)) {
    has_cache_ = true;
    cached_ = std::move(*bytes);
    if (auto etag = read_file(collector_.config_cache + ".etag")) {
      etag_ = *etag;
      while (!etag_.empty() && (etag_.back() == '\n' || etag_.back() == '\r')) etag_.pop_back();
    }
  }
}

bool ConfigClient::refresh() {
  if (current_) {
    CollectorConfig next = current_();
    const bool cache_moved = next.config_cache != collector_.config_cache;
    collector_ = std::move(next);
    if (cache_moved) load_cache();
  }
  return !collector_.config_url.empty();
}

ConfigClient::~ConfigClient() {
  *alive_ = false;
  stop();
}

void ConfigClient::start() {
  if (started_) return;
  started_ = true;
  if (!has_cache_) {
    log::warn("probe.central_config_missing",
              {{"url", collector_.config_url},
               {"cache", collector_.config_cache},
               {"message",
                "no cached central configuration yet: running the local checks only until the "
                "collector serves one"}});
  }
  asio::co_spawn(io_, loop(),
                 asio::bind_cancellation_slot(
                     cancel_.slot(), LogLoopEnd{"probe.central_config_client_failed", alive_}));
}

void ConfigClient::stop() {
  if (stopped_) return;
  stopped_ = true;
  timer_.cancel();
  if (started_) cancel_.emit(asio::cancellation_type::terminal);
}

net::HttpRequest ConfigClient::build_request() const {
  net::HttpRequest req;
  req.method = "GET";
  req.url = collector_.config_url;
  req.headers = {{"Authorization", "Bearer " + collector_.token}, {"Accept", "application/yaml"}};
  if (has_cache_ && !etag_.empty()) req.headers.emplace_back("If-None-Match", etag_);
  req.follow_redirects = false;
  req.fresh_connection = false;
  auto timeout = std::min(collector_.request_timeout, collector_.config_poll_interval);
  if (!has_cache_) timeout = std::min<std::chrono::nanoseconds>(timeout, std::chrono::seconds(5));
  req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  req.connect_timeout = req.timeout;
  req.tls.ca_file = collector_.ca_file;
  req.tls.insecure_skip_verify = collector_.insecure_skip_verify;
  req.max_body_bytes = kMaxDocumentBytes + 1;
  return req;
}

asio::awaitable<void> ConfigClient::loop() {
  while (!stopped_) {
    if (!refresh()) {
      log::info("probe.central_config_stopped",
                {{"reason", "collector.config_url is no longer configured"}});
      co_return;
    }
    const net::HttpRequest req = build_request();
    const net::HttpExchange ex = co_await net::http_exchange(curl_, req);
    if (stopped_ || ex.cancelled) co_return;
    handle(ex);
    timer_.expires_after(collector_.config_poll_interval);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

void ConfigClient::set_state(std::string state, const net::HttpExchange* ex) {
  if (state == state_) return;
  const bool was_ok = state_ == "ok";
  state_ = std::move(state);
  if (state_ == "ok") {
    if (!was_ok) log::info("probe.central_config_available", {{"url", collector_.config_url}});
    return;
  }
  if (state_.rfind("cache:", 0) == 0) return;  // logged where it happened
  log::warn("probe.central_config_unavailable",
            {{"url", collector_.config_url},
             {"status", ex ? ex->status : 0},
             {"error", ex ? (ex->completed() ? excerpt(ex->body) : ex->error_text) : ""},
             {"using", has_cache_ ? collector_.config_cache : std::string("(no cached copy)")}});
}

bool ConfigClient::write_cache(const std::string& body, const std::string& etag) {
  try {
    write_file_atomically(collector_.config_cache, body);
    write_file_atomically(collector_.config_cache + ".etag", etag + "\n");
    return true;
  } catch (const std::exception& e) {
    log::error("probe.central_config_cache_failed",
               {{"file", collector_.config_cache}, {"error", e.what()}});
    return false;
  }
}

ConfigClient::Outcome ConfigClient::handle(const net::HttpExchange& ex) {
  ++stats_.polls;
  if (!ex.completed()) {
    ++stats_.failures;
    // By libcurl code: the text varies ("… after 3 ms"), the state does not.
    set_state("network:" + std::to_string(ex.curl_code), &ex);
    return Outcome::failed;
  }
  if (ex.status == 304) {
    ++stats_.not_modified;
    set_state("ok", &ex);
    return Outcome::not_modified;
  }
  if (ex.status != 200) {
    ++stats_.failures;
    set_state("status:" + std::to_string(ex.status) + ":" + excerpt(ex.body), &ex);
    return Outcome::failed;
  }
  set_state("ok", &ex);
  const std::string* etag_header = ex.header("etag");
  const std::string etag = etag_header ? *etag_header : std::string();
  const std::string& body = ex.body;
  if (has_cache_ && body == cached_ && ex.body_bytes == static_cast<std::int64_t>(body.size())) {
    if (etag != etag_) {
      try {
        write_file_atomically(collector_.config_cache + ".etag", etag + "\n");
        etag_ = etag;
      } catch (const std::exception& e) {
        log::error("probe.central_config_cache_failed",
                   {{"file", collector_.config_cache + ".etag"}, {"error", e.what()}});
      }
    }
    ++stats_.unchanged;
    return Outcome::unchanged;
  }
  const std::string hash = config_hash_of(body);
  std::string error;
  if (ex.body_bytes > static_cast<std::int64_t>(kMaxDocumentBytes)) {
    error = collector_.config_url + ": the served configuration is larger than " +
            std::to_string(kMaxDocumentBytes) + " bytes";
  } else {
    try {
      validate_central_config(config_path_, body, collector_.config_cache);
    } catch (const ConfigError& e) {
      error = e.what();
    }
  }
  if (!error.empty()) {
    ++stats_.invalid;
    if (hash != last_invalid_) {
      last_invalid_ = hash;
      log::warn("probe.central_config_invalid",
                {{"url", collector_.config_url},
                 {"etag", etag},
                 {"config_hash", hash},
                 {"error", error},
                 {"using", has_cache_ ? collector_.config_cache : std::string("(none)")}});
    }
    return Outcome::invalid;
  }
  last_invalid_.clear();
  if (!write_cache(body, etag)) {
    ++stats_.failures;
    state_ = "cache:write";
    return Outcome::failed;
  }
  has_cache_ = true;
  cached_ = body;
  etag_ = etag;
  ++stats_.updates;
  stats_.last_update_ns = to_unix_nanos(clock_.utc_now());
  log::info("probe.central_config_updated", {{"url", collector_.config_url},
                                             {"etag", etag},
                                             {"config_hash", hash},
                                             {"cache", collector_.config_cache}});
  if (reload_) reload_();
  return Outcome::updated;
}

}  // namespace vantage::probe::fleet
