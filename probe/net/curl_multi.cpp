#include "probe/net/curl_multi.hpp"

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/post.hpp>
#include <mutex>
#include <system_error>

#include "common/log.hpp"
#include "probe/net/completion.hpp"
#include "probe/net/errors.hpp"
#include "probe/net/fd_watch.hpp"
#include "probe/net/tls_inspect.hpp"

namespace vantage::probe::net {

namespace asio = boost::asio;

// Boost 1.81's any_completion_handler move-assignment wraps the handler in itself and recurses
// forever (fixed in Asio 1.27): only ever move-construct handlers.
struct CurlMulti::Transfer {
  explicit Transfer(asio::any_completion_handler<Signature> h) : handler(std::move(h)) {}
  asio::any_completion_handler<Signature> handler;
  std::uint64_t serial = 0;  // tells a late cancellation apart from a later transfer on `easy`
};

void curl_global_setup() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  });
}

CurlMulti::CurlMulti(asio::io_context& io) : io_(io), timer_(io) {
  curl_global_setup();
  (void)default_ca_path();  // computed here, never inside a libcurl callback
  multi_ = curl_multi_init();
  if (!multi_)
    throw std::system_error(make_curl_multi_error(CURLM_OUT_OF_MEMORY), "curl_multi_init");
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMulti::socket_callback);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMulti::timer_callback);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
}

CurlMulti::~CurlMulti() {
  // Pending operations are abandoned: their handlers are destroyed without being called (the
  // owner cancels and drains before destroying us during a graceful shutdown).
  for (auto& [easy, transfer] : transfers_) curl_multi_remove_handle(multi_, easy);
  transfers_.clear();
  for (auto& [fd, watch] : sockets_) watch->stop();
  sockets_.clear();
  curl_multi_cleanup(multi_);
}

void CurlMulti::start(CURL* easy, asio::any_completion_handler<Signature> handler) {
  auto slot = asio::get_associated_cancellation_slot(handler);
  auto transfer = std::make_unique<Transfer>(std::move(handler));
  transfer->serial = ++next_serial_;
  const std::uint64_t serial = transfer->serial;
  const CURLMcode rc = curl_multi_add_handle(multi_, easy);
  if (rc != CURLM_OK) {
    complete_later(io_, std::move(transfer->handler),
                   boost::system::error_code(make_curl_multi_error(rc)));
    return;
  }
  transfers_.emplace(easy, std::move(transfer));
  if (slot.is_connected()) {
    // Cancellation is requested from ordinary completion handlers (e.g. a deadline timer), not
    // from libcurl callbacks; still, the removal is posted so it can never run inside libcurl.
    slot.assign([this, easy, serial](asio::cancellation_type) {
      asio::post(io_, [this, easy, serial, alive = std::weak_ptr<int>(alive_)] {
        if (!alive.expired()) cancel(easy, serial);
      });
    });
  }
}

void CurlMulti::cancel(CURL* easy, std::uint64_t serial) {
  auto it = transfers_.find(easy);
  if (it == transfers_.end() || it->second->serial != serial) return;  // already finished
  curl_multi_remove_handle(multi_, easy);
  finish(easy, asio::error::operation_aborted);
}

void CurlMulti::finish(CURL* easy, boost::system::error_code ec) {
  auto it = transfers_.find(easy);
  if (it == transfers_.end()) return;
  auto h = std::move(it->second->handler);
  transfers_.erase(it);
  complete_later(io_, std::move(h), ec);
}

int CurlMulti::socket_callback(CURL*, curl_socket_t s, int what, void* userp, void*) {
  // Runs inside libcurl: only bookkeeping here, no libcurl calls, no exceptions.
  auto* self = static_cast<CurlMulti*>(userp);
  try {
    auto it = self->sockets_.find(s);
    if (what == CURL_POLL_REMOVE) {
      if (it != self->sockets_.end()) {
        it->second->stop();
        self->sockets_.erase(it);
      }
      return 0;
    }
    if (it == self->sockets_.end()) {
      auto watch = FdWatch::create(self->io_, s, [self](int fd, bool r, bool w, bool err) {
        self->on_socket_ready(fd, r, w, err);
      });
      it = self->sockets_.emplace(s, std::move(watch)).first;
    }
    it->second->set_interest(what == CURL_POLL_IN || what == CURL_POLL_INOUT,
                             what == CURL_POLL_OUT || what == CURL_POLL_INOUT);
    return 0;
  } catch (const std::exception& e) {
    log::error("curl.socket_callback_failed", {{"error", e.what()}});
    return -1;
  }
}

int CurlMulti::timer_callback(CURLM*, long timeout_ms, void* userp) {
  auto* self = static_cast<CurlMulti*>(userp);
  try {
    ++self->timer_generation_;
    if (self->timer_armed_) {
      self->timer_.cancel();
      self->timer_armed_ = false;
    }
    if (timeout_ms < 0) return 0;
    if (timeout_ms == 0) {
      // "Call curl_multi_socket_action soon" (every added transfer asks for it): a posted
      // completion does it from the io_context, outside this callback, without arming the timer
      // (two timerfd_settime system calls per transfer otherwise).
      asio::post(self->io_,
                 [self, gen = self->timer_generation_, alive = std::weak_ptr<int>(self->alive_)] {
                   if (alive.expired() || gen != self->timer_generation_) return;
                   self->on_timeout();
                 });
      return 0;
    }
    self->timer_armed_ = true;
    self->timer_.expires_after(std::chrono::milliseconds(timeout_ms));
    self->timer_.async_wait(
        [self, gen = self->timer_generation_](const boost::system::error_code& ec) {
          if (ec || gen != self->timer_generation_) return;
          self->timer_armed_ = false;
          self->on_timeout();
        });
    return 0;
  } catch (const std::exception& e) {
    log::error("curl.timer_callback_failed", {{"error", e.what()}});
    return -1;
  }
}

void CurlMulti::on_socket_ready(int fd, bool readable, bool writable, bool error) {
  int mask = 0;
  if (readable) mask |= CURL_CSELECT_IN;
  if (writable) mask |= CURL_CSELECT_OUT;
  if (error) mask |= CURL_CSELECT_ERR;
  int running = 0;
  const CURLMcode rc = curl_multi_socket_action(multi_, fd, mask, &running);
  if (rc != CURLM_OK) log::error("curl.socket_action_failed", {{"error", curl_multi_strerror(rc)}});
  drain_completions();
}

void CurlMulti::on_timeout() {
  int running = 0;
  const CURLMcode rc = curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
  if (rc != CURLM_OK) log::error("curl.socket_action_failed", {{"error", curl_multi_strerror(rc)}});
  drain_completions();
}

void CurlMulti::drain_completions() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    const CURLcode result = msg->data.result;
    // Removing invalidates `msg`; everything needed was copied above.
    curl_multi_remove_handle(multi_, easy);
    finish(easy, result == CURLE_OK ? boost::system::error_code{}
                                    : boost::system::error_code(make_curl_error(result)));
  }
}

}  // namespace vantage::probe::net
