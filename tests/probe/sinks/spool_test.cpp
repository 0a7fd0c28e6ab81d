#include "probe/sinks/spool.hpp"

#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <stdexcept>

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

SpoolOptions options(const fs::path& dir, std::uint64_t max_bytes, std::uint64_t segment_max_bytes,
                     SpoolWriteFunction write = {}) {
  SpoolOptions o;
  o.dir = dir.string();
  o.max_bytes = max_bytes;
  o.segment_max_bytes = segment_max_bytes;
  o.write = std::move(write);
  return o;
}

std::vector<std::string> lines(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back("{\"id\":\"" + std::to_string(i) + "\"}");
  return out;
}

std::vector<std::string> split(const std::string& body) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < body.size()) {
    const auto nl = std::min(body.find('\n', start), body.size());  // a torn last line counts
    out.push_back(body.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("spooled lines come back in order, in bounded batches", "[probe][spool]") {
  TempDir dir;
  Spool s(options(dir.path, 1 << 20, 256));
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
    Spool s(options(dir.path, 1 << 20, 300));
    s.append(lines(0, 30));
    const auto b = s.read_batch(10, 1 << 20);
    s.ack(b);
    s.read_batch(10, 1 << 20);  // read, but never acknowledged
  }
  Spool again(options(dir.path, 1 << 20, 300));
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
    Spool s(options(dir.path, 1 << 20, 1 << 20));
    s.append(lines(0, 3));
  }
  // Simulate a crash in the middle of a write.
  for (const auto& e : fs::directory_iterator(dir.path)) {
    if (e.path().extension() == ".ndjson") {
      std::ofstream out(e.path(), std::ios::app);
      out << "{\"id\":\"half";
    }
  }
  Spool s(options(dir.path, 1 << 20, 1 << 20));
  CHECK(s.pending_results() == 3);
  const auto b = s.read_batch(100, 1 << 20);
  CHECK(split(b.body) == lines(0, 3));
}

TEST_CASE("a full spool drops its oldest segment and counts what was lost", "[probe][spool]") {
  TempDir dir;
  Spool s(options(dir.path, 1 << 20, 4096));
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
  Spool s(options(dir.path, 1 << 20, 1 << 20));
  s.append(lines(0, 5));
  const auto b = s.read_batch(2, 1 << 20);
  s.reject(b);
  CHECK(s.rejected() == 2);
  CHECK(s.pending_results() == 3);
  CHECK(fs::exists(dir.path / "rejected"));
  CHECK(std::distance(fs::directory_iterator(dir.path / "rejected"), fs::directory_iterator{}) ==
        1);
}

namespace {

// A disk that fails on request, through SpoolOptions::write. `allow` bytes of a failing kind
// still reach the file (a short write), then write(2) fails with `error`.
struct FaultyDisk {
  bool fail_segment = false;
  bool fail_cursor = false;
  bool fail_rejected = false;
  bool throw_instead = false;  // throw std::runtime_error instead of failing with errno
  std::size_t allow = 0;
  int error = ENOSPC;
  int failures = 0;

