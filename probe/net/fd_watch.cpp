#include "probe/net/fd_watch.hpp"

#include <poll.h>

#include <boost/asio/post.hpp>

namespace vantage::probe::net {

namespace asio = boost::asio;

std::shared_ptr<FdWatch> FdWatch::create(asio::io_context& io, int fd, ReadyFn on_ready) {
  return std::shared_ptr<FdWatch>(new FdWatch(io, fd, std::move(on_ready)));
}

FdWatch::FdWatch(asio::io_context& io, int fd, ReadyFn on_ready)
    : sd_(io, fd), fd_(fd), on_ready_(std::move(on_ready)) {}

FdWatch::~FdWatch() { stop(); }

void FdWatch::stop() {
  if (stopped_) return;
  stopped_ = true;
  want_read_ = want_write_ = false;
  boost::system::error_code ignored;
  sd_.cancel(ignored);
  // release() deregisters from the reactor and hands the descriptor back without closing it: the
  // C library owns it and closes it itself.
  (void)sd_.release();
}

void FdWatch::set_interest(bool read, bool write) {
  if (stopped_) return;
  want_read_ = read;
  want_write_ = write;
  if (read) arm(true);
  if (write) arm(false);
}

void FdWatch::arm(bool read_direction) {
  bool& pending = read_direction ? read_pending_ : write_pending_;
  if (pending || stopped_) return;
  pending = true;
  pollfd p{fd_, static_cast<short>(read_direction ? POLLIN : POLLOUT), 0};
  const int n = ::poll(&p, 1, 0);
  auto self = shared_from_this();
  if (n > 0) {
    // Already ready: report from the io_context, never inline (we may be inside a C callback).
    const bool error = (p.revents & (POLLERR | POLLNVAL)) != 0;
    asio::post(sd_.get_executor(),
               [self, read_direction, error] { self->complete(read_direction, error); });
    return;
  }
  sd_.async_wait(read_direction ? asio::posix::descriptor_base::wait_read
                                : asio::posix::descriptor_base::wait_write,
                 [self, read_direction](const boost::system::error_code& ec) {
                   if (ec == asio::error::operation_aborted) {
                     (read_direction ? self->read_pending_ : self->write_pending_) = false;
                     return;
                   }
                   self->complete(read_direction, static_cast<bool>(ec));
                 });
}

void FdWatch::complete(bool read_direction, bool error) {
  (read_direction ? read_pending_ : write_pending_) = false;
  if (stopped_) return;
  if (read_direction ? !want_read_ : !want_write_) return;
  auto self = shared_from_this();  // on_ready may stop() and drop the owner's reference
  on_ready_(fd_, read_direction, !read_direction, error);
  // Re-arm the one-shot wait while the library still wants this direction.
  if (!stopped_ && (read_direction ? want_read_ : want_write_)) arm(read_direction);
}

}  // namespace vantage::probe::net
