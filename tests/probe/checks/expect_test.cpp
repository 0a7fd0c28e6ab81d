#include "probe/checks/expect.hpp"

#include <catch2/catch.hpp>

#include "common/config_node.hpp"

using namespace vantage;
using namespace vantage::probe::checks;
using nlohmann::json;

TEST_CASE("status sets accept codes and classes", "[probe][expect]") {
  const auto root = ConfigNode::load_string("a: [200, 3xx]\nb: 404\nc: [\"OK\"]\n", "t.yaml");
  const StatusSet a = StatusSet::parse(root.require("a"));
  CHECK(a.contains(200));
  CHECK(a.contains(301));
  CHECK_FALSE(a.contains(204));
  CHECK(a.text() == "200, 3xx");
  CHECK(StatusSet::parse(root.require("b")).contains(404));
  CHECK(StatusSet::default_set().contains(299));
  CHECK_FALSE(StatusSet::default_set().contains(404));
  CHECK_THROWS_WITH(
      StatusSet::parse(root.require("c")),
      "t.yaml:3:5: c[0]: expected an HTTP status code (100-599) or a class like 2xx, got \"OK\"");
}

TEST_CASE("JSON locations accept pointers and a JSONPath subset", "[probe][expect]") {
  std::string error;
  CHECK(parse_json_location("/items/0/sku", error)->to_string() == "/items/0/sku");
  CHECK(parse_json_location("$.items[0].sku", error)->to_string() == "/items/0/sku");
  CHECK(parse_json_location("$['a b'].c", error)->to_string() == "/a b/c");
  CHECK(parse_json_location("$", error)->to_string() == "");
  CHECK_FALSE(parse_json_location("$.items[*]", error));
  CHECK_FALSE(parse_json_location("items", error));
  CHECK(error.find("expected a JSON pointer") != std::string::npos);
  CHECK_FALSE(parse_json_location("/a/~2", error));
}

TEST_CASE("value matchers compare typed JSON values", "[probe][expect]") {
  const auto root = ConfigNode::load_string(
      "n: 2\ns: BOOK-1\nm: {matches: '^ord-[0-9]+$'}\ne: {exists: false}\nb: true\n", "t.yaml");
  const json doc = json::parse(R"({"n": 2.0, "s": "BOOK-1", "m": "ord-42", "b": true})");
  std::string actual;
  CHECK(ValueMatcher::parse(root.require("n")).check(&doc["n"], actual));
  CHECK(ValueMatcher::parse(root.require("s")).check(&doc["s"], actual));
  CHECK(ValueMatcher::parse(root.require("m")).check(&doc["m"], actual));
  CHECK(ValueMatcher::parse(root.require("e")).check(nullptr, actual));
  CHECK_FALSE(ValueMatcher::parse(root.require("e")).check(&doc["n"], actual));
  CHECK(ValueMatcher::parse(root.require("b")).check(&doc["b"], actual));
  CHECK_FALSE(ValueMatcher::parse(root.require("s")).check(&doc["m"], actual));
  CHECK(actual == "ord-42");
}

TEST_CASE("patterns are RE2 and report bad expressions at load", "[probe][expect]") {
  const auto root = ConfigNode::load_string("ok: 'Wel+come'\nbad: '(unclosed'\n", "t.yaml");
  const Pattern p = Pattern::parse(root.require("ok"));
  CHECK(p.search("xx Wellcome yy"));
  CHECK_FALSE(p.search("Welcme"));
  CHECK_THROWS_WITH(
      Pattern::parse(root.require("bad")),
      Catch::Matchers::StartsWith("t.yaml:2:6: bad: invalid regular expression: missing )"));
  std::string err;
  auto cap = Pattern::compile("token=([a-z0-9]+)", err);
  CHECK(*cap->capture("a token=abc123 b") == "abc123");
}
