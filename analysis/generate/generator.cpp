#include "analysis/generate/generator.hpp"

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>

#include "beacon-collector/store/sqlite_store.hpp"
#include "common/ids.hpp"
#include "common/observation.hpp"

namespace vantage::analysis {
namespace {

using collector::BrowserRecord;
using collector::ResultRecord;

struct Network {
  std::uint32_t asn;
  const char* isp;
  const char* region;
  const char* country;
  const char* city;
  const char* resolver;     // the ISP's recursive resolver the probes use
  const char* user_prefix;  // truncated client prefix of its users
  int probes;               // vantage points in it (0: browser users only)
  int utc_offset_hours;     // its users' local time, for their diurnal traffic
};

// Documentation ASNs and addresses (RFC 5398, RFC 5737).
constexpr Network kNetworks[] = {
    {64501, "Example Fiber", "eu-west", "DE", "Frankfurt am Main", "192.0.2.11", "198.51.100.0/26",
     2, 1},
    {64502, "Example Cable", "eu-west", "DE", "Berlin", "192.0.2.12", "198.51.100.64/26", 2, 1},
    {64503, "Example Mobile", "us-east", "US", "Ashburn", "192.0.2.13", "198.51.100.128/26", 2, -5},
    {64504, "Example DSL", "ap-southeast", "AU", "Sydney", "192.0.2.14", "198.51.100.192/26", 2,
     11},
    {64505, "Example Telecom", "eu-west", "FR", "Paris", "192.0.2.15", "203.0.113.0/26", 0, 1},
};

constexpr const char* kSite = "https://shop.example.com";
constexpr const char* kServerIp = "203.0.113.10";
constexpr const char* kEndpoints[] = {"/", "/api/cart", "/api/checkout", "/static/app.js"};

// Background noise, per probe run (http and journey checks; dns checks have their own) and per
// user request. Each is a share of the runs or requests, and each failure is a single one: no
// fault scenario, no run of them.
constexpr double kProbeTimeout = 0.003;  // tcp.timed_out
constexpr double kProbe503 = 0.002;      // http.error 503
constexpr double kProbeSlow = 0.005;     // passed, 1.5 to 4.5 s slower
constexpr double kDnsTimeout = 0.002;    // dns.unreachable: the resolver did not answer once
constexpr double kProbeSkip = 0.001;     // a vantage point skips a minute (restart, update)

}  // namespace

const std::vector<std::string>& generator_scenarios() {
  static const std::vector<std::string> s = {
      "baseline",      "isp-blackhole", "http-4xx-spike", "dns-nxdomain",        "slow-checkout",
      "global-outage", "degraded",      "users-only-asn", "vantage-point-silent"};
  return s;
}

GeneratorSummary generate(const std::string& db_path, const GeneratorOptions& o) {
  const auto& names = generator_scenarios();
  if (std::find(names.begin(), names.end(), o.scenario) == names.end()) {
    throw std::invalid_argument("unknown scenario \"" + o.scenario + "\"");
  }
  collector::store::SqliteStore store(db_path);
  std::mt19937_64 rng(o.seed);
  IdGenerator ids(o.seed);
  auto uniform = [&] { return std::uniform_real_distribution<double>(0, 1)(rng); };
  auto lognormal = [&](double median, double sigma) {
    return median * std::exp(sigma * std::normal_distribution<double>(0, 1)(rng));
  };
  const std::int64_t minute = 60'000'000'000;
  const auto minutes = static_cast<std::int64_t>(o.hours * 60);
  GeneratorSummary sum;
  // The fault: from 45 % to 70 % of the run (at least an hour of baseline before it); a global
  // outage lasts 20 minutes from 45 %.
  if (o.scenario != "baseline") {
    sum.fault_from_ns = o.start_ns + minutes * 45 / 100 * minute;
    sum.fault_to_ns = o.scenario == "global-outage" ? sum.fault_from_ns + 20 * minute
                                                    : o.start_ns + minutes * 70 / 100 * minute;
  }
  const Network& blackholed = kNetworks[1];
  const Network& hijacked_dns = kNetworks[2];
  const Network& lossy = kNetworks[3];
  const Network& users_only = kNetworks[4];
  const char* spiked_country = "FR";
  const std::string silent_probe = "us-east-64503-1";  // vantage-point-silent: it stops
  auto as_name = [](const Network& n) { return "AS" + std::to_string(n.asn) + " " + n.isp; };
  if (o.scenario == "isp-blackhole") {
    sum.fault = std::string("AS") + std::to_string(blackholed.asn) + " " + blackholed.isp +
                ": its route to " + kServerIp +
                " black-holed (probes and users time out), the origin's prefix "
                "leaked by AS64510 (a route_leak from a bgp check)";
  } else if (o.scenario == "http-4xx-spike") {
    sum.fault = std::string("403 from a WAF rule on /api/checkout for users in ") + spiked_country;
  } else if (o.scenario == "dns-nxdomain") {
    sum.fault = std::string("resolver ") + hijacked_dns.resolver + " (AS" +
                std::to_string(hijacked_dns.asn) + ") answers NXDOMAIN for shop.example.com";
  } else if (o.scenario == "slow-checkout") {
    sum.fault = "the checkout step takes about 3.5 s instead of 0.4 s";
  } else if (o.scenario == "global-outage") {
    sum.fault =
        std::string("the origin ") + kServerIp +
        " unreachable from everywhere (its prefix black-holed upstream): every vantage point and "
        "every user times out";
  } else if (o.scenario == "degraded") {
    sum.fault =
        as_name(lossy) +
        ": packet loss, 20 % of its vantage points' runs time out and 10 % take 3 s longer; "
        "2 % of its users' requests time out";
  } else if (o.scenario == "vantage-point-silent") {
    sum.fault = "vantage point " + silent_probe +
                " stopped: no results, no heartbeats (its targets are fine)";
  } else if (o.scenario == "users-only-asn") {
    sum.fault = as_name(users_only) + " (users, no vantage point): its route to " + kServerIp +
                " black-holed, its users' requests time out";
  }

  std::vector<BrowserRecord> reports;
  std::vector<ResultRecord> results;
  // isp-blackhole: the leaked path behind it, as a probe's bgp check reports it (a route_leak of
  // the origin's prefix opening at the fault and resolving after it).
  if (o.scenario == "isp-blackhole") {
    for (const bool open : {true, false}) {
      BgpRecord b;
      b.kind = "bgp_alert";
      b.time = from_unix_nanos(open ? sum.fault_from_ns - 60'000'000'000
                                    : sum.fault_to_ns + 30'000'000'000);
      b.id = ids.uuid_v7(b.time);
      b.check = "shop-prefixes-bgp";
      b.vantage.source = Source::bgp;
      b.vantage.probe_id = "eu-west-64501-1";
      b.event = "route_leak";
      b.status = open ? "open" : "resolved";
      b.alert_key = "route_leak 203.0.113.0/24 203.0.113.0/24 64510";
      b.prefix = b.monitored_prefix = "203.0.113.0/24";
      b.origin = 64500;
      b.leaker = 64510;
      nlohmann::json j{{"kind", b.kind},
                       {"id", b.id},
                       {"check", b.check},
                       {"time", format_rfc3339(b.time)},
                       {"alert", b.event},
                       {"status", b.status},
                       {"alert_key", b.alert_key},
                       {"prefix", b.prefix},
                       {"monitored_prefix", b.monitored_prefix},
                       {"origin", 64500},
                       {"leaker", 64510},
                       {"segment", {64502, 64510, 64503}},
                       {"peers", 3},
                       {"vantage", to_json(b.vantage)}};
      ResultRecord rec;
      rec.id = b.id;
      rec.kind = b.kind;
      rec.time_ns = to_unix_nanos(b.time);
      rec.received_ns = rec.time_ns + 1'000'000'000;
      rec.probe_id = b.vantage.probe_id;
      rec.check = b.check;
      rec.json = j.dump();
      rec.bgp = b;
      results.push_back(std::move(rec));
    }
  }
  std::vector<collector::HeartbeatRecord> beats;
  auto flush = [&](bool force) {
    if (!force && reports.size() + results.size() < 20000) return;
    collector::store::Batch batch;
    for (const auto& r : reports) batch.reports.push_back(&r);
    for (const auto& r : results) batch.results.push_back(&r);
    for (const auto& h : beats) batch.heartbeats.push_back(&h);
    const auto outcome = store.write(batch);
    if (outcome.error) throw std::system_error(outcome.error, "writing " + db_path);
    sum.reports += reports.size();
    sum.results += results.size();
    reports.clear();
    results.clear();
    beats.clear();
  };

  for (std::int64_t m = 0; m < minutes; ++m) {
    const std::int64_t t0 = o.start_ns + m * minute;
    const bool fault = sum.fault_from_ns && t0 >= sum.fault_from_ns && t0 < sum.fault_to_ns;
    const double utc_hour = std::fmod(static_cast<double>(t0 / minute) / 60.0, 24.0);
    const bool outage = fault && o.scenario == "global-outage";
    for (const Network& net : kNetworks) {
      // Users' traffic follows their local day: busiest mid-afternoon, a third of it before dawn.
      const double hour = utc_hour + net.utc_offset_hours;
      const double diurnal = 1 + 0.5 * std::sin(2 * M_PI * (hour - 9) / 24);
      const bool net_blackholed = fault && o.scenario == "isp-blackhole" && &net == &blackholed;
      const bool net_nxdomain = fault && o.scenario == "dns-nxdomain" && &net == &hijacked_dns;
      const bool net_lossy = fault && o.scenario == "degraded" && &net == &lossy;
      const bool users_cut =
          (fault && o.scenario == "users-only-asn" && &net == &users_only) || outage;
      // Probes: http, journey and dns checks once a minute, at jittered seconds.
      for (int p = 1; p <= net.probes; ++p) {
        const std::string probe_id =
            std::string(net.region) + "-" + std::to_string(net.asn) + "-" + std::to_string(p);
        if (fault && o.scenario == "vantage-point-silent" && probe_id == silent_probe) continue;
        // Heartbeats every 30 s (the probe's default), whatever its runs do (no random draw: the
        // other streams stay as they were).
        for (std::int64_t at : {t0, t0 + minute / 2}) {
          collector::HeartbeatRecord h;
          h.received_ns = at;
          h.time_ns = at;
          h.probe_id = probe_id;
          h.region = net.region;
          h.country = net.country;
          h.isp = net.isp;
          h.asn = net.asn;
          h.version = "0.3.0";
          h.revision = "0000000";
          h.config_hash = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
          h.config_source = "file";
          h.checks = std::vector<std::string>{"shop-home", "checkout", "shop-dns"};
          h.spool_results = 0;
          h.spool_bytes = 0;
          h.heartbeat_interval_ns = minute / 2;
          h.started_ns = o.start_ns;
          beats.push_back(std::move(h));
        }
        if (uniform() < kProbeSkip) continue;  // this minute's runs never happened
        Vantage v;
        v.probe_id = probe_id;
        v.region = net.region;
        v.country = net.country;
        v.city = net.city;
        v.asn = net.asn;
        v.isp = net.isp;
        for (const char* check : {"shop-home", "checkout", "shop-dns"}) {
          CheckResult r;
          r.time = from_unix_nanos(t0 + static_cast<std::int64_t>(uniform() * 50e9));
          r.id = ids.uuid_v7(r.time);
          r.check_id = check;
          r.check_kind = std::string(check) == "checkout"   ? "journey"
                         : std::string(check) == "shop-dns" ? "dns"
                                                            : "http";
          r.vantage = v;
          const bool dns_check = r.check_kind == "dns";
          if (dns_check) {
            r.target.host = "shop.example.com";
            r.target.server_ip = net.resolver;
            r.target.resolver = std::string(net.resolver) + ":53";
            r.phases.dns = lognormal(12, 0.4);
            r.phases.total = *r.phases.dns;
          } else {
            r.target.url = std::string(kSite) + (r.check_kind == "journey" ? "/api/checkout" : "/");
            r.target.host = "shop.example.com";
            r.target.server_ip = kServerIp;
            r.phases.dns = lognormal(8, 0.4);
            r.phases.connect = lognormal(20, 0.3);
            r.phases.tls = lognormal(30, 0.3);
            r.phases.ttfb = lognormal(r.check_kind == "journey" ? 450 : 80, 0.3);
            r.phases.total = *r.phases.dns + *r.phases.connect + *r.phases.tls + *r.phases.ttfb;
            if (r.check_kind == "journey" && fault && o.scenario == "slow-checkout")
              r.phases.total += lognormal(3100, 0.1);
            r.outcome.status_code = 200;
          }
          // Background noise: a rare timeout, 503 or slow run anywhere, a rare resolver timeout.
          const double noise = uniform();
          // degraded: one draw per run for the packet loss (20 % time out, 10 % crawl).
          const double loss = net_lossy && !dns_check ? uniform() : 1.0;
          if (net_nxdomain) {
            r.outcome = {};
            r.outcome.type = FailureType::dns_name_not_resolved;
            r.outcome.failed_at = Phase::dns;
            r.outcome.detail = "NXDOMAIN";
          } else if ((net_blackholed || outage || loss < 0.2) && !dns_check) {
            r.outcome = {};
            r.outcome.type = FailureType::tcp_timed_out;
            r.outcome.failed_at = Phase::connect;
            r.phases = {};
            r.phases.dns = 8;
            r.phases.total = 10000;
          } else if (loss < 0.3) {
            // Retransmissions: passed, about 3 s late.
            const double late = lognormal(3000, 0.15);
            r.phases.connect = *r.phases.connect + late;
            r.phases.total += late;
          } else if (dns_check) {
            if (noise < kDnsTimeout) {
              r.outcome = {};
              r.outcome.type = FailureType::dns_unreachable;
              r.outcome.failed_at = Phase::dns;
              r.outcome.detail = "no answer from the resolver";
              r.phases.dns.reset();
              r.phases.total = 5000;
            }
          } else if (noise < kProbeTimeout) {
            r.outcome.type = FailureType::tcp_timed_out;
            r.outcome.failed_at = Phase::connect;
            r.outcome.status_code.reset();
          } else if (noise < kProbeTimeout + kProbe503) {
            r.outcome.type = FailureType::http_error;
            r.outcome.status_code = 503;
          } else if (noise < kProbeTimeout + kProbe503 + kProbeSlow) {
            // A slow run (a cold cache, a retransmission): 1.5 to 4.5 s late, deterministic in
            // the draw so that the other noise keeps its sequence.
            const double lateness = 1500 + 3000 * (noise - kProbeTimeout - kProbe503) / kProbeSlow;
            r.phases.ttfb = *r.phases.ttfb + lateness;
            r.phases.total += lateness;
          }
          ResultRecord rec;
          rec.id = r.id;
          rec.kind = "check_result";
          rec.time_ns = to_unix_nanos(r.time);
          rec.received_ns = rec.time_ns + 1'000'000'000;
          rec.probe_id = v.probe_id;
          rec.region = v.region;
          rec.asn = v.asn;
          rec.check = r.check_id;
          rec.check_kind = r.check_kind;
          rec.target_url = r.target.url;
          rec.server_ip = r.target.server_ip;
          rec.outcome = std::string(to_string(r.outcome.type));
          rec.status_code = r.outcome.status_code;
          rec.total_ms = r.phases.total;
          rec.json = to_ndjson_line(r);
          results.push_back(std::move(rec));
        }
      }
      // Browser users: their requests, reported by NEL with success_fraction 0.05 (one report
      // stands for 20 successful requests) and failure_fraction 1.0 (every failure reported).
      const double expected = o.users_per_minute * 20 * diurnal;
      const int requests = std::poisson_distribution<int>(expected)(rng);
      for (int i = 0; i < requests; ++i) {
        const char* path = kEndpoints[std::uniform_int_distribution<int>(0, 3)(rng)];
        const double u = uniform();
        const bool spiked = fault && o.scenario == "http-4xx-spike" &&
                            std::string(net.country) == spiked_country &&
                            std::string(path) == "/api/checkout";
        BrowserRecord b;
        if (net_blackholed || users_cut || (net_lossy && u < 0.02)) {
          b.nel_type = "tcp.timed_out";
          b.nel_phase = "connection";
        } else if (net_nxdomain) {
          b.nel_type = "dns.name_not_resolved";
          b.nel_phase = "dns";
        } else if (spiked && u < 0.35) {
          b.nel_type = "http.error";
          b.nel_phase = "application";
          b.status_code = 403;
        } else if (u < 0.004) {
          b.nel_type = "http.error";
          b.nel_phase = "application";
          b.status_code = std::string(path) == "/static/app.js" ? 404 : 502;
        } else if (u < 0.005) {
          b.nel_type = "tcp.reset";
          b.nel_phase = "connection";
        } else if (u < 0.0053) {
          b.nel_type = "dns.name_not_resolved";  // a user's own resolver, now and then
          b.nel_phase = "dns";
        } else {
          if (uniform() >= 0.05) continue;  // a success that was not sampled
          b.nel_type = "ok";
          b.nel_phase = "application";
          b.status_code = 200;
        }
        b.event_ns = t0 + static_cast<std::int64_t>(uniform() * 60e9);
        b.received_ns = b.event_ns + 30'000'000'000;
        b.kind = "browser_report";
        b.type = "network-error";
        b.endpoint = "reports/nel";
        b.url = std::string(kSite) + path;
        b.origin = kSite;
        b.method = std::string(path).rfind("/api/", 0) == 0 ? "POST" : "GET";
        b.protocol = "h2";
        b.server_ip = b.nel_phase == "dns" ? "" : kServerIp;
        b.client_prefix = net.user_prefix;
        b.country = net.country;
        b.city = net.city;
        b.asn = net.asn;
        b.isp = net.isp;
        b.ua_family = "Chrome";
        b.ua_major = 131;
        b.elapsed_ms = b.nel_type == "tcp.timed_out"
                           ? 30000
                           : lognormal(std::string(path) == "/api/checkout" ? 420 : 90, 0.4);
        b.weight = b.nel_type == "ok" ? 20 : 1;
        nlohmann::json body{{"type", b.nel_type},
                            {"phase", b.nel_phase},
                            {"elapsed_time", static_cast<int>(*b.elapsed_ms)},
                            {"method", b.method},
                            {"protocol", b.protocol},
                            {"referrer", ""},
                            {"sampling_fraction", b.nel_type == "ok" ? 0.05 : 1.0},
                            {"server_ip", b.server_ip},
                            {"status_code", b.status_code.value_or(0)}};
        b.body = body.dump();
        reports.push_back(std::move(b));
      }
    }
    flush(false);
  }
  flush(true);
  return sum;
}

}  // namespace vantage::analysis
