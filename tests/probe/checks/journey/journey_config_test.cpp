// Journey templates (${var}, ${env:…}, built-ins, $${) and journey config parsing: which
// variables a step may use, includes, and the errors a user sees.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/config_node.hpp"
#include "probe/checks/journey/journey_check.hpp"
#include "probe/checks/journey/template.hpp"

using namespace vantage;
using namespace vantage::probe::checks::journey;

namespace {

Template parse_ok(std::string_view text, std::set<std::string>& secrets) {
  std::string error;
  auto t = Template::parse(text, secrets, error);
  INFO(error);
  REQUIRE(t);
  return *t;
}

std::string render(const Template& t, const Variables& vars) {
  std::string missing;
  auto out = t.render(vars, missing);
  INFO("missing " << missing);
  REQUIRE(out);
  return *out;
}

}  // namespace

TEST_CASE("templates substitute variables and keep literal text", "[probe][journey]") {
  std::set<std::string> secrets;
  const Template t = parse_ok("${base}/api/cart/${cart_id}?n=$${x}", secrets);
  CHECK(t.references() == std::vector<std::string>{"base", "cart_id"});
  CHECK(render(t, {{"base", "https://shop.test"}, {"cart_id", "c-1"}}) ==
        "https://shop.test/api/cart/c-1?n=${x}");
  CHECK(secrets.empty());

  std::string missing;
  CHECK_FALSE(t.render({{"base", "https://shop.test"}}, missing));
  CHECK(missing == "cart_id");

  const Template plain = parse_ok("no variables $ here", secrets);
  CHECK(plain.constant());
  CHECK(render(plain, {}) == "no variables $ here");
}

TEST_CASE("${env:NAME} is read once at load and becomes a secret", "[probe][journey]") {
  setenv("VANTAGE_TEST_JOURNEY_SECRET", "s3cr3t-value", 1);
  std::set<std::string> secrets;
  const Template t = parse_ok("Bearer ${env:VANTAGE_TEST_JOURNEY_SECRET}", secrets);
  setenv("VANTAGE_TEST_JOURNEY_SECRET", "changed-later", 1);
  CHECK(render(t, {}) == "Bearer s3cr3t-value");
  CHECK(secrets == std::set<std::string>{"s3cr3t-value"});
  CHECK(t.references().empty());
  CHECK(redact("token Bearer s3cr3t-value and s3cr3t-value", secrets) ==
        "token Bearer [redacted] and [redacted]");
  unsetenv("VANTAGE_TEST_JOURNEY_SECRET");

  std::string error;
  CHECK_FALSE(Template::parse("${env:VANTAGE_TEST_JOURNEY_SECRET}", secrets, error));
  CHECK(error ==
        "environment variable VANTAGE_TEST_JOURNEY_SECRET is not set (referenced as "
        "${env:VANTAGE_TEST_JOURNEY_SECRET})");
}

TEST_CASE("template syntax errors are reported", "[probe][journey]") {
  std::set<std::string> secrets;
  std::string error;
  CHECK_FALSE(Template::parse("${base", secrets, error));
  CHECK(error == "unterminated ${ at offset 0 (write $${ for a literal ${)");
  CHECK_FALSE(Template::parse("${a b}", secrets, error));
  CHECK(error == "invalid variable name \"a b\" (letters, digits, '_', '-', '.')");
  CHECK(is_builtin("uuid"));
  CHECK(is_builtin("random_hex"));
  CHECK_FALSE(is_builtin("token"));
}

