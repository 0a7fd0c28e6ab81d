// Test helpers: the probe's services on a private io_context, and running a coroutine to its end.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <optional>
#include <string>

#include "common/config_node.hpp"
#include "common/ids.hpp"
#include "probe/check.hpp"
#include "probe/checks/registry.hpp"
#include "probe/net/curl_multi.hpp"
#include "probe/resolver_pool.hpp"

namespace vantage::testing {

struct ProbeServices {
  boost::asio::io_context io;
  probe::net::CurlMulti curl{io};
  probe::ResolverPool resolvers{io};
  IdGenerator ids{12345};
  probe::Services services{io, curl, resolvers, ids, SystemClock::instance(), {}};

  // Runs `aw` on the io_context until it completes and returns its value (rethrows).
  template <typename T>
  T run(boost::asio::awaitable<T> aw) {
    std::optional<T> out;
    std::exception_ptr error;
    bool done = false;
    boost::asio::co_spawn(io, std::move(aw), [&](std::exception_ptr e, T v) {
      error = e;
      if (!e) out = std::move(v);
      done = true;
    });
    io.restart();
    // Stop as soon as the coroutine is done: abandoned c-ares queries may linger until their
    // own timeout, and the test must not wait for them.
    while (!done && io.run_one()) {
    }
    if (error) std::rethrow_exception(error);
    return std::move(*out);
  }

  // Builds a check from YAML (the body of one `checks[]` entry).
  probe::CheckPtr check(const std::string& yaml,
                        std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    const ConfigNode node = ConfigNode::load_string(yaml, "test.yaml");
    probe::CheckCommon common;
    common.id = node.require("id").as_string();
    common.kind = node.require("kind").as_string();
    common.timeout = timeout;
    common.interval = std::chrono::seconds(60);
    return probe::checks::find_check_kind(common.kind)(common, node);
  }

  // Runs one attempt of `check` with its timeout as the deadline.
  std::vector<CheckResult> run_check(probe::Check& check) {
    probe::RunContext ctx{services, std::chrono::steady_clock::now() + check.common().timeout,
                          SystemClock::instance().utc_now(), ids.trace_id(), check.id()};
    return run(check.run(ctx));
  }
};

}  // namespace vantage::testing
