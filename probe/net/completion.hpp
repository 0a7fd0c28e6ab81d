// Completing an asynchronous operation from an adapter: never inline (we may be inside a C
// library's call stack), always through the io_context, then on the handler's own executor.
#pragma once

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <utility>

namespace vantage::probe::net {

// Detaches the handler's cancellation slot (the operation is over), then invokes
// `handler(args...)` from the io_context on the handler's associated executor.
template <typename Handler, typename... Args>
void complete_later(boost::asio::io_context& io, Handler handler, Args... args) {
  auto slot = boost::asio::get_associated_cancellation_slot(handler);
  if (slot.is_connected()) slot.clear();
  boost::asio::post(io, [&io, h = std::move(handler), ... a = std::move(args)]() mutable {
    auto ex = boost::asio::get_associated_executor(h, io.get_executor());
    boost::asio::dispatch(
        ex, [h = std::move(h), ... b = std::move(a)]() mutable { std::move(h)(std::move(b)...); });
  });
}

}  // namespace vantage::probe::net
