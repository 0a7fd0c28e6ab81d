// The collector's own Prometheus metrics (text format 0.0.4), RED per endpoint plus every
// rejection and drop by reason:
//   vantage_collector_requests_total{endpoint,code}
//   vantage_collector_request_duration_seconds{endpoint} (histogram, handling time incl. commit)
//   vantage_collector_rejected_requests_total{reason}   (whole upload refused: 4xx/5xx)
//   vantage_collector_dropped_reports_total{reason}      (single reports dropped from an upload)
//   vantage_collector_records_total{kind,type}           (records queued for the store)
//   vantage_collector_connections_closed_total{reason}   (slow_client, idle, error)
// plus gauges registered by the app (queue depth, …). Thread-safe.
#pragma once

#include <array>
#include <atomic>
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
  void request(std::string_view endpoint, int status, double seconds);
  void rejected(std::string_view reason);
  void dropped(std::string_view reason, int n = 1);
  void record(std::string_view kind, std::string_view type, int n = 1);
  void connection_closed(std::string_view reason);
  // Gauges and counters read at scrape time.
  void add_gauge(std::string name, std::string help, std::function<double()> value);
  void add_counter(std::string name, std::string help, std::function<double()> value);

  std::string render() const;
  // For tests: the current value of a counter series, e.g. ("rejected_requests", "reason", "x").
  double counter(std::string_view family, std::string_view labels) const;

 private:
  static constexpr std::array<double, 12> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                   0.05,   0.1,   0.25,   0.5,   1,    2.5};
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> counts{};
    std::uint64_t count = 0;
    double sum = 0;
  };
  struct Scraped {
    std::string name, help, type;
    std::function<double()> value;
  };
  mutable std::mutex mutex_;
  // family -> rendered label set ("endpoint=\"reports\",code=\"204\"") -> value
  std::map<std::string, std::map<std::string, double>, std::less<>> counters_;
  std::map<std::string, Histogram, std::less<>> durations_;
  std::vector<Scraped> scraped_;
};

}  // namespace vantage::collector
