#include "probe/sinks/metrics_sink.hpp"

#include <catch2/catch.hpp>

using namespace vantage;
using namespace vantage::probe::sinks;

namespace {
CheckResult http_result(bool ok) {
  CheckResult r;
  r.check_id = "shop-home";
  r.check_kind = "http";
  r.time = from_unix_nanos(1'700'000'000'000'000'000LL);
  r.target.server_ip = "192.0.2.10";
  r.phases.dns = 2;
  r.phases.connect = 1;
  r.phases.ttfb = 10;
  r.phases.transfer = 1;
  r.phases.total = 14;
  r.http = HttpFacts{ok ? 200 : 503, "1.1", 0, 5, 5, "http://shop.example.com/"};
  if (!ok) {
    r.outcome.type = FailureType::http_error;
    r.outcome.failed_at = Phase::assertion;
  }
  return r;
}
}  // namespace

TEST_CASE("metrics use blackbox_exporter names and the vantage labels", "[probe][metrics]") {
  MetricsSink m(Vantage{Source::probe, "eu-1", "eu-west", "DE", "", 3320, "DTAG", ""});
  m.publish(http_result(true), {});
  m.publish(http_result(false), {});
  const std::string text = m.render();
  const std::string labels =
      R"(check="shop-home",kind="http",vantage_point="eu-1",region="eu-west",asn="3320")";
  CHECK(text.find("# TYPE probe_success gauge\nprobe_success{" + labels + "} 0\n") !=
        std::string::npos);
  CHECK(text.find("probe_http_status_code{" + labels + "} 503\n") != std::string::npos);
  CHECK(text.find("probe_http_duration_seconds{" + labels + ",phase=\"processing\"} 0.01\n") !=
        std::string::npos);
  CHECK(text.find("probe_http_duration_seconds{" + labels + ",phase=\"resolve\"} 0.002\n") !=
        std::string::npos);
  CHECK(text.find("probe_duration_seconds{" + labels + "} 0.014\n") != std::string::npos);
  CHECK(text.find("vantage_check_results_total{" + labels + ",type=\"ok\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("vantage_check_results_total{" + labels + ",type=\"http.error\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("vantage_check_failure_info{" + labels +
                  ",type=\"http.error\",failed_at=\"assertion\"} 1\n") != std::string::npos);
}

TEST_CASE("label values are escaped", "[probe][metrics]") {
  CHECK(escape_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
}

TEST_CASE("provided probe health metrics are rendered", "[probe][metrics]") {
  MetricsSink m(Vantage{});
  m.add_gauge("vantage_probe_spool_bytes", "Bytes in the spool", [] { return 42.0; });
  m.add_labelled_counter("vantage_probe_dropped_results_total", "Dropped", "reason", [] {
    return std::map<std::string, double>{{"spool_full", 3}};
  });
  const std::string text = m.render();
  CHECK(text.find("# TYPE vantage_probe_spool_bytes gauge\nvantage_probe_spool_bytes 42\n") !=
        std::string::npos);
  CHECK(text.find("vantage_probe_dropped_results_total{reason=\"spool_full\"} 3\n") !=
        std::string::npos);
}

TEST_CASE("journeys export per-step duration and success with a step label", "[probe][metrics]") {
  MetricsSink m(Vantage{Source::probe, "eu-1", "eu-west", "DE", "", 3320, "DTAG", ""});
  CheckResult r;
  r.check_id = "checkout";
  r.check_kind = "journey";
  r.time = from_unix_nanos(1'700'000'000'000'000'000LL);
  r.phases.total = 60;
  r.outcome.type = FailureType::http_error;
  r.outcome.failed_at = Phase::assertion;
  r.outcome.step_index = 1;
  r.outcome.step = "checkout";
  const char* names[] = {"login", "checkout", "confirm-order", "cancel-order"};
  for (int i = 0; i < 4; ++i) {
    StepResult s;
    s.index = i;
    s.name = names[i];
    s.phases.total = 10.0 * (i + 1);
    if (i == 1) s.outcome.type = FailureType::http_error;
    if (i == 2) s.skipped = true;
    s.always = i == 3;
    r.steps.push_back(s);
  }
  m.publish(r, {});
  const std::string text = m.render();
  const std::string labels =
      R"(check="checkout",kind="journey",vantage_point="eu-1",region="eu-west",asn="3320")";
  CHECK(text.find("probe_success{" + labels + "} 0\n") != std::string::npos);
  CHECK(text.find("probe_duration_seconds{" + labels + "} 0.06\n") != std::string::npos);
  CHECK(text.find("vantage_journey_step_duration_seconds{" + labels + ",step=\"login\"} 0.01\n") !=
        std::string::npos);
  CHECK(text.find("vantage_journey_step_success{" + labels + ",step=\"login\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("vantage_journey_step_success{" + labels + ",step=\"checkout\"} 0\n") !=
        std::string::npos);
  CHECK(text.find("vantage_journey_step_success{" + labels + ",step=\"cancel-order\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("step=\"confirm-order\"") == std::string::npos);  // skipped: no sample
  CHECK(text.find("vantage_check_failure_info{" + labels +
                  ",type=\"http.error\",failed_at=\"assertion\",step=\"checkout\"} 1\n") !=
        std::string::npos);
}

TEST_CASE("route events are counted by their top-level check and event only", "[probe][metrics]") {
  MetricsSink m(Vantage{Source::bgp, "bgp-1", "", "", "", 0, "", ""});
  // Counted without parsing the line: a nested object and a string holding "event" must not
  // be taken for the record's own members; an escaped value falls back to a parse.
  m.publish_record("route_event",
                   R"({"as_path":"64496","check":"ris","collector":"x\",\"event\":\"peer_down",)"
                   R"("event":"announce","peer":{"event":"withdraw"},"prefix":"192.0.2.0/24"})");
  m.publish_record("route_event",
                   R"({"check":"ris","nested":[{"check":"other"},"]"],"event":"announce"})");
  m.publish_record("route_event", R"({"check":"r\u0069s","event":"withdraw"})");
  m.publish_record("route_event", R"({"event":"withdraw","check":"ris","vantage":{"id":"x"}})");
  const std::string text = m.render();
  CHECK_THAT(
      text,
      Catch::Contains(
          R"(vantage_bgp_route_events_total{check="ris",vantage_point="bgp-1",event="announce"} 2)"));
  CHECK_THAT(
      text,
      Catch::Contains(
          R"(vantage_bgp_route_events_total{check="ris",vantage_point="bgp-1",event="withdraw"} 2)"));
  CHECK_THAT(text, !Catch::Contains("peer_down"));
  CHECK_THAT(text, !Catch::Contains(R"(check="other")"));
}
