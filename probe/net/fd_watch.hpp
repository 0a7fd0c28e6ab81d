// Watches a file descriptor owned by a C library (libcurl, c-ares) for readiness on an Asio
// io_context, without owning it: the descriptor is released, never closed, when watching stops.
//
// Rules this class enforces (HOUSE-STYLE "Async"):
//  * one-shot waits are re-armed for as long as the library still wants the direction;
//  * before arming, a zero-timeout poll(2) checks whether the descriptor is already ready, because
//    Asio's epoll reactor is edge-triggered and a readiness edge that arrived while no wait was
//    queued would otherwise be lost;
//  * the readiness callback always runs from the io_context (never inline from set_interest()),
//    so it may call back into the C library — set_interest() itself is safe inside C callbacks.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <memory>

namespace vantage::probe::net {

class FdWatch : public std::enable_shared_from_this<FdWatch> {
 public:
  // `on_ready(fd, readable, writable, error)`: called on the io_context when a wanted direction is
  // ready (or the wait failed: `error` true). Exactly one direction is reported per call.
  using ReadyFn = std::function<void(int fd, bool readable, bool writable, bool error)>;

  static std::shared_ptr<FdWatch> create(boost::asio::io_context& io, int fd, ReadyFn on_ready);
  ~FdWatch();
  FdWatch(const FdWatch&) = delete;
  FdWatch& operator=(const FdWatch&) = delete;

  // Sets the wanted directions and arms waits for newly wanted ones. Never calls on_ready inline.
  void set_interest(bool read, bool write);
  // Stops watching: cancels waits and releases the descriptor (it stays open). Idempotent.
  void stop();

  int fd() const noexcept { return fd_; }
  bool wants_read() const noexcept { return want_read_; }
  bool wants_write() const noexcept { return want_write_; }

 private:
  FdWatch(boost::asio::io_context& io, int fd, ReadyFn on_ready);
  void arm(bool read_direction);
  void complete(bool read_direction, bool error);

  boost::asio::posix::stream_descriptor sd_;
  int fd_;
  ReadyFn on_ready_;
  bool want_read_ = false;
  bool want_write_ = false;
  bool read_pending_ = false;
  bool write_pending_ = false;
  bool stopped_ = false;
};

}  // namespace vantage::probe::net
