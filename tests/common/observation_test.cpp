#include "common/observation.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace vantage;
using nlohmann::json;

namespace {

CheckResult sample() {
  CheckResult r;
  r.id = "018bd011-d8fb-7000-8000-000000000001";
  r.check_id = "shop-home";
  r.check_kind = "http";
  r.time = from_unix_nanos(1'700'000'000'000'000'000LL);
  r.vantage = {Source::probe, "eu-west-dtag-1", "eu-west", "DE", "", 3320, "Deutsche Telekom", ""};
  r.target.url = "https://shop.example.com/";
  r.target.host = "shop.example.com";
  r.target.port = 443;
  r.target.server_ip = "192.0.2.10";
  r.target.resolver = "192.0.2.53:53";
  r.outcome.type = FailureType::http_error;
  r.outcome.failed_at = Phase::assertion;
  r.outcome.status_code = 503;
  r.outcome.detail = "status 503 is not in 2xx";
  r.phases.dns = 1.5;
  r.phases.connect = 0.25;
  r.phases.tls = 3.0;
  r.phases.ttfb = 12.0;
  r.phases.transfer = 0.5;
  r.phases.total = 17.25;
  r.assertions.push_back({"status", false, "2xx", "503"});
  r.http = HttpFacts{503, "2", 0, 120, 120, "https://shop.example.com/"};
  TlsFacts tls;
  tls.version = "TLSv1.3";
  tls.cipher = "TLS_AES_256_GCM_SHA384";
  tls.subject = "CN=shop.example.com";
  tls.issuer = "CN=Test CA";
  tls.dns_names = {"shop.example.com"};
  tls.ip_addresses = {"192.0.2.10"};
  tls.earliest_expiry = from_unix_nanos(1'800'000'000'000'000'000LL);
  tls.verified_chain_expiry = tls.earliest_expiry;
  tls.chain_length = 2;
  r.tls = tls;
  r.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  r.attempts = 2;
  Outcome first;
  first.type = FailureType::tcp_reset;
  first.failed_at = Phase::tls;
  r.failed_attempts.push_back(first);
  return r;
}

}  // namespace

TEST_CASE("a check result survives a JSON round trip unchanged", "[common][model]") {
  const CheckResult r = sample();
  std::string error;
  const auto back = parse_check_result_line(to_ndjson_line(r), error);
  INFO(error);
  REQUIRE(back);
  CHECK(*back == r);
}

TEST_CASE("a DNS result round-trips its answers", "[common][model]") {
  CheckResult r;
  r.id = "x";
  r.check_id = "dns";
  r.check_kind = "dns";
  r.dns = DnsFacts{"NOERROR", "shop.example.com",
                   "A",       {{"shop.example.com.", "A", 300, "192.0.2.1"}},
                   1,         0,
                   false,     false};
  std::string error;
  const auto back = parse_check_result_line(to_ndjson_line(r), error);
  REQUIRE(back);
  CHECK(*back == r);
}

TEST_CASE("a journey result round-trips its steps and is a journey_result", "[common][model]") {
  CheckResult r = sample();
  r.check_kind = "journey";
  r.outcome.type = FailureType::http_error;
  r.outcome.failed_at = Phase::assertion;
  r.outcome.status_code = 500;
  r.outcome.step_index = 1;
  r.outcome.step = "checkout";
  StepResult login;
  login.index = 0;
  login.name = "login";
  login.method = "POST";
  login.url = "https://shop.example.com/api/login";
  login.span_id = "00f067aa0ba902b7";
  login.status_code = 200;
  login.body_bytes = 43;
  login.phases.ttfb = 4.5;
  login.phases.total = 9;
  login.assertions.push_back({"status", true, "200", "200"});
  login.extracted = {"token"};
  StepResult checkout;
  checkout.index = 1;
  checkout.name = "checkout";
  checkout.outcome = r.outcome;
  checkout.outcome.step_index.reset();
  checkout.outcome.step.clear();
  StepResult cleanup;
  cleanup.index = 2;
  cleanup.name = "cancel";
  cleanup.always = true;
  cleanup.skipped = true;
  cleanup.outcome.detail = "not run";
  r.steps = {login, checkout, cleanup};
  const json j = to_json(r);
  CHECK(j.at("kind") == "journey_result");
  CHECK(j.at("outcome").at("step") == "checkout");
  CHECK(j.at("outcome").at("step_index") == 1);
  CHECK(j.at("steps").at(0).at("extracted") == json::array({"token"}));
  std::string error;
  const auto back = parse_check_result_line(to_ndjson_line(r), error);
  INFO(error);
  REQUIRE(back);
  CHECK(*back == r);
}

