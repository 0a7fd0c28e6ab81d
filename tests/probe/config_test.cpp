// Every invalid configuration under tests/config/ fails with exactly the message recorded in
// tests/config/expected-errors.tsv (file <TAB> message), and every example config loads.
#include "probe/config.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/config_node.hpp"

namespace fs = std::filesystem;
using namespace vantage;

#ifndef VANTAGE_SOURCE_DIR
#error "VANTAGE_SOURCE_DIR must be defined"
#endif

namespace {

struct Cwd {
  fs::path old = fs::current_path();
  explicit Cwd(const fs::path& p) { fs::current_path(p); }
  ~Cwd() { fs::current_path(old); }
};

std::map<std::string, std::string> expected_errors(const fs::path& dir) {
  std::map<std::string, std::string> out;
  std::ifstream in(dir / "expected-errors.tsv");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto tab = line.find('\t');
    out[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return out;
}

}  // namespace

TEST_CASE("every invalid config fails with its exact message", "[probe][config]") {
  const fs::path dir = fs::path(VANTAGE_SOURCE_DIR) / "tests" / "config";
  Cwd cwd(dir);
  const auto expected = expected_errors(dir);
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("invalid-", 0) != 0) continue;
    INFO(name);
    const auto it = expected.find(name);
    REQUIRE(it != expected.end());
    std::string message = "(loaded without error)";
    try {
      probe::load_probe_config(name);
    } catch (const ConfigError& e) {
      message = e.what();
    }
    CHECK(message == it->second);
    ++checked;
  }
  CHECK(checked >= 12);
  CHECK(checked == static_cast<int>(expected.size()));
}

TEST_CASE("the example region configs load", "[probe][config]") {
  const fs::path dir = fs::path(VANTAGE_SOURCE_DIR) / "regions";
  int loaded = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    INFO(entry.path().string());
    setenv("VANTAGE_PROBE_TOKEN", "example-token", 1);
    setenv("SHOP_PROBE_PASSWORD", "example-password", 1);
    CHECK_NOTHROW(probe::load_probe_config(entry.path().string()));
    ++loaded;
  }
  CHECK(loaded >= 2);
}
