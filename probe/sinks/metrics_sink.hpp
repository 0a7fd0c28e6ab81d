// Prometheus metrics for the probe, in the text exposition format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/). Per-check gauges use
// blackbox_exporter's names (probe_success, probe_duration_seconds,
// probe_http_duration_seconds{phase}, probe_ssl_earliest_cert_expiry, …) with the labels
// check, kind, vantage_point, region, asn (and target when a run has several results).
// Rendering runs on the probe's event loop, like publish(): no locking.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "probe/sinks/sink.hpp"

namespace vantage::probe::sinks {

class MetricsSink final : public Sink {
 public:
  explicit MetricsSink(Vantage vantage);

  std::string name() const override { return "metrics"; }
  void publish(const CheckResult& result, const PublishInfo& info) override;
  // route_event: counted per check and event; bgp_alert: kept as an open-alert series until its
  // resolution arrives (vantage_bgp_alert_open).
  void publish_record(std::string_view kind, const std::string& line) override;
  boost::asio::awaitable<void> close(std::chrono::milliseconds) override { co_return; }

  // Health of the probe itself, read at scrape time. `name` must be a valid metric name;
  // counters must end in _total.
  void add_gauge(std::string name, std::string help, std::function<double()> value);
  void add_counter(std::string name, std::string help, std::function<double()> value);
  // A gauge with constant labels (name, value pairs; empty values are left out), e.g.
  // vantage_probe_build_info{version="0.1.0",revision="a2487b4"} 1.
  void add_gauge(std::string name, std::string help,
                 const std::vector<std::pair<std::string, std::string>>& labels,
                 std::function<double()> value);
  // A counter family with one label, e.g. dropped results by reason.
  void add_labelled_counter(std::string name, std::string help, std::string label,
                            std::function<std::map<std::string, double>()> values);

  // The whole exposition (Content-Type: text/plain; version=0.0.4; charset=utf-8).
  std::string render() const;

 private:
  // A series disappears from /metrics when its check has not reported it for two intervals plus
  // a minute (an address that left the DNS answer, a removed check): no stale gauges.
  struct Series {
    std::string labels;  // rendered label pairs without braces: check="x",kind="http",…
    CheckResult last;
    std::chrono::steady_clock::time_point expires;
  };
  struct Provided {
    std::string name, help, type, label;  // label: with `value`, the rendered constant labels
    std::function<double()> value;
    std::function<std::map<std::string, double>()> values;
  };

  Vantage vantage_;
  mutable std::map<std::string, Series> series_;  // key: check + '\0' + target
  std::map<std::string, std::map<std::string, double>> results_total_;  // labels -> type -> n
  std::map<std::string, double> flaky_total_;                           // labels -> n
  std::vector<Provided> provided_;
  std::map<std::string, double> route_events_total_;  // labels -> n
  std::map<std::string, std::string> open_alerts_;    // check + '\0' + alert_key -> labels
};

// Escapes a label value (\\, \", \n) for the exposition format.
std::string escape_label_value(const std::string& value);

}  // namespace vantage::probe::sinks