  SpoolWriteFunction function() {
    return [this](SpoolFile file, int fd, const void* data, std::size_t size) -> ssize_t {
      const bool fail = (file == SpoolFile::segment && fail_segment) ||
                        (file == SpoolFile::cursor && fail_cursor) ||
                        (file == SpoolFile::rejected && fail_rejected);
      if (!fail) return ::write(fd, data, size);
      if (allow > 0) {
        const ssize_t n = ::write(fd, data, std::min(size, allow));
        if (n > 0) allow -= static_cast<std::size_t>(n);
        return n;
      }
      ++failures;
      if (throw_instead) throw std::runtime_error("injected");
      errno = error;
      return -1;
    };
  }
};

std::vector<std::string> drain(Spool& s, std::size_t per_batch = 100) {
  std::vector<std::string> got;
  for (;;) {
    const auto b = s.read_batch(per_batch, 1 << 20);
    if (b.empty()) break;
    for (auto& l : split(b.body)) got.push_back(l);
    s.ack(b);
  }
  return got;
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<fs::path> segment_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".ndjson") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE(
    "a write that fails half-way keeps the whole lines, cuts the torn one, and the spool "
    "takes lines again once the disk does",
    "[probe][spool]") {
  TempDir dir;
  FaultyDisk disk;
  Spool s(options(dir.path, 1 << 20, 1 << 20, disk.function()));
  REQUIRE_FALSE(s.append(lines(0, 10)).error);

  // Lines 10..19 are 12 bytes each ({"id":"10"} and a newline): 30 bytes reach the disk, that is
  // two whole lines and half of the third, then ENOSPC.
  disk.fail_segment = true;
  disk.allow = 30;
  const auto failed = s.append(lines(10, 20));
  CHECK(failed.error == std::errc::no_space_on_device);
  CHECK(failed.lines == 2);
  CHECK(s.pending_results() == 12);
  CHECK(s.write_failing());
  CHECK(s.write_errors(SpoolFile::segment) == 1);
  const auto files = segment_files(dir.path);
  REQUIRE(files.size() == 1);
  const std::string on_disk = read_file(files[0]);
  CHECK(on_disk.back() == '\n');  // the half line was cut off
  CHECK(split(on_disk) == lines(0, 12));

  // Still full: nothing more is written, nothing already spooled changes.
  CHECK(s.append(lines(20, 22)).lines == 0);
  CHECK(read_file(files[0]) == on_disk);

  disk.fail_segment = false;
  const auto again = s.append(lines(22, 25));
  CHECK_FALSE(again.error);
  CHECK(again.lines == 3);
  CHECK_FALSE(s.write_failing());
  const auto expected = concat(lines(0, 12), lines(22, 25));
  {
    // What a restarted probe would read.
    Spool reopened(options(dir.path, 1 << 20, 1 << 20));
    CHECK(reopened.pending_results() == expected.size());
  }
  CHECK(drain(s, 4) == expected);
}

TEST_CASE("a write failing after a segment rotation keeps the lines of the earlier segments",
          "[probe][spool]") {
  TempDir dir;
  FaultyDisk disk;
  // 12-byte lines, 60-byte segments: five lines a segment.
  Spool s(options(dir.path, 1 << 20, 60, disk.function()));
  disk.fail_segment = true;
  disk.allow = 60 + 60 + 5;  // two whole segments, then 5 bytes of the third's first line
  const auto result = s.append(lines(10, 30));
  CHECK(result.error == std::errc::no_space_on_device);
  CHECK(result.lines == 10);
  disk.fail_segment = false;
  CHECK(s.append(lines(30, 32)).lines == 2);
  CHECK(drain(s) == concat(lines(10, 20), lines(30, 32)));
}

TEST_CASE("an exception from the disk leaves the spool consistent", "[probe][spool]") {
  TempDir dir;
  FaultyDisk disk;
  Spool s(options(dir.path, 1 << 20, 1 << 20, disk.function()));
  s.append(lines(10, 12));
  disk.fail_segment = true;
  disk.throw_instead = true;
  disk.allow = 5;  // a fragment reaches the file before the exception
  CHECK_THROWS_AS(s.append(lines(12, 14)), std::runtime_error);
  CHECK(s.pending_results() == 2);
  disk.fail_segment = false;
  s.append(lines(14, 16));
  CHECK(drain(s) == concat(lines(10, 12), lines(14, 16)));
}

TEST_CASE("the reader skips a fragment left at the end of an older segment", "[probe][spool]") {
  TempDir dir;
  {
    Spool s(options(dir.path, 1 << 20, 1 << 20));
    s.append(lines(0, 3));
  }
  // A segment ending in a fragment that could not be cut (the spool then appends to a new one),
  // followed by a newer segment.
  auto files = segment_files(dir.path);
  REQUIRE(files.size() == 1);
  {
    std::ofstream out(files[0], std::ios::app | std::ios::binary);
    out << "{\"id\":\"ha";
  }
  const std::string newer = files[0].filename().string();
  const auto seq = std::stoull(newer.substr(0, 20));
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.ndjson", static_cast<unsigned long long>(seq + 1));
  {
    std::ofstream out(dir.path / name, std::ios::binary);
    for (const auto& l : lines(3, 6)) out << l << '\n';
  }
  Spool s(options(dir.path, 1 << 20, 1 << 20));
  CHECK(s.pending_results() == 6);
  CHECK(drain(s, 2) == lines(0, 6));
  CHECK(s.pending_results() == 0);
}

TEST_CASE("a line longer than a batch may be is sent alone instead of stalling the spool",
          "[probe][spool]") {
  TempDir dir;
  Spool s(options(dir.path, 1 << 20, 1 << 20));
  const std::string big = "{\"id\":\"big\",\"pad\":\"" + std::string(200 * 1024, 'x') + "\"}";
  s.append({big});
  s.append(lines(0, 3));
  const auto first = s.read_batch(100, 1024);
  CHECK(first.count == 1);
  CHECK(first.body == big + "\n");
  s.ack(first);
  const auto rest = s.read_batch(100, 1024);
  CHECK(split(rest.body) == lines(0, 3));
}

TEST_CASE(
    "an acknowledgement whose cursor cannot be written still moves the spool on, and a "
    "restart sends those lines again",
    "[probe][spool]") {
  TempDir dir;
  FaultyDisk disk;
  {
    Spool s(options(dir.path, 1 << 20, 1 << 20, disk.function()));
    s.append(lines(0, 10));
    disk.fail_cursor = true;
    disk.error = EIO;
    const auto b = s.read_batch(4, 1 << 20);
    CHECK(s.ack(b) == std::errc::io_error);
    CHECK(s.cursor_failing());
    CHECK(s.write_failing());
    CHECK(s.write_errors(SpoolFile::cursor) == 1);
    CHECK(s.pending_results() == 6);
    // Not sent twice by this process.
    CHECK(split(s.read_batch(100, 1 << 20).body) == lines(4, 10));
  }
  // The cursor file still says "from the start": everything comes back (the collector
  // deduplicates by id), nothing is lost.
  disk.fail_cursor = false;
  Spool s(options(dir.path, 1 << 20, 1 << 20, disk.function()));
  CHECK(s.pending_results() == 10);
  CHECK_FALSE(s.cursor_failing());
  CHECK(drain(s, 3) == lines(0, 10));
}

TEST_CASE("a spool whose cursor cannot be written still opens and spools", "[probe][spool]") {
  TempDir dir;
  fs::create_directories(dir.path / "cursor");  // rename(2) onto a directory fails (EISDIR)
  Spool s(options(dir.path, 1 << 20, 1 << 20));
  CHECK(s.cursor_failing());
  CHECK_FALSE(s.append(lines(0, 3)).error);
  const auto b = s.read_batch(100, 1 << 20);
  CHECK(split(b.body) == lines(0, 3));
  CHECK(s.ack(b));
  fs::remove(dir.path / "cursor");
  s.append(lines(3, 4));
  const auto c = s.read_batch(100, 1 << 20);
  CHECK(split(c.body) == lines(3, 4));
  CHECK_FALSE(s.ack(c));
  CHECK_FALSE(s.cursor_failing());
  CHECK(fs::is_regular_file(dir.path / "cursor"));
}

TEST_CASE("a refused batch whose copy cannot be written stays pending", "[probe][spool]") {
  TempDir dir;
  FaultyDisk disk;
  Spool s(options(dir.path, 1 << 20, 1 << 20, disk.function()));
  s.append(lines(0, 5));
  disk.fail_rejected = true;
  disk.allow = 3;  // a partial copy must not be left behind
  const auto b = s.read_batch(2, 1 << 20);
  CHECK(s.reject(b) == std::errc::no_space_on_device);
  CHECK(s.rejected() == 0);
  CHECK(s.pending_results() == 5);
  CHECK(s.write_errors(SpoolFile::rejected) == 1);
  CHECK(std::distance(fs::directory_iterator(dir.path / "rejected"), fs::directory_iterator{}) ==
        0);
  disk.fail_rejected = false;
  const auto again = s.read_batch(2, 1 << 20);
  CHECK(again.body == b.body);
  CHECK_FALSE(s.reject(again));
  CHECK(s.rejected() == 2);
  CHECK(s.pending_results() == 3);
}
