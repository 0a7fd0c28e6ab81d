// The completion handler of a fleet client's loop (co_spawn'ed on the probe's event loop): an
// exception other than a cancellation is logged as `event` {error}; nothing is logged once the
// client is gone (`alive` false: it was destroyed while its loop was still queued).
#pragma once

#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>
#include <exception>
#include <memory>

#include "common/log.hpp"

namespace vantage::probe::fleet {

struct LogLoopEnd {
  const char* event;
  std::shared_ptr<bool> alive;

  void operator()(std::exception_ptr e) const {
    if (!e || !*alive) return;
    try {
      std::rethrow_exception(e);
    } catch (const boost::system::system_error& ex) {
      if (ex.code() == boost::asio::error::operation_aborted) return;
      log::error(event, {{"error", ex.what()}});
    } catch (const std::exception& ex) {
      log::error(event, {{"error", ex.what()}});
    }
  }
};

}  // namespace vantage::probe::fleet
