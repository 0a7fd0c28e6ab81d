// libcurl's multi interface driven by a Boost.Asio io_context (the "multi_socket" API:
// CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION / curl_multi_socket_action).
//
// One CurlMulti owns one CURLM and must be used from the thread running its io_context.
// It never owns the sockets libcurl opens (FdWatch), never calls libcurl from inside a libcurl
// callback (a zero timeout is run as a posted completion; transfer completions are
// posted), and never lets an exception cross a libcurl frame.
#pragma once

#include <curl/curl.h>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <memory>
#include <unordered_map>

namespace vantage::probe::net {

class FdWatch;

class CurlMulti {
 public:
  // Throws std::system_error if libcurl cannot create a multi handle (start-up only).
  explicit CurlMulti(boost::asio::io_context& io);
  ~CurlMulti();
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  using Signature = void(boost::system::error_code);

  // Runs a configured easy handle to completion. The caller keeps ownership of `easy` and must
  // keep it alive until the operation completes; it may read CURLINFO_* afterwards.
  // Completes with:
  //  * success, or an error in curl_category() carrying the transfer's CURLcode;
  //  * boost::asio::error::operation_aborted when cancelled through the completion token's
  //    cancellation slot (the handle is removed from the multi first);
  //  * an error in curl_multi_category() if the handle could not be added.
  // The completion handler is always invoked through its executor, never inline.
  template <typename Token>
  auto async_perform(CURL* easy, Token&& token) {
    return boost::asio::async_initiate<Token, Signature>(
        [this](auto handler, CURL* e) {
          start(e, boost::asio::any_completion_handler<Signature>(std::move(handler)));
        },
        token, easy);
  }

  // Transfers currently running.
  std::size_t in_flight() const noexcept { return transfers_.size(); }
  boost::asio::io_context& io() noexcept { return io_; }

 private:
  struct Transfer;
  static int socket_callback(CURL* easy, curl_socket_t s, int what, void* userp, void* socketp);
  static int timer_callback(CURLM* multi, long timeout_ms, void* userp);

  void start(CURL* easy, boost::asio::any_completion_handler<Signature> handler);
  void cancel(CURL* easy, std::uint64_t serial);
  void on_socket_ready(int fd, bool readable, bool writable, bool error);
  void on_timeout();
  void drain_completions();
  void finish(CURL* easy, boost::system::error_code ec);

  boost::asio::io_context& io_;
  CURLM* multi_ = nullptr;
  boost::asio::steady_timer timer_;
  std::uint64_t timer_generation_ = 0;
  bool timer_armed_ = false;
  std::uint64_t next_serial_ = 0;
  std::unordered_map<curl_socket_t, std::shared_ptr<FdWatch>> sockets_;
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> transfers_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // posted work checks it
};

// Process-wide curl_global_init(); call once from main() before any thread starts.
void curl_global_setup();

}  // namespace vantage::probe::net
