#include "common/failure_type.hpp"

#include <catch2/catch.hpp>
#include <set>
#include <string>

using namespace vantage;

TEST_CASE("every failure type has a unique name that parses back", "[common][taxonomy]") {
  std::set<std::string> names;
  for (FailureType t : all_failure_types()) {
    const std::string name(to_string(t));
    CHECK(names.insert(name).second);
    REQUIRE(parse_failure_type(name));
    CHECK(*parse_failure_type(name) == t);
  }
  CHECK(names.size() == 32);
}

TEST_CASE("the taxonomy uses the NEL spec names", "[common][taxonomy]") {
  CHECK(to_string(FailureType::dns_name_not_resolved) == "dns.name_not_resolved");
  CHECK(to_string(FailureType::tcp_timed_out) == "tcp.timed_out");
  CHECK(to_string(FailureType::tls_cert_authority_invalid) == "tls.cert.authority_invalid");
  CHECK(to_string(FailureType::http_response_redirect_loop) == "http.response.redirect_loop");
  CHECK(to_string(FailureType::assertion_failed) == "assertion.failed");
  CHECK_FALSE(parse_failure_type("tcp.oops"));
}

TEST_CASE("NEL phases follow the type's group", "[common][taxonomy]") {
  CHECK(nel_phase(FailureType::dns_failed) == NelPhase::dns);
  CHECK(nel_phase(FailureType::tcp_refused) == NelPhase::connection);
  CHECK(nel_phase(FailureType::tls_cert_date_invalid) == NelPhase::connection);
  CHECK(nel_phase(FailureType::http_error) == NelPhase::application);
  CHECK(nel_phase(FailureType::ok) == NelPhase::application);
  CHECK(nel_phase(FailureType::timeout) == NelPhase::application);
}