TEST_CASE("journey configs resolve variables, extractions and built-ins at load",
          "[probe][journey]") {
  const auto root = ConfigNode::load_string(R"(
variables: {base: "https://shop.test"}
steps:
  - name: login
    request:
      method: POST
      url: "${base}/api/login"
      form: {user: "u-${uuid}", password: pw}
    extract:
      token: {json: $.token}
      session: {cookie: session}
      code: {status: true}
  - name: cart
    request:
      method: POST
      url: "${base}/api/cart"
      headers: {Authorization: "Bearer ${token}"}
      json: {sku: BOOK-1, qty: 2, note: "${session}"}
    expect:
      status: [201]
      json: {/items/0/sku: BOOK-1}
      max_duration: 2s
    extract:
      cart_id: {regex: "\"id\":\"([^\"]+)\""}
  - name: cleanup
    always: true
    request: {method: DELETE, url: "${base}/api/cart/${cart_id}", follow_redirects: false}
)",
                                            "j.yaml");
  const JourneyConfig c = parse_journey_config(root);
  REQUIRE(c.steps.size() == 3);
  CHECK(c.variables.at("base") == "https://shop.test");
  CHECK(c.steps[0].method == "POST");
  CHECK(c.steps[0].body.kind == Body::Kind::form);
  REQUIRE(c.steps[0].extract.size() == 3);
  CHECK(c.steps[0].extract[1].source == Extraction::Source::cookie);
  CHECK(c.steps[0].extract[2].source == Extraction::Source::status);
  CHECK(c.steps[1].body.kind == Body::Kind::json);
  CHECK(c.steps[1].max_duration == std::chrono::seconds(2));
  CHECK(c.steps[1].status.contains(201));
  CHECK_FALSE(c.steps[1].status.contains(200));
  CHECK(c.steps[2].always);
  CHECK_FALSE(c.steps[2].follow_redirects);
  CHECK(c.steps[2].method == "DELETE");
}

TEST_CASE("journey config errors name the file, line, column and key", "[probe][journey]") {
  auto error_of = [](const char* yaml) {
    try {
      parse_journey_config(ConfigNode::load_string(yaml, "j.yaml"));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  // A variable a later step extracts is not available to an earlier one.
  CHECK(error_of(R"(steps:
  - name: a
    request: {url: "https://shop.test/${id}"}
  - name: b
    request: {url: "https://shop.test/"}
    extract: {id: {json: /id}}
)") == "j.yaml:3:20: steps[0].request.url: variable \"id\" is extracted by step \"b\", which runs "
       "after this one");
  CHECK(error_of(R"(variables: {base: "https://shop.test"}
steps:
  - name: a
    request: {url: "${bsae}/"}
)") == "j.yaml:4:20: steps[0].request.url: variable \"bsae\" is not defined (journey variables: "
       "base; extracted by "
       "earlier steps: none; built-ins: uuid, now_unix, now_unix_ms, random_int, random_hex)");
  CHECK(error_of("steps: []\n") == "j.yaml:1:8: steps: a journey needs at least one step");
  CHECK(error_of(R"(steps:
  - name: a
    request: {url: "https://shop.test/", method: "GE T"}
)") != "(no error)");
  CHECK(error_of(R"(steps:
  - name: a
    request: {url: "https://shop.test/", json: {a: 1}, body: "x"}
)") != "(no error)");
  CHECK(error_of(R"(steps:
  - request: {url: "https://shop.test/"}
)") == "j.yaml:2:5: steps[0]: missing required key \"name\"");
}

TEST_CASE("journeys include their steps from a file relative to the config", "[probe][journey]") {
  const auto dir = std::filesystem::temp_directory_path() / "vantage-journey-include-test";
  std::filesystem::create_directories(dir / "journeys");
  {
    std::ofstream f(dir / "journeys" / "flow.yaml");
    f << "variables: {base: \"https://shop.example.com\", sku: BOOK-1}\n"
         "steps:\n"
         "  - name: browse\n"
         "    request: {url: \"${base}/api/products/${sku}\"}\n";
  }
  {
    std::ofstream f(dir / "probe.yaml");
    f << "include: journeys/flow.yaml\nvariables: {base: \"https://shop.test:8443\"}\n";
  }
  const JourneyConfig c =
      parse_journey_config(ConfigNode::load_file((dir / "probe.yaml").string()));
  // The check's own variables override the included file's.
  CHECK(c.variables.at("base") == "https://shop.test:8443");
  CHECK(c.variables.at("sku") == "BOOK-1");
  REQUIRE(c.steps.size() == 1);
  std::string missing;
  CHECK(c.steps[0].url.render(c.variables, missing) ==
        "https://shop.test:8443/api/products/BOOK-1");
  std::filesystem::remove_all(dir);
}
