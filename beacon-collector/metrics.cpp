#include "beacon-collector/metrics.hpp"

#include <algorithm>
#include <cstdio>
#include <span>

#include "common/version.hpp"

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

void family(std::string& out, const std::string& name, const char* help, const char* type) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

// The label values a record may carry: a closed set, because `type` comes from the client (a
// Reporting API report names its own type). Anything else is counted as "other" — the record is
// still stored with its raw type; only the metric series is bounded.
constexpr std::string_view kKinds[] = {"browser_report", "rum_event", "probe_result"};
constexpr std::string_view kTypes[] = {
    // Reporting API / NEL / CSP types Chromium and Firefox send (W3C Reporting, NEL, CSP3,
    // Deprecation, Intervention, Crash, COOP/COEP, Permissions and Document Policy, Integrity).
    "network-error", "csp-violation", "deprecation", "intervention", "crash", "coep", "coop",
    "permissions-policy-violation", "potential-permissions-policy-violation",
    "document-policy-violation", "integrity-violation",
    // the agent's events and probe results
    "js_error", "http_error", "timing", "unknown", "result"};

std::string_view bounded(std::string_view value, std::span<const std::string_view> allowed) {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end() ? value : "other";
}

}  // namespace

void Metrics::add(std::map<std::string, double, std::less<>>& m, std::string_view key, double n) {
  auto it = m.find(key);
  if (it == m.end()) it = m.emplace(std::string(key), 0.0).first;
  it->second += n;
}

void Metrics::request(std::size_t endpoint, std::string_view name, int status, double seconds) {
  if (endpoint >= kMaxEndpoints || status < 0 || status >= 600) return;
  Endpoint& e = endpoints_[endpoint];
  if (!e.named.load(std::memory_order_acquire)) {
    std::lock_guard lock(mutex_);
    if (!e.named.load(std::memory_order_relaxed)) {
      e.name = std::string(name);
      e.named.store(true, std::memory_order_release);
    }
  }
  e.codes[static_cast<std::size_t>(status)].fetch_add(1, std::memory_order_relaxed);
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) e.buckets[i].fetch_add(1, std::memory_order_relaxed);
  }
  e.count.fetch_add(1, std::memory_order_relaxed);
  e.sum_ns.fetch_add(static_cast<std::uint64_t>(seconds * 1e9), std::memory_order_relaxed);
}

void Metrics::rejected(std::string_view reason) {
  std::lock_guard lock(mutex_);
  add(rejected_, reason, 1);
}

void Metrics::dropped(std::string_view reason, int n) {
  std::lock_guard lock(mutex_);
  add(dropped_, reason, n);
}

void Metrics::connection_closed(std::string_view reason) {
  std::lock_guard lock(mutex_);
  add(closed_, reason, 1);
}

void Metrics::accept_failed(std::string_view reason) {
  std::lock_guard lock(mutex_);
  add(accept_errors_, reason, 1);
}

void Metrics::accepted(int thread) {
  std::lock_guard lock(mutex_);
  accepted_[thread] += 1;
}

void Metrics::config_request(std::string_view result) {
  std::lock_guard lock(mutex_);
  add(config_requests_, result, 1);
}

void Metrics::config_reload(std::string_view result) {
  std::lock_guard lock(mutex_);
  add(config_reloads_, result, 1);
}

void Metrics::record(std::string_view kind, std::string_view type, int n) {
  kind = bounded(kind, kKinds);
  type = bounded(type, kTypes);
  std::lock_guard lock(mutex_);
  const std::pair<std::string_view, std::string_view> key(kind, type);
  auto it = records_.find(key);
  if (it == records_.end())
    it = records_.emplace(std::pair(std::string(kind), std::string(type)), 0.0).first;
  it->second += n;
}

void Metrics::add_gauge(std::string name, std::string help, std::function<double()> value) {
  std::lock_guard lock(mutex_);
  scraped_.push_back({std::move(name), std::move(help), "gauge", std::move(value), {}});
}

void Metrics::add_counter(std::string name, std::string help, std::function<double()> value) {
  std::lock_guard lock(mutex_);
  scraped_.push_back({std::move(name), std::move(help), "counter", std::move(value), {}});
}

void Metrics::add_labelled_counter(std::string name, std::string_view label_key,
                                   std::string_view label_value, std::string help,
                                   std::function<double()> value) {
  std::lock_guard lock(mutex_);
  scraped_.push_back({std::move(name), std::move(help), "counter", std::move(value),
                      label(label_key, label_value)});
}

