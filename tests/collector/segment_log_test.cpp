// The collector's segment log (beacon-collector/store/segment_log.hpp) and the record codec it
// carries: CRC32C, framing, a torn tail cut at every byte, replay after a restart, rotation and
// deletion once the store has committed, the checkpoint that keeps replay from storing a row
// twice, and a write that fails (the file size limit) reported as an error, never as durable.
#include "beacon-collector/store/segment_log.hpp"

#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "beacon-collector/store/record_codec.hpp"
#include "beacon-collector/store/sqlite_store.hpp"
#include "beacon-collector/store/store.hpp"

namespace fs = std::filesystem;
using namespace vantage::collector;
using namespace vantage::collector::store;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "vantage-seglog-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<std::string> segment_files(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Waits for `n` done callbacks and keeps their outcomes.
struct Outcomes {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::pair<std::uint64_t, std::error_code>> got;
  SegmentLog::Done callback() {
    return [this](std::uint64_t seq, std::error_code ec) {
      std::lock_guard lock(mutex);
      got.emplace_back(seq, ec);
      cv.notify_all();
    };
  }
  void wait(std::size_t n) {
    std::unique_lock lock(mutex);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return got.size() >= n; }));
  }
};

BrowserRecord sample_record(int i) {
  BrowserRecord r;
  r.received_ns = 1'764'547'200'000'000'000 + i;
  r.event_ns = r.received_ns - 1'500'000'000;
  r.kind = "browser_report";
  r.type = "network-error";
  r.endpoint = "reports/nel";
  r.url = "https://shop.example.com/cart/" + std::to_string(i);
  r.origin = "https://shop.example.com";
  r.nel_type = "tcp.timed_out";
  r.nel_phase = "connection";
  r.status_code = i % 2 ? std::optional<int>(0) : std::nullopt;
  r.method = "GET";
  r.protocol = "http/1.1";
  r.elapsed_ms = 30001.5;
  r.server_ip = "192.0.2.10";
  r.server_asn = 64500;
  r.server_as_org = "Example AS";
  r.weight = 4;
  r.client_prefix = "81.2.69.0/24";
  r.country = "GB";
  r.city = "London";
  r.asn = 64501;
  r.isp = "Example ISP";
  r.ua_family = "Firefox";
  r.ua_major = 128;
  r.body = R"({"type":"tcp.timed_out","elapsed_time":30001})";
  return r;
}

std::int64_t count_rows(const std::string& db, const char* sql) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(h, sql, -1, &s, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  const std::int64_t n = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(h);
  return n;
}

}  // namespace

TEST_CASE("crc32c matches the Castagnoli check value and the portable table", "[segment_log]") {
  // RFC 3720 §B.4 / the CRC catalogue: CRC-32C("123456789") = 0xE3069283.
  CHECK(crc32c(0, "123456789", 9) == 0xE3069283u);
  // Split anywhere, the running value gives the same result (8-byte and 1-byte steps mixed).
  const std::string text = "The quick brown fox jumps over the lazy dog, twice over.";
  const std::uint32_t whole = crc32c(0, text.data(), text.size());
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    CHECK(crc32c(crc32c(0, text.data(), cut), text.data() + cut, text.size() - cut) == whole);
  }
}

TEST_CASE("frames parse back in order and a torn tail cut at any byte keeps the intact prefix",
          "[segment_log]") {
  std::string bytes;
  const std::vector<std::string> payloads = {"first", std::string(1000, 'x'), "third"};
  std::vector<std::size_t> ends;
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    append_frame(bytes, 41 + i, payloads[i]);
    ends.push_back(bytes.size());
  }
  std::size_t valid = 0;
  auto frames = parse_frames(bytes, valid);
  REQUIRE(frames.size() == 3);
  CHECK(valid == bytes.size());
  CHECK(frames[1].seq == 42);
  CHECK(frames[1].payload == payloads[1]);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    const auto got = parse_frames(std::string_view(bytes).substr(0, cut), valid);
    const std::size_t intact =
        static_cast<std::size_t>(std::upper_bound(ends.begin(), ends.end(), cut) - ends.begin());
    REQUIRE(got.size() == intact);
    CHECK(valid == (intact ? ends[intact - 1] : 0));
  }
  // A flipped payload byte fails the CRC: that frame and everything after it is dropped.
  std::string corrupt = bytes;
  corrupt[ends[0] + kFrameHeaderBytes + 10] ^= 0x20;
  CHECK(parse_frames(corrupt, valid).size() == 1);
  CHECK(valid == ends[0]);
  // Zeros (a preallocated or half-written block) are no frame.
  CHECK(parse_frames(std::string(64, '\0'), valid).empty());
}

