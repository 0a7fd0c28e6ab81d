#include "common/log.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace vantage;
using namespace std::chrono;

namespace {

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("a rate-limited log writes one line per interval and counts the rest", "[common][log]") {
  const auto path = (std::filesystem::temp_directory_path() / "vantage-log-test.jsonl").string();
  std::filesystem::remove(path);
  log::init(log::Level::info, "test", path);
  log::RateLimited limited(seconds(10));
  const steady_clock::time_point t0{seconds(1000)};  // a fake clock: no sleeping
  CHECK(limited.write(log::Level::warn, "accept_failed", {{"error", "EMFILE"}}, t0));
  for (int i = 1; i <= 5000; ++i) {
    CHECK_FALSE(limited.write(log::Level::warn, "accept_failed", {{"error", "EMFILE"}},
                              t0 + milliseconds(i)));
  }
  CHECK(limited.suppressed() == 5000);
  CHECK_FALSE(limited.write(log::Level::warn, "accept_failed", {}, t0 + milliseconds(9999)));
  CHECK(limited.write(log::Level::warn, "accept_failed", {{"error", "EMFILE"}}, t0 + seconds(10)));
  CHECK(limited.suppressed() == 0);
  log::init(log::Level::info, "test");  // back to stderr: the file is closed
  const auto lines = lines_of(path);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].find("\"suppressed\"") == std::string::npos);
  CHECK(lines[1].find("\"event\":\"accept_failed\",\"error\":\"EMFILE\",\"suppressed\":5001") !=
        std::string::npos);
  std::filesystem::remove(path);
}