std::string Metrics::render() const {
  std::string out;
  std::lock_guard lock(mutex_);
  const std::string requests = "vantage_collector_requests_total";
  family(out, requests, "HTTP requests answered, by endpoint and status code.", "counter");
  for (const auto& e : endpoints_) {
    if (!e.named.load(std::memory_order_acquire)) continue;
    for (std::size_t code = 100; code < e.codes.size(); ++code) {
      const auto n = e.codes[code].load(std::memory_order_relaxed);
      if (n) {
        out += requests + "{" + label("endpoint", e.name) + "," +
               label("code", std::to_string(code)) + "} " + std::to_string(n) + "\n";
      }
    }
  }
  const std::string h = "vantage_collector_request_duration_seconds";
  family(out, h, "Time from the whole request read to the response, by endpoint.", "histogram");
  for (const auto& e : endpoints_) {
    if (!e.named.load(std::memory_order_acquire)) continue;
    const std::string ep = label("endpoint", e.name);
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      char le[32];
      std::snprintf(le, sizeof le, "%g", kBuckets[i]);
      out += h + "_bucket{" + ep + "," + label("le", le) + "} " +
             std::to_string(e.buckets[i].load(std::memory_order_relaxed)) + "\n";
    }
    const auto count = e.count.load(std::memory_order_relaxed);
    out += h + "_bucket{" + ep + ",le=\"+Inf\"} " + std::to_string(count) + "\n";
    out += h + "_sum{" + ep + "} " +
           number(static_cast<double>(e.sum_ns.load(std::memory_order_relaxed)) / 1e9) + "\n";
    out += h + "_count{" + ep + "} " + std::to_string(count) + "\n";
  }
  auto one_label = [&](const char* name, const char* help, const char* key,
                       const std::map<std::string, double, std::less<>>& m) {
    const std::string n = std::string("vantage_collector_") + name + "_total";
    family(out, n, help, "counter");
    for (const auto& [value, count] : m)
      out += n + "{" + label(key, value) + "} " + number(count) + "\n";
  };
  one_label("rejected_requests", "Uploads refused as a whole (4xx/5xx), by reason.", "reason",
            rejected_);
  one_label("dropped_reports", "Single reports dropped from an accepted upload, by reason.",
            "reason", dropped_);
  one_label("connections_closed", "Connections closed by the collector, by reason.", "reason",
            closed_);
  one_label("accept_errors", "accept() failures, by reason (no_descriptors: EMFILE/ENFILE).",
            "reason", accept_errors_);
  const std::string accepted = "vantage_collector_accepted_connections_total";
  family(out, accepted, "Connections accepted, by event-loop thread.", "counter");
  for (const auto& [thread, count] : accepted_) {
    out += accepted + "{" + label("thread", std::to_string(thread)) + "} " + number(count) + "\n";
  }
  const std::string heartbeats = "vantage_collector_heartbeats_total";
  family(out, heartbeats, "Probe heartbeats committed to the store.", "counter");
  out += heartbeats + " " + std::to_string(heartbeats_.load(std::memory_order_relaxed)) + "\n";
  one_label("config_requests", "GET /v1/config answers, by result (401/403 are rejections).",
            "result", config_requests_);
  one_label("config_reloads", "SIGHUP reloads of the configuration file, by result.", "result",
            config_reloads_);
  const std::string records = "vantage_collector_records_total";
  family(out, records, "Records queued for the store, by record kind and type.", "counter");
  for (const auto& [key, count] : records_) {
    out += records + "{" + label("kind", key.first) + "," + label("type", key.second) + "} " +
           number(count) + "\n";
  }
  family(out, "vantage_collector_build_info", "Build information (always 1).", "gauge");
  out += "vantage_collector_build_info{" + label("version", vantage::version()) + "," +
         label("revision", vantage::revision()) + "} 1\n";
  const std::string* family_name = nullptr;
  for (const auto& s : scraped_) {
    if (!family_name || *family_name != s.name) {  // once per family (labelled series follow)
      out += "# HELP " + s.name + " " + s.help + "\n# TYPE " + s.name + " " + s.type + "\n";
    }
    family_name = &s.name;
    out += s.name + (s.labels.empty() ? "" : "{" + s.labels + "}") + " " + number(s.value()) + "\n";
  }
  return out;
}

}  // namespace vantage::collector
