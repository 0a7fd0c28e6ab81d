#include "beacon-collector/metrics.hpp"

#include <cstdio>

namespace vantage::collector {
namespace {

std::string label(std::string_view key, std::string_view value) {
  std::string out(key);
  out += "=\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

struct Family {
  const char* name;
  const char* help;
};
constexpr Family kFamilies[] = {
    {"requests", "HTTP requests answered, by endpoint and status code."},
    {"rejected_requests", "Uploads refused as a whole (4xx/5xx), by reason."},
    {"dropped_reports", "Single reports dropped from an accepted upload, by reason."},
    {"records", "Records queued for the store, by record kind and type."},
    {"connections_closed", "Connections closed by the collector, by reason."},
};

}  // namespace

void Metrics::request(std::string_view endpoint, int status, double seconds) {
  std::lock_guard lock(mutex_);
  counters_["requests"][label("endpoint", endpoint) + "," + label("code", std::to_string(status))] +=
      1;
  auto it = durations_.find(endpoint);
  if (it == durations_.end()) it = durations_.emplace(std::string(endpoint), Histogram{}).first;
  Histogram& h = it->second;
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++h.counts[i];
  }
  ++h.count;
  h.sum += seconds;
}

void Metrics::rejected(std::string_view reason) {
  std::lock_guard lock(mutex_);
  counters_["rejected_requests"][label("reason", reason)] += 1;
}

void Metrics::dropped(std::string_view reason, int n) {
  std::lock_guard lock(mutex_);
  counters_["dropped_reports"][label("reason", reason)] += n;
}

void Metrics::record(std::string_view kind, std::string_view type, int n) {
  std::lock_guard lock(mutex_);
  counters_["records"][label("kind", kind) + "," + label("type", type)] += n;
}

void Metrics::connection_closed(std::string_view reason) {
  std::lock_guard lock(mutex_);
  counters_["connections_closed"][label("reason", reason)] += 1;
}

void Metrics::add_gauge(std::string name, std::string help, std::function<double()> value) {
  std::lock_guard lock(mutex_);
  scraped_.push_back({std::move(name), std::move(help), "gauge", std::move(value)});
}

void Metrics::add_counter(std::string name, std::string help, std::function<double()> value) {
  std::lock_guard lock(mutex_);
  scraped_.push_back({std::move(name), std::move(help), "counter", std::move(value)});
}

double Metrics::counter(std::string_view family, std::string_view labels) const {
  std::lock_guard lock(mutex_);
  auto f = counters_.find(family);
  if (f == counters_.end()) return 0;
  auto s = f->second.find(std::string(labels));
  return s == f->second.end() ? 0 : s->second;
}

std::string Metrics::render() const {
  std::string out;
  std::lock_guard lock(mutex_);
  for (const auto& fam : kFamilies) {
    const std::string name = std::string("vantage_collector_") + fam.name + "_total";
    out += "# HELP " + name + " " + fam.help + "\n# TYPE " + name + " counter\n";
    auto it = counters_.find(fam.name);
    if (it == counters_.end()) continue;
    for (const auto& [labels, value] : it->second) {
      out += name + "{" + labels + "} " + number(value) + "\n";
    }
  }
  const std::string h = "vantage_collector_request_duration_seconds";
  out += "# HELP " + h + " Time from the whole request read to the response, by endpoint.\n";
  out += "# TYPE " + h + " histogram\n";
  for (const auto& [endpoint, hist] : durations_) {
    const std::string ep = label("endpoint", endpoint);
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      char le[32];
      std::snprintf(le, sizeof le, "%g", kBuckets[i]);
      out += h + "_bucket{" + ep + "," + label("le", le) + "} " +
             std::to_string(hist.counts[i]) + "\n";
    }
    out += h + "_bucket{" + ep + ",le=\"+Inf\"} " + std::to_string(hist.count) + "\n";
    out += h + "_sum{" + ep + "} " + number(hist.sum) + "\n";
    out += h + "_count{" + ep + "} " + std::to_string(hist.count) + "\n";
  }
  for (const auto& s : scraped_) {
    out += "# HELP " + s.name + " " + s.help + "\n# TYPE " + s.name + " " + s.type + "\n";
    out += s.name + " " + number(s.value()) + "\n";
  }
  return out;
}

}  // namespace vantage::collector
