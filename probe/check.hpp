// The three interfaces that carry the probe (after Cloudprober): a Check runs once when asked,
// the Scheduler decides when and enforces deadlines, Sinks receive results without blocking.
//
// A check kind lives in probe/checks/<kind>/ with its config parsing and validation; it registers
// one factory line in probe/checks/registry.cpp. The core never switches on the kind.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/observation.hpp"
#include "common/time.hpp"

namespace boost::asio {
class io_context;
}

namespace vantage {
class IdGenerator;
class Clock;
}  // namespace vantage

namespace vantage::probe {

namespace net {
class CurlMulti;
}
namespace sinks {
class MetricsSink;
}
class ResolverPool;

// Shared network services, owned by the probe and valid for every run.
struct Services {
  boost::asio::io_context& io;
  net::CurlMulti& curl;
  ResolverPool& resolvers;
  IdGenerator& ids;
  const Clock& clock;
  // Publishes one record that is not a check result (`route_event`, `bgp_alert`) to every sink.
  // `record` has its "kind", "id", "check" and "time"; the probe adds "vantage" and sends it as
  // one NDJSON line. Set by the probe before any check starts; checks that stream (kind bgp) call
  // it on the event loop as things happen.
  std::function<void(std::string_view kind, nlohmann::json& record)> publish_record;
  // The probe's vantage point, for checks that name themselves to a remote service (kind bgp's
  // RIS Live client sends "vantage-<id>"). Set by the probe.
  const Vantage* vantage = nullptr;
  // /metrics, for checks that count things of their own (kind bgp's RIS Live client): families
  // are added in start() and read at scrape time on the event loop. Null without metrics.
  sinks::MetricsSink* metrics = nullptr;
};

// Settings every check has, whatever its kind (probe/config.hpp fills the defaults).
struct CheckCommon {
  std::string id;    // unique within the probe; [A-Za-z0-9_.-]+
  std::string kind;  // registry name
  std::chrono::nanoseconds interval{std::chrono::seconds(30)};
  std::chrono::nanoseconds timeout{std::chrono::seconds(10)};  // per attempt, < interval
  int retries = 0;                                             // extra attempts after a failure
  std::chrono::nanoseconds retry_backoff{std::chrono::seconds(1)};
  // The check's effective definition (checks::fingerprint: its YAML entry, canonical, and the
  // settings above after defaults): a reload keeps a check running when id and fingerprint are
  // unchanged. Empty for checks built outside the configuration loader.
  std::string fingerprint;
};

// One run's inputs.
struct RunContext {
  Services& services;
  SteadyTime deadline;   // the attempt must finish by then (start + timeout)
  UtcTime started;       // UTC start of the attempt
  std::string trace_id;  // W3C trace-id for every request of this run
  std::string check_id;

  // Milliseconds left until the deadline (at least 1).
  std::chrono::milliseconds remaining() const;
};

class Check {
 public:
  explicit Check(CheckCommon common) : common_(std::move(common)) {}
  virtual ~Check() = default;
  Check(const Check&) = delete;
  Check& operator=(const Check&) = delete;

  const CheckCommon& common() const noexcept { return common_; }
  const std::string& id() const noexcept { return common_.id; }

  // Runs the check once and returns its results: usually one, several when a check observes
  // several targets in one run (every resolved address, every resolver). Each result carries
  // target, outcome, phases and the kind's facts; the scheduler fills id, time and vantage.
  // Network failures are results, never exceptions; the coroutine is cancelled (and may throw
  // operation_aborted) only at shutdown.
  virtual boost::asio::awaitable<std::vector<CheckResult>> run(RunContext& ctx) = 0;

  // A short description for logs and --list ("GET https://example.com/").
  virtual std::string describe() const = 0;

  // Time a run may take past `timeout` (journeys' cleanup steps); the scheduler's backstop
  // allows for it.
  virtual std::chrono::nanoseconds extra_time() const { return std::chrono::nanoseconds(0); }

  // Called once before the scheduler's first run: a check that listens or watches between runs
  // (kind bgp) starts here. Throws std::exception when it cannot (a port in use): the probe
  // does not start then.
  virtual void start(Services& /*services*/) {}

  // Called once after the event loop stopped and before it is destroyed (also when start()
  // failed), or, for a check a reload removed or replaced, on the running event loop once its
  // last run ended: a check that keeps listeners or threads between runs (kind bgp) closes them
  // here.
  virtual void shutdown() {}

 private:
  CheckCommon common_;
};

using CheckPtr = std::unique_ptr<Check>;

}  // namespace vantage::probe