TEST_CASE("the wire form names the NEL phase and the failing phase", "[common][model]") {
  const json j = to_json(sample());
  CHECK(j["kind"] == "check_result");
  CHECK(j["outcome"]["type"] == "http.error");
  CHECK(j["outcome"]["phase"] == "application");
  CHECK(j["outcome"]["failed_at"] == "assertion");
  CHECK(j["phases_ms"]["ttfb"] == 12.0);
  CHECK(j["time"] == "2023-11-14T22:13:20.000000000Z");
}

TEST_CASE("parsing names the offending field", "[common][model]") {
  std::string error;
  json j = to_json(sample());
  j["outcome"]["type"] = "tcp.oops";
  CHECK_FALSE(check_result_from_json(j, error));
  CHECK(error == "outcome.type: unknown failure type \"tcp.oops\"");

  j = to_json(sample());
  j.erase("id");
  CHECK_FALSE(check_result_from_json(j, error));
  CHECK(error == "id: missing");

  j = to_json(sample());
  j["target"]["port"] = 70000;
  CHECK_FALSE(check_result_from_json(j, error));
  CHECK(error == "target.port: out of range");

  j = to_json(sample());
  j["time"] = "yesterday";
  CHECK_FALSE(check_result_from_json(j, error));
  CHECK(error == "time: expected an RFC 3339 date-time");

  j = to_json(sample());
  j["time"] = "";  // a required time that is empty must not pass as "absent"
  CHECK_FALSE(check_result_from_json(j, error));
  CHECK(error == "time: expected an RFC 3339 date-time");

  CHECK_FALSE(parse_check_result_line("{not json", error));
  CHECK(error == "not valid JSON");
  CHECK_FALSE(parse_check_result_line("[]", error));
  CHECK(error == "expected a JSON object");
}

TEST_CASE("BGP records: route_event and bgp_alert are validated field by field", "[common][model][bgp]") {
  const json event = json::parse(R"({"kind":"route_event","id":"01a200be-b178-7a76-9136-74abc8d7f0fa",
    "check":"bgp-lab","time":"2026-11-22T00:53:47.000000000Z","event":"announce","collector":"lab-frr",
    "peer":{"ip":"192.0.2.1","asn":65000},"prefix":"208.65.153.0/24","monitored_prefix":"208.65.152.0/22",
    "path":[65000,3491,17557],"as_path":"65000 3491 17557","origin":17557,
    "vantage":{"probe_id":"lab-bgp-1","source":"bgp"}})");
  std::string error;
  auto r = bgp_record_from_json(event, error);
  REQUIRE(r);
  CHECK(error.empty());
  CHECK(r->kind == "route_event");
  CHECK(r->event == "announce");
  CHECK(r->peer_ip == "192.0.2.1");
  CHECK(r->peer_asn == 65000);
  CHECK(r->origin == 17557u);
  CHECK(r->as_path == "65000 3491 17557");
  CHECK(r->vantage.source == Source::bgp);
  CHECK(r->vantage.probe_id == "lab-bgp-1");
  CHECK(to_unix_nanos(r->time) == 1795308827000000000LL);

  json bad = event;
  bad["event"] = "flap";
  CHECK_FALSE(bgp_record_from_json(bad, error));
  CHECK(error == "event: expected announce, withdraw, peer_down or peer_up");
  bad = event;
  bad["time"] = "";
  CHECK_FALSE(bgp_record_from_json(bad, error));
  CHECK(error == "time: expected an RFC 3339 date-time");
  bad = event;
  bad.erase("prefix");
  CHECK_FALSE(bgp_record_from_json(bad, error));
  CHECK(error == "prefix: missing");
  bad = event;
  bad["peer"]["asn"] = -1;
  CHECK_FALSE(bgp_record_from_json(bad, error));
  CHECK(error == "peer.asn: out of range");

  json alert = json::parse(R"({"kind":"bgp_alert","id":"01a200be-b178-74df-b77f-2859af788692","check":"bgp-lab",
    "time":"2026-11-22T00:53:47.000000000Z","alert":"route_leak","status":"open",
    "alert_key":"route_leak 104.20.0.0/20 104.20.0.0/20 396531","prefix":"104.20.0.0/20",
    "monitored_prefix":"104.20.0.0/20","origin":13335,"leaker":396531,"segment":[33154,396531,701],
    "vantage":{"probe_id":"lab-bgp-1","source":"bgp"}})");
  r = bgp_record_from_json(alert, error);
  REQUIRE(r);
  CHECK(r->event == "route_leak");
  CHECK(r->status == "open");
  CHECK(r->leaker == 396531u);
  alert["status"] = "closed";
  CHECK_FALSE(bgp_record_from_json(alert, error));
  CHECK(error == "status: expected open or resolved");
  alert["status"] = "resolved";
  alert.erase("alert_key");
  CHECK_FALSE(bgp_record_from_json(alert, error));
  CHECK(error == "alert_key: missing");
  alert["kind"] = "check_result";
  CHECK_FALSE(bgp_record_from_json(alert, error));
  CHECK(error == "kind: expected \"route_event\" or \"bgp_alert\", got \"check_result\"");
}
