#include "probe/sinks/metrics_sink.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string_view>

namespace vantage::probe::sinks {

std::string escape_label_value(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

namespace {

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Shortest text that reads back as the same double (no 0.00014832500000000001 noise).
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc{} ? std::string(buf, end) : std::string("NaN");
}

void label(std::string& out, const char* name, const std::string& value) {
  if (value.empty()) return;
  if (!out.empty()) out += ',';
  out += name;
  out += "=\"";
  out += escape_label_value(value);
  out += '"';
}

// OpenSSL's "TLSv1.3" in blackbox_exporter's spelling, "TLS 1.3" (and "TLSv1" -> "TLS 1.0").
std::string blackbox_tls_version(const std::string& v) {
  if (v == "TLSv1") return "TLS 1.0";
  if (v.rfind("TLSv", 0) == 0) return "TLS " + v.substr(4);
  return v;
}

double seconds_since_epoch(UtcTime t) { return static_cast<double>(to_unix_nanos(t)) / 1e9; }

// Builds the exposition family by family.
class Writer {
 public:
  void family(const std::string& name, const std::string& help, const char* type) {
    out_ << "# HELP " << name << ' ' << help << '\n' << "# TYPE " << name << ' ' << type << '\n';
  }
  void sample(const std::string& name, const std::string& labels, double value) {
    out_ << name;
    if (!labels.empty()) out_ << '{' << labels << '}';
    out_ << ' ' << number(value) << '\n';
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

std::string with(const std::string& labels, const char* name, const std::string& value) {
  std::string out = labels;
  label(out, name, value);
  return out;
}

// A top-level string member of a JSON object line, found without building the document (a
// route_event record per route update is too many to parse again): strings are skipped whole,
// escapes included, nested objects and arrays by depth. "" when the member is absent or not a
// string (as a parse would say); nullopt when the value holds an escape or the line is not an
// object, for the caller to parse the line.
std::optional<std::string_view> top_level_string(std::string_view json, std::string_view key) {
  std::size_t i = json.find_first_not_of(" \t\r\n");
  if (i == std::string_view::npos || json[i] != '{') return std::nullopt;
  int depth = 0;
  bool expect_key = false;
  auto string_end = [&](std::size_t open) {  // index of the closing quote, or npos
    for (std::size_t k = open + 1; k < json.size(); ++k) {
      if (json[k] == '\\') {
        ++k;
      } else if (json[k] == '"') {
        return k;
      }
    }
    return std::string_view::npos;
  };
  for (; i < json.size(); ++i) {
    const char c = json[i];
    if (c == '"') {
      const std::size_t end = string_end(i);
      if (end == std::string_view::npos) return std::nullopt;
      if (depth == 1 && expect_key) {
        expect_key = false;
        const bool match = json.substr(i + 1, end - i - 1) == key;
        std::size_t v = json.find_first_not_of(" \t\r\n", end + 1);
        if (v == std::string_view::npos || json[v] != ':') return std::nullopt;
        v = json.find_first_not_of(" \t\r\n", v + 1);
        if (v == std::string_view::npos) return std::nullopt;
        if (match) {
          if (json[v] != '"') return std::string_view();
          const std::size_t value_end = string_end(v);
          if (value_end == std::string_view::npos) return std::nullopt;
          const std::string_view value = json.substr(v + 1, value_end - v - 1);
          if (value.find('\\') != std::string_view::npos) return std::nullopt;
          return value;
        }
        i = v - 1;  // the value is scanned next
        continue;
      }
      i = end;
    } else if (c == '{' || c == '[') {
      ++depth;
      expect_key = depth == 1;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return std::string_view();
    } else if (c == ',' && depth == 1) {
      expect_key = true;
    }
  }
  return std::nullopt;
}

}  // namespace

MetricsSink::MetricsSink(Vantage vantage) : vantage_(std::move(vantage)) {}

void MetricsSink::publish(const CheckResult& r, const PublishInfo& info) {
  std::string target;
  if (r.check_kind == "dns")
    target = r.target.resolver;
  else if (info.multi_target)
    target = r.target.server_ip;
  std::string labels;
  label(labels, "check", r.check_id);
  label(labels, "kind", r.check_kind);
  label(labels, "vantage_point", vantage_.probe_id);
  label(labels, "region", vantage_.region);
  if (vantage_.asn) label(labels, "asn", std::to_string(vantage_.asn));
  std::string counter_labels = labels;
  label(labels, "target", target);
  auto& s = series_[r.check_id + '\0' + target];
  s.labels = labels;
  s.last = r;
  const auto ttl = info.interval.count() > 0 ? 2 * info.interval + std::chrono::minutes(1)
                                             : std::chrono::nanoseconds(std::chrono::hours(1));
  s.expires = std::chrono::steady_clock::now() +
              std::chrono::duration_cast<std::chrono::steady_clock::duration>(ttl);
  results_total_[counter_labels][std::string(to_string(r.outcome.type))] += 1;
  if (r.flaky) flaky_total_[counter_labels] += 1;
}

void MetricsSink::publish_record(std::string_view kind, const std::string& line) {
  if (kind != "route_event" && kind != "bgp_alert") return;
  if (kind == "route_event") {  // one per route update: counted without parsing the line
    const auto check = top_level_string(line, "check");
    const auto event = top_level_string(line, "event");
    if (check && event) {
      std::string labels;
      label(labels, "check", std::string(*check));
      label(labels, "vantage_point", vantage_.probe_id);
      label(labels, "event", std::string(*event));
      route_events_total_[labels] += 1;
      return;
    }
  }
  const auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object()) return;
  auto str = [&](const char* key) {
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  std::string labels;
  label(labels, "check", str("check"));
  label(labels, "vantage_point", vantage_.probe_id);
  if (kind == "route_event") {
    label(labels, "event", str("event"));
    route_events_total_[labels] += 1;
    return;
  }
  label(labels, "alert", str("alert"));
  label(labels, "prefix", str("prefix"));
  label(labels, "monitored_prefix", str("monitored_prefix"));
  const std::string key = str("check") + '\0' + str("alert_key");
  if (str("status") == "open") {
    open_alerts_[key] = labels;
  } else {
    open_alerts_.erase(key);
  }
}

void MetricsSink::add_gauge(std::string name, std::string help, std::function<double()> value) {
  provided_.push_back({std::move(name), std::move(help), "gauge", {}, std::move(value), {}});
}

void MetricsSink::add_gauge(std::string name, std::string help,
                            const std::vector<std::pair<std::string, std::string>>& labels,
                            std::function<double()> value) {
  std::string rendered;
  for (const auto& [k, v] : labels) label(rendered, k.c_str(), v);
  provided_.push_back(
      {std::move(name), std::move(help), "gauge", std::move(rendered), std::move(value), {}});
}

void MetricsSink::add_counter(std::string name, std::string help, std::function<double()> value) {
  provided_.push_back({std::move(name), std::move(help), "counter", {}, std::move(value), {}});
}

void MetricsSink::add_labelled_counter(std::string name, std::string help, std::string label_name,
                                       std::function<std::map<std::string, double>()> values) {
  provided_.push_back(
      {std::move(name), std::move(help), "counter", std::move(label_name), {}, std::move(values)});
}

std::string MetricsSink::render() const {
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(series_, [&](const auto& kv) { return kv.second.expires < now; });
  Writer w;
  // Gauge families over the last result of each series, blackbox_exporter names first.
  struct Gauge {
    const char* name;
    const char* help;
    std::function<void(Writer&, const std::string& name, const Series&)> emit;
  };
  const std::vector<Gauge> gauges = {
      {"probe_success", "Displays whether or not the probe was a success",
       [](Writer& wr, const std::string& n, const Series& s) {
         wr.sample(n, s.labels, s.last.ok() ? 1 : 0);
       }},
      {"probe_duration_seconds", "Returns how long the probe took to complete in seconds",
       [](Writer& wr, const std::string& n, const Series& s) {
         wr.sample(n, s.labels, s.last.phases.total / 1000.0);
       }},
      {"probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in seconds",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.phases.dns) wr.sample(n, s.labels, *s.last.phases.dns / 1000.0);
       }},
      {"probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6",
       [](Writer& wr, const std::string& n, const Series& s) {
         const auto& ip = s.last.target.server_ip;
         if (!ip.empty() && s.last.check_kind != "dns")
           wr.sample(n, s.labels, ip.find(':') == std::string::npos ? 4 : 6);
       }},
      {"probe_http_duration_seconds",
       "Duration of http request by phase, summed over all redirects",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.check_kind != "http") return;
         const auto& p = s.last.phases;
         const std::pair<const char*, std::optional<double>> phases[] = {{"resolve", p.dns},
                                                                         {"connect", p.connect},
                                                                         {"tls", p.tls},
                                                                         {"processing", p.ttfb},
                                                                         {"transfer", p.transfer}};
         for (const auto& [phase, v] : phases)
           wr.sample(n, with(s.labels, "phase", phase), v.value_or(0) / 1000.0);
       }},
      {"probe_http_status_code", "Response HTTP status code",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.check_kind == "http")
           wr.sample(n, s.labels, s.last.http ? s.last.http->status_code : 0);
       }},
      {"probe_http_content_length", "Length of http content response",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.http) wr.sample(n, s.labels, static_cast<double>(s.last.http->content_length));
       }},
      {"probe_http_uncompressed_body_length", "Length of uncompressed response body",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.http) wr.sample(n, s.labels, static_cast<double>(s.last.http->body_bytes));
       }},
      {"probe_http_redirects", "The number of redirects",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.http) wr.sample(n, s.labels, s.last.http->redirects);
       }},
      {"probe_http_ssl", "Indicates if SSL was used for the final redirect",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.http)
           wr.sample(n, s.labels, s.last.http->final_url.rfind("https://", 0) == 0 ? 1 : 0);
       }},
      {"probe_http_version", "Returns the version of HTTP of the probe response",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.http && !s.last.http->http_version.empty()) {
           wr.sample(n, s.labels, std::stod(s.last.http->http_version));
         }
       }},
      {"probe_failed_due_to_regex", "Indicates if probe failed due to regex",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.check_kind != "http" && s.last.check_kind != "tcp") return;
         const auto& a = s.last.outcome.assertion;
         const bool regex =
             a == "body_matches" || a == "body_not_matches" || a.rfind("expect[", 0) == 0;
         wr.sample(n, s.labels, regex ? 1 : 0);
       }},
      {"probe_ssl_earliest_cert_expiry", "Returns earliest SSL cert expiry in unixtime",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.tls && s.last.tls->earliest_expiry)
           wr.sample(n, s.labels, seconds_since_epoch(*s.last.tls->earliest_expiry));
       }},
      {"probe_ssl_last_chain_expiry_timestamp_seconds",
       "Returns last SSL chain expiry in timestamp seconds",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.tls && s.last.tls->verified_chain_expiry) {
           wr.sample(n, s.labels, seconds_since_epoch(*s.last.tls->verified_chain_expiry));
         }
       }},
      {"probe_tls_version_info", "Contains the TLS version used",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.tls && !s.last.tls->version.empty()) {
           wr.sample(n, with(s.labels, "version", blackbox_tls_version(s.last.tls->version)), 1);
         }
       }},
      {"probe_dns_answer_rrs", "Returns number of entries in the answer resource record list",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.dns) wr.sample(n, s.labels, static_cast<double>(s.last.dns->answers.size()));
       }},
      {"probe_dns_authority_rrs", "Returns number of entries in the authority resource record list",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.dns) wr.sample(n, s.labels, s.last.dns->authority_rrs);
       }},
      {"probe_dns_additional_rrs",
       "Returns number of entries in the additional resource record list",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.dns) wr.sample(n, s.labels, s.last.dns->additional_rrs);
       }},
      {"vantage_check_last_run_timestamp_seconds",
       "Unix time at which the last run of the check started",
       [](Writer& wr, const std::string& n, const Series& s) {
         wr.sample(n, s.labels, seconds_since_epoch(s.last.time));
       }},
      {"vantage_check_failure_info",
       "The failure type and failing phase of the last run (1 while it is failing)",
       [](Writer& wr, const std::string& n, const Series& s) {
         if (s.last.ok()) return;
         std::string l = with(s.labels, "type", std::string(to_string(s.last.outcome.type)));
         if (s.last.outcome.failed_at)
           l = with(l, "failed_at", std::string(to_string(*s.last.outcome.failed_at)));
         if (!s.last.outcome.step.empty()) l = with(l, "step", s.last.outcome.step);
         wr.sample(n, l, 1);
       }},
      // Journeys: one sample per step of the last run (skipped steps have none).
      {"vantage_journey_step_duration_seconds",
       "Duration of each step of the last journey run (DNS lookup to last byte, redirects "
       "included)",
       [](Writer& wr, const std::string& n, const Series& s) {
         for (const auto& st : s.last.steps) {
           if (!st.skipped) wr.sample(n, with(s.labels, "step", st.name), st.phases.total / 1000.0);
         }
       }},
      {"vantage_journey_step_success",
       "Whether each step of the last journey run passed (skipped steps: none)",
       [](Writer& wr, const std::string& n, const Series& s) {
         for (const auto& st : s.last.steps) {
           if (!st.skipped) wr.sample(n, with(s.labels, "step", st.name), st.outcome.ok() ? 1 : 0);
         }
       }},
  };
  for (const auto& g : gauges) {
    w.family(g.name, g.help, "gauge");
    for (const auto& [key, s] : series_) g.emit(w, g.name, s);
  }
  w.family("vantage_check_results_total",
           "Check results by outcome type (ok or a NEL failure type)", "counter");
  for (const auto& [labels, by_type] : results_total_) {
    for (const auto& [type, n] : by_type)
      w.sample("vantage_check_results_total", with(labels, "type", type), n);
  }
  w.family("vantage_check_flaky_results_total", "Results that passed only after a retry",
           "counter");
  for (const auto& [labels, n] : flaky_total_)
    w.sample("vantage_check_flaky_results_total", labels, n);
  if (!route_events_total_.empty()) {
    w.family("vantage_bgp_route_events_total",
             "BGP route events seen for the monitored prefixes, by event", "counter");
    for (const auto& [labels, n] : route_events_total_) {
      w.sample("vantage_bgp_route_events_total", labels, n);
    }
  }
  if (!open_alerts_.empty()) {
    w.family("vantage_bgp_alert_open",
             "BGP alerts open now (hijack, sub_prefix_hijack, route_leak, unexpected_upstream, "
             "visibility_loss, rpki_invalid) by kind and prefix; the series disappears when they "
             "resolve",
             "gauge");
    std::map<std::string, double> by_labels;  // two origins hijacking one prefix: value 2
    for (const auto& [key, labels] : open_alerts_) by_labels[labels] += 1;
    for (const auto& [labels, n] : by_labels) w.sample("vantage_bgp_alert_open", labels, n);
  }
  for (const auto& p : provided_) {
    w.family(p.name, p.help, p.type.c_str());
    if (p.value) {
      w.sample(p.name, p.label, p.value());
    } else {
      for (const auto& [value, n] : p.values())
        w.sample(p.name, with("", p.label.c_str(), value), n);
    }
  }
  return w.str();
}

}  // namespace vantage::probe::sinks
