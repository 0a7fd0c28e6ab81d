// The collector's own Prometheus metrics (text format 0.0.4), RED per endpoint plus every
// rejection and drop by reason:
//   vantage_collector_requests_total{endpoint,code}
//   vantage_collector_request_duration_seconds{endpoint} (histogram, handling time incl. commit)
//   vantage_collector_rejected_requests_total{reason}   (whole upload refused: 4xx/5xx)
//   vantage_collector_dropped_reports_total{reason}      (single reports dropped from an upload)
//   vantage_collector_records_total{kind,type}           (records queued for the store; `type`
//                                                         from a closed list, others "other")
//   vantage_collector_connections_closed_total{reason}   (slow_client, idle, error, evicted,
//                                                         over_limit, no_descriptors, …)
//   vantage_collector_accept_errors_total{reason}        (no_descriptors, other)
//   vantage_collector_accepted_connections_total{thread} (per event-loop thread: 0, 1, …)
//   vantage_collector_heartbeats_total                   (probe heartbeats committed)
//   vantage_collector_config_requests_total{result}      (GET /v1/config: ok, not_modified,
//                                                         not_found, error)
//   vantage_collector_config_reloads_total{result}       (SIGHUP: ok, failed)
// plus gauges and counters registered by the app (queue depth, …). Thread-safe; request() is
// lock-free and the other counters allocate only the first time a label value is seen.
// Every label value is from a closed set written in the code (reasons, endpoints, codes
// 100-599, record kinds and report types — a type a client invents is counted as "other"), so
// no client can grow the page: its size is bounded whatever is uploaded.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vantage::collector {

class Metrics {
 public:
  static constexpr std::size_t kMaxEndpoints = 16;

  // `endpoint`: a small index (< kMaxEndpoints) standing for the label value `name`, which
  // must be the same on every call with that index. `status`: 100-599.
  void request(std::size_t endpoint, std::string_view name, int status, double seconds);
  void rejected(std::string_view reason);
  void dropped(std::string_view reason, int n = 1);
  void record(std::string_view kind, std::string_view type, int n = 1);
  void connection_closed(std::string_view reason);
  // accept() failed: "no_descriptors" (EMFILE, ENFILE, ENOBUFS, ENOMEM) or "other".
  void accept_failed(std::string_view reason);
  // A connection accepted by event-loop thread `thread` (0-based, < 256).
  void accepted(int thread);
  // A heartbeat committed.
  void heartbeat() noexcept { heartbeats_.fetch_add(1, std::memory_order_relaxed); }
  // GET /v1/config answered: "ok", "not_modified", "not_found" or "error".
  void config_request(std::string_view result);
  // A SIGHUP reload of the configuration: "ok" or "failed".
  void config_reload(std::string_view result);
  // Gauges and counters read at scrape time.
  void add_gauge(std::string name, std::string help, std::function<double()> value);
  void add_counter(std::string name, std::string help, std::function<double()> value);
  // One series of a counter family with one label (`label_value` from a closed set written in
  // the code); the series of one family are added one after another.
  void add_labelled_counter(std::string name, std::string_view label_key,
                            std::string_view label_value, std::string help,
                            std::function<double()> value);

  std::string render() const;

 private:
  static constexpr std::array<double, 12> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                   0.05,   0.1,   0.25,   0.5,   1,    2.5};
  struct Endpoint {
    std::atomic<bool> named{false};
    std::string name;  // written once under mutex_ before `named`
    std::array<std::atomic<std::uint64_t>, 600> codes{};
    std::array<std::atomic<std::uint64_t>, kBuckets.size()> buckets{};
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> sum_ns{0};
  };
  struct Scraped {
    std::string name, help, type;
    std::function<double()> value;
    std::string labels;  // `key="value"`, or empty
  };
  // Heterogeneous lookup: no allocation when the label values are already known.
  struct PairLess {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return std::pair<std::string_view, std::string_view>(a.first, a.second) <
             std::pair<std::string_view, std::string_view>(b.first, b.second);
    }
  };
  static void add(std::map<std::string, double, std::less<>>& m, std::string_view key, double n);

  mutable std::mutex mutex_;
  std::array<Endpoint, kMaxEndpoints> endpoints_;
  std::map<std::string, double, std::less<>> rejected_, dropped_, closed_, accept_errors_;
  std::map<std::string, double, std::less<>> config_requests_{
      {"error", 0}, {"not_found", 0}, {"not_modified", 0}, {"ok", 0}};
  std::map<std::string, double, std::less<>> config_reloads_{{"failed", 0}, {"ok", 0}};
  std::map<int, double> accepted_;
  std::atomic<std::uint64_t> heartbeats_{0};
  std::map<std::pair<std::string, std::string>, double, PairLess> records_;
  std::vector<Scraped> scraped_;
};

}  // namespace vantage::collector