TEST_CASE("records survive the codec field for field and a cut encoding is refused",
          "[segment_log]") {
  std::vector<BrowserRecord> in = {sample_record(1), sample_record(2)};
  in[1].elapsed_ms.reset();
  in[1].url_template = "https://shop.example.com/cart/:id";
  std::string bytes;
  encode_reports(in, bytes);
  std::vector<BrowserRecord> out;
  REQUIRE(decode_reports(bytes, out));
  REQUIRE(out.size() == 2);
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(out[i].received_ns == in[i].received_ns);
    CHECK(out[i].event_ns == in[i].event_ns);
    CHECK(out[i].url == in[i].url);
    CHECK(out[i].url_template == in[i].url_template);
    CHECK(out[i].status_code == in[i].status_code);
    CHECK(out[i].elapsed_ms == in[i].elapsed_ms);
    CHECK(out[i].server_asn == in[i].server_asn);
    CHECK(out[i].weight == in[i].weight);
    CHECK(out[i].city == in[i].city);
    CHECK(out[i].ua_major == in[i].ua_major);
    CHECK(out[i].body == in[i].body);
  }
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    CHECK_FALSE(decode_reports(std::string_view(bytes).substr(0, cut), out));
  }
  CHECK_FALSE(decode_reports(bytes + "x", out));
}

TEST_CASE("a restarted log replays the frames above the checkpoint and numbers on past a torn tail",
          "[segment_log]") {
  TempDir dir;
  {
    SegmentLog log(dir.path.string(), 1 << 20);
    CHECK(log.replay(0, [](std::uint64_t, std::string_view) { FAIL("empty log"); }).frames == 0);
    log.start(0);
    Outcomes done;
    for (int i = 0; i < 50; ++i)
      REQUIRE(log.append("upload " + std::to_string(i), done.callback()) == 1u + i);
    done.wait(50);
    log.stop();
    for (std::size_t i = 0; i < done.got.size(); ++i) {
      CHECK(done.got[i].first == i + 1);  // in sequence order
      CHECK_FALSE(done.got[i].second);
    }
    CHECK(log.syncs() >= 1);
    CHECK(log.syncs() <= 50);
  }
  // A crash in the middle of the next frame's write: half a frame at the end.
  const auto files = segment_files(dir.path);
  REQUIRE(files.size() == 1);
  {
    std::string half;
    append_frame(half, 51, "never acknowledged");
    std::ofstream(dir.path / files[0], std::ios::app) << half.substr(0, half.size() / 2);
  }
  SegmentLog log(dir.path.string(), 1 << 20);
  std::vector<std::uint64_t> seqs;
  std::string last;
  const auto stats = log.replay(45, [&](std::uint64_t seq, std::string_view payload) {
    seqs.push_back(seq);
    last = payload;
  });
  CHECK(stats.frames == 50);
  CHECK(stats.replayed == 5);
  CHECK(stats.last_seq == 50);
  CHECK(stats.torn_bytes > 0);
  CHECK(seqs == std::vector<std::uint64_t>{46, 47, 48, 49, 50});
  CHECK(last == "upload 49");
  log.start(50);  // everything stored: the old segment goes, numbering goes on
  Outcomes done;
  CHECK(log.append("after restart", done.callback()) == 51);
  done.wait(1);
  log.stop();
  CHECK(segment_files(dir.path) == std::vector<std::string>{"00000000000000000051.seg"});
}

TEST_CASE("closed segments are deleted once the store has committed past them", "[segment_log]") {
  TempDir dir;
  SegmentLog log(dir.path.string(), 4096);  // a few frames per segment
  log.replay(0, [](std::uint64_t, std::string_view) {});
  log.start(0);
  Outcomes done;
  const std::string payload(1500, 'p');
  for (int i = 0; i < 20; ++i) {
    log.append(payload, done.callback());
    done.wait(static_cast<std::size_t>(i) + 1);  // one frame per sync: rotation is exact
  }
  const std::size_t before = log.segment_count();
  CHECK(before >= 7);
  log.committed(10);
  Outcomes more;
  log.append(payload, more.callback());  // the sync thread deletes after its next write
  more.wait(1);
  log.stop();
  CHECK(log.segment_count() < before);
  SegmentLog reader(dir.path.string(), 4096);
  std::uint64_t lowest = 0;
  reader.replay(0, [&](std::uint64_t seq, std::string_view) {
    if (!lowest) lowest = seq;
  });
  // Frames 1..10 are stored: of those, at most the segment that also holds later frames stays.
  CHECK(lowest > 6);
  CHECK(lowest <= 10);
}

