#include "probe/sinks/spool.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>

namespace fs = std::filesystem;
using namespace vantage::probe::sinks;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("vantage-spool-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

std::vector<std::string> lines(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back("{\"id\":\"" + std::to_string(i) + "\"}");
  return out;
}

std::vector<std::string> split(const std::string& body) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < body.size()) {
    const auto nl = body.find('\n', start);
    out.push_back(body.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("spooled lines come back in order, in bounded batches", "[probe][spool]") {
  TempDir dir;
  Spool s({dir.path.string(), 1 << 20, 256});
  s.append(lines(0, 50));
  CHECK(s.pending_results() == 50);
  std::vector<std::string> got;
  for (;;) {
    const auto b = s.read_batch(7, 1 << 20);
    if (b.empty()) break;
    CHECK(b.count <= 7);
    for (auto& l : split(b.body)) got.push_back(l);
    s.ack(b);
  }
  CHECK(got == lines(0, 50));
  CHECK(s.pending_results() == 0);
}

TEST_CASE("unacknowledged lines survive a restart; acknowledged ones do not come back",
          "[probe][spool]") {
  TempDir dir;
  {
    Spool s({dir.path.string(), 1 << 20, 300});
    s.append(lines(0, 30));
    const auto b = s.read_batch(10, 1 << 20);
    s.ack(b);
    s.read_batch(10, 1 << 20);  // read, but never acknowledged
  }
  Spool again({dir.path.string(), 1 << 20, 300});
  CHECK(again.pending_results() == 20);
  std::vector<std::string> got;
  for (;;) {
    const auto b = again.read_batch(100, 1 << 20);
    if (b.empty()) break;
    for (auto& l : split(b.body)) got.push_back(l);
    again.ack(b);
  }
  CHECK(got == lines(10, 30));
}

TEST_CASE("a torn last line from a crash is cut off at start-up", "[probe][spool]") {
  TempDir dir;
  {
    Spool s({dir.path.string(), 1 << 20, 1 << 20});
    s.append(lines(0, 3));
  }
  // Simulate a crash in the middle of a write.
  for (const auto& e : fs::directory_iterator(dir.path)) {
    if (e.path().extension() == ".ndjson") {
      std::ofstream out(e.path(), std::ios::app);
      out << "{\"id\":\"half";
    }
  }
  Spool s({dir.path.string(), 1 << 20, 1 << 20});
  CHECK(s.pending_results() == 3);
  const auto b = s.read_batch(100, 1 << 20);
  CHECK(split(b.body) == lines(0, 3));
}

TEST_CASE("a full spool drops its oldest segment and counts what was lost", "[probe][spool]") {
  TempDir dir;
  Spool s({dir.path.string(), 1 << 20, 4096});
  // ~40 bytes a line, 4 KiB segments: 100 lines a segment.
  const std::string pad(30, 'x');
  std::vector<std::string> big;
  for (int i = 0; i < 30000; ++i)
    big.push_back("{\"id\":" + std::to_string(i) + ",\"p\":\"" + pad + "\"}");
  s.append(big);
  CHECK(s.bytes() <= (1u << 20) + 4096);
  CHECK(s.dropped() > 0);
  CHECK(s.pending_results() + s.dropped() == 30000);
  const auto b = s.read_batch(1, 1 << 20);
  CHECK(b.body.find("\"id\":" + std::to_string(s.dropped()) + ",") != std::string::npos);
}

TEST_CASE("rejected batches are kept on disk and acknowledged", "[probe][spool]") {
  TempDir dir;
  Spool s({dir.path.string(), 1 << 20, 1 << 20});
  s.append(lines(0, 5));
  const auto b = s.read_batch(2, 1 << 20);
  s.reject(b);
  CHECK(s.rejected() == 2);
  CHECK(s.pending_results() == 3);
  CHECK(fs::exists(dir.path / "rejected"));
  CHECK(std::distance(fs::directory_iterator(dir.path / "rejected"), fs::directory_iterator{}) ==
        1);
}
