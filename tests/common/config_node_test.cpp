#include "common/config_node.hpp"

#include <catch2/catch.hpp>

using namespace vantage;
using namespace std::chrono;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

TEST_CASE("unknown keys are errors that name file, line, column and key", "[common][config]") {
  const auto root = ConfigNode::load_string("a: 1\nb:\n  c: 2\n  typo: 3\n", "t.yaml");
  CHECK(error_of([&] { root.require("b").expect_keys({"c"}); }) ==
        "t.yaml:4:3: b.typo: unknown key (allowed: c)");
}

TEST_CASE("missing required keys name the parent", "[common][config]") {
  const auto root = ConfigNode::load_string("outer:\n  x: 1\n", "t.yaml");
  CHECK(error_of([&] { root.require("outer").require("y"); }) ==
        "t.yaml:2:3: outer: missing required key \"y\"");
}

TEST_CASE("duplicate keys are rejected", "[common][config]") {
  const auto root = ConfigNode::load_string("a: 1\na: 2\n", "t.yaml");
  CHECK(error_of([&] { root.expect_keys({"a"}); }) == "t.yaml:2:1: a: key given more than once");
}

TEST_CASE("scalars are typed strictly", "[common][config]") {
  const auto root =
      ConfigNode::load_string("n: ten\nd: 5\nb: yes\nl: [1]\nsize: 64KiB\n", "t.yaml");
  CHECK(error_of([&] { root.require("n").as_int(0, 100); }) ==
        "t.yaml:1:4: n: expected an integer, got \"ten\"");
  CHECK(error_of([&] { root.require("d").as_duration(seconds(1), seconds(10)); }) ==
        "t.yaml:2:4: d: expected a duration such as 500ms, 10s or 1m30s, got \"5\"");
  CHECK(error_of([&] { root.require("b").as_bool(); }) ==
        "t.yaml:3:4: b: expected true or false, got \"yes\"");
  CHECK(error_of([&] { root.require("l").as_string(); }) ==
        "t.yaml:4:4: l: expected a string, got a list");
  CHECK(root.require("size").as_bytes(0, 1 << 20) == 65536);
  CHECK(error_of([&] { root.require("size").as_bytes(0, 1000); }) ==
        "t.yaml:5:7: size: expected a size from 0 to 1000 bytes, got 64KiB");
}

TEST_CASE("list items carry their index in the key path", "[common][config]") {
  const auto root =
      ConfigNode::load_string("checks:\n  - id: a\n  - id: 7x\n    bad: 1\n", "t.yaml");
  const auto items = root.require("checks").items();
  CHECK(items[1].path() == "checks[1]");
  CHECK(error_of([&] { items[1].expect_keys({"id"}); }) ==
        "t.yaml:4:5: checks[1].bad: unknown key (allowed: id)");
}

TEST_CASE("YAML syntax errors carry the parser's position", "[common][config]") {
  CHECK(error_of([] {
          ConfigNode::load_string("a: [1, 2\nb: 3\n", "bad.yaml");
        }).rfind("bad.yaml:", 0) == 0);
  CHECK(error_of([] { ConfigNode::load_file("/nonexistent/x.yaml"); }) ==
        "/nonexistent/x.yaml: cannot read the file");
}