TEST_CASE("browser uploads go to the log, then the store, and replay stores each one once",
          "[segment_log]") {
  TempDir dir;
  const std::string db = (dir.path / "c.db").string();
  const std::string logdir = (dir.path / "c.db-log").string();
  {
    SqliteStore sqlite(db);
    SegmentLog log(logdir, 1 << 20);
    CHECK(recover_log(log, sqlite, 100).replayed == 0);
    Writer writer(sqlite, 1000, 100, std::chrono::milliseconds(1));
    writer.attach_log(&log);
    std::mutex m;
    std::condition_variable cv;
    int durable = 0;
    for (int i = 0; i < 30; ++i) {
      Upload u;
      u.reports = {sample_record(i)};
      REQUIRE(writer.submit_durable(std::move(u), [&](std::error_code ec) {
        CHECK_FALSE(ec);
        std::lock_guard lock(m);
        ++durable;
        cv.notify_all();
      }));
    }
    {
      std::unique_lock lock(m);
      REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return durable == 30; }));
    }
    writer.stop();
    CHECK(sqlite.log_checkpoint() == 30);
  }
  CHECK(count_rows(db, "SELECT count(*) FROM browser_reports") == 30);
  // Frames the store never got (a crash before the commit): written to the log only.
  {
    SegmentLog log(logdir, 1 << 20);
    log.replay(0, [](std::uint64_t, std::string_view) {});
    log.start(30);
    Outcomes done;
    for (int i = 100; i < 110; ++i) {
      std::string payload;
      encode_reports({sample_record(i), sample_record(i + 1000)}, payload);
      log.append(payload, done.callback());
    }
    done.wait(10);
    log.stop();
  }
  for (int restart = 0; restart < 2; ++restart) {
    SqliteStore sqlite(db);
    SegmentLog log(logdir, 1 << 20);
    const auto stats = recover_log(log, sqlite, 7);  // several transactions
    CHECK(stats.replayed == (restart == 0 ? 10u : 0u));
    CHECK(sqlite.log_checkpoint() == 40);
    log.stop();
    CHECK(count_rows(db, "SELECT count(*) FROM browser_reports") == 50);
    CHECK(count_rows(db,
                     "SELECT count(*) FROM browser_reports WHERE city = 'London' AND "
                     "server_asn = 64500 AND url_template = 'https://shop.example.com/cart/:id'") ==
          50);
  }
}

TEST_CASE("a write the file system refuses is reported to every upload of its sync as an error",
          "[segment_log]") {
  TempDir dir;
  SegmentLog log(dir.path.string(), 64 << 20);
  log.replay(0, [](std::uint64_t, std::string_view) {});
  log.start(0);
  Outcomes ok;
  log.append("fits", ok.callback());
  ok.wait(1);
  REQUIRE_FALSE(ok.got[0].second);
  // RLIMIT_FSIZE: writes past it fail with EFBIG, as a full disk fails them with ENOSPC.
  struct rlimit old {};
  getrlimit(RLIMIT_FSIZE, &old);
  auto* previous = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 4096;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  Outcomes failed;
  log.append(std::string(8000, 'x'), failed.callback());
  failed.wait(1);
  setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, previous);
  CHECK(failed.got[0].second == std::errc::file_too_large);
  CHECK(log.sync_errors() == 1);
  Outcomes after;
  log.append("fits again", after.callback());
  after.wait(1);
  CHECK_FALSE(after.got[0].second);
  log.stop();
  // The refused frame was cut off: replay sees the frames that were acknowledged, nothing else.
  SegmentLog reader(dir.path.string(), 64 << 20);
  std::vector<std::string> seen;
  const auto stats =
      reader.replay(0, [&](std::uint64_t, std::string_view p) { seen.emplace_back(p); });
  CHECK(seen == std::vector<std::string>{"fits", "fits again"});
  CHECK(stats.torn_bytes == 0);
}
