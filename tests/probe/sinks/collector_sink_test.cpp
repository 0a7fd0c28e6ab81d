// CollectorSink against an in-process stand-in for vantage-collector (127.0.0.1, port 0) and a
// disk that fails on request (SpoolOptions::write): the sender must never stop for good.
#include "probe/sinks/collector_sink.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "probe/net/http_client.hpp"
#include "probe/sinks/collector_url.hpp"

namespace fs = std::filesystem;
using namespace vantage::probe;
using namespace vantage::probe::sinks;
using namespace std::chrono_literals;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path =
        fs::temp_directory_path() / ("vantage-collector-sink-test-" + std::to_string(::getpid()) +
                                     "-" + std::to_string(counter++));
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<std::string> split_lines(const std::string& body) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < body.size()) {
    auto nl = body.find('\n', start);
    if (nl == std::string::npos) nl = body.size();
    if (nl > start) out.push_back(body.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

// A minimal HTTP/1.1 server standing in for the collector: one request per connection
// (answers carry Connection: close), the answer chosen by `answer` from the request body.
// Keeps the lines of every batch it accepted with a 2xx.
class FakeCollector {
 public:
  struct Answer {
    int status = 200;
    std::string body;
  };
  using AnswerFn = std::function<Answer(const std::string& body)>;

  explicit FakeCollector(AnswerFn answer) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeCollector() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1/results"; }

  std::vector<std::string> accepted() const {
    std::lock_guard lock(mutex_);
    return accepted_;
  }
  std::set<std::string> accepted_set() const {
    const auto a = accepted();
    return {a.begin(), a.end()};
  }
  // Line counts of every request, in order.
  std::vector<std::size_t> batch_sizes() const {
    std::lock_guard lock(mutex_);
    return sizes_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      handle(c);
      ::close(c);
    }
  }

  void handle(int c) {
    std::string data;
    char buf[65536];
    std::size_t header_end = std::string::npos;
    std::size_t length = 0;
    for (;;) {
      if (header_end == std::string::npos) {
        header_end = data.find("\r\n\r\n");
        if (header_end != std::string::npos) {
          const auto at = lower(data.substr(0, header_end)).find("content-length:");
          if (at != std::string::npos) length = std::stoul(data.substr(at + 15));
        }
      }
      if (header_end != std::string::npos && data.size() >= header_end + 4 + length) break;
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return;
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) return;
      data.append(buf, static_cast<std::size_t>(n));
    }
    const std::string body = data.substr(header_end + 4, length);
    const Answer a = answer_(body);
    {
      std::lock_guard lock(mutex_);
      sizes_.push_back(split_lines(body).size());
      if (a.status >= 200 && a.status < 300) {
        for (auto& l : split_lines(body)) accepted_.push_back(l);
      }
    }
    const std::string response =
        "HTTP/1.1 " + std::to_string(a.status) +
        " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(a.body.size()) +
        "\r\nConnection: close\r\n\r\n" + a.body;
    ::send(c, response.data(), response.size(), MSG_NOSIGNAL);
  }

  static std::string lower(std::string s) {
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
  }

  AnswerFn answer_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<std::string> accepted_;
  std::vector<std::size_t> sizes_;
};

CollectorConfig config_for(const FakeCollector& collector, const TempDir& dir) {
  CollectorConfig c;
  c.url = collector.url();
  c.token = "test-token";
  c.spool_dir = (dir.path / "spool").string();
  c.batch_max_results = 8;
  c.flush_interval = 20ms;
  c.request_timeout = 5s;
  c.backoff_initial = 10ms;
  c.backoff_max = 50ms;
  return c;
}

std::string line(int i) { return "{\"id\":\"" + std::to_string(i) + "\"}"; }

std::set<std::string> ids(int from, int to) {
  std::set<std::string> out;
  for (int i = from; i < to; ++i) out.insert(line(i));
  return out;
}

void publish(CollectorSink& sink, int from, int to) {
  for (int i = from; i < to; ++i) sink.publish_record("test", line(i));
}

// Polls `done` for up to 15 s (the sender runs on its own thread).
bool eventually(const std::function<bool()>& done) {
  const auto end = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

// Disk faults for the sink's spool, switched from the test thread while the sender writes.
struct Faults {
  std::atomic<bool> segment_enospc{false};
  std::atomic<bool> cursor_eio{false};
  std::atomic<int> cursor_throws{0};  // the next n cursor writes throw

  SpoolWriteFunction function() {
    return [this](SpoolFile file, int fd, const void* data, std::size_t size) -> ssize_t {
      if (file == SpoolFile::segment && segment_enospc) {
        errno = ENOSPC;
        return -1;
      }
      if (file == SpoolFile::cursor) {
        if (cursor_throws > 0) {
          --cursor_throws;
          throw std::runtime_error("injected failure writing the cursor");
        }
        if (cursor_eio) {
          errno = EIO;
          return -1;
        }
      }
      return ::write(fd, data, size);
    };
  }
};

}  // namespace

TEST_CASE("path_result records stay off the upload (the collector refuses a batch with one)",
          "[probe][collector_sink]") {
  TempDir dir;
  FakeCollector collector([](const std::string& body) -> FakeCollector::Answer {
    if (body.find("path_result") != std::string::npos) return {400, "{\"error\":\"bad\"}"};
    return {200, ""};
  });
  CollectorSink sink(config_for(collector, dir));
  publish(sink, 0, 3);
  sink.publish_record("path_result", R"({"kind":"path_result","id":"p"})");
  publish(sink, 3, 6);
  REQUIRE(eventually([&] { return collector.accepted_set() == ids(0, 6); }));
  CHECK(eventually([&] { return sink.stats().spool_results == 0; }));
  CHECK(sink.stats().rejected == 0);
}

TEST_CASE(
    "a batch refused with 413 is halved down to one result; only that result is set aside, "
    "and the batch limit grows back",
    "[probe][collector_sink]") {
  TempDir dir;
  FakeCollector collector([](const std::string& body) -> FakeCollector::Answer {
    if (body.find("\"big\"") != std::string::npos) return {413, "{\"error\":\"too large\"}"};
    return {200, ""};
  });
  CollectorSink sink(config_for(collector, dir));
  const std::string big = "{\"id\":\"big\",\"size\":\"big\"}";
  publish(sink, 0, 5);
  sink.publish_record("test", big);
  publish(sink, 5, 20);
  REQUIRE(eventually([&] { return collector.accepted_set() == ids(0, 20); }));
  REQUIRE(eventually([&] { return sink.stats().rejected == 1; }));
  CHECK(eventually([&] { return sink.stats().spool_results == 0; }));
  // Exactly the one oversized result was set aside.
  std::vector<std::string> set_aside;
  for (const auto& e : fs::directory_iterator(dir.path / "spool" / "rejected")) {
    std::ifstream in(e.path());
    for (std::string l; std::getline(in, l);) set_aside.push_back(l);
  }
  CHECK(set_aside == std::vector<std::string>{big});

  // One oversized result must not throttle every upload after it: publish enough for the limit
  // to double back (kGrowAfterSuccesses deliveries at 1, 2 and 4) and a full batch after that.
  const auto halved = collector.batch_sizes();
  CHECK(std::count(halved.begin(), halved.end(), std::size_t{1}) >= 1);
  for (int round = 0; round < 10 && sink.stats().batch_limit < 8; ++round) {
    const int from = 100 + round * 8;
    publish(sink, from, from + 8);
    REQUIRE(eventually([&] { return collector.accepted_set().count(line(from + 7)) == 1; }));
  }
  CHECK(eventually([&] { return sink.stats().batch_limit == 8; }));
  const auto before = collector.batch_sizes().size();
  publish(sink, 1000, 1016);
  REQUIRE(eventually([&] { return collector.accepted_set().count(line(1015)) == 1; }));
  const auto sizes = collector.batch_sizes();
  CHECK(*std::max_element(sizes.begin() + static_cast<std::ptrdiff_t>(before), sizes.end()) == 8);
  CHECK(collector.accepted().size() == collector.accepted_set().size());  // nothing sent twice
}

TEST_CASE("an exception escaping the send loop is counted and the loop starts again",
          "[probe][collector_sink]") {
  TempDir dir;
  FakeCollector collector([](const std::string&) { return FakeCollector::Answer{200, ""}; });
  Faults faults;
  CollectorSink sink(config_for(collector, dir), faults.function());
  faults.cursor_throws = 1;  // the first acknowledgement throws out of Spool::ack
  publish(sink, 0, 5);
  REQUIRE(eventually([&] { return sink.stats().send_loop_failures == 1; }));
  CHECK(collector.accepted_set() == ids(0, 5));
  // The loop is back: later results are delivered.
  publish(sink, 5, 10);
  REQUIRE(eventually([&] { return collector.accepted_set() == ids(0, 10); }));
  CHECK(eventually([&] { return sink.stats().uploaded == 10; }));  // counted on the answer
  CHECK(sink.stats().send_loop_failures == 1);
  CHECK(sink.stats().sync_loop_failures == 0);
}

TEST_CASE(
    "results the disk refuses are dropped and counted, and delivery resumes when it takes "
    "them again",
    "[probe][collector_sink]") {
  TempDir dir;
  FakeCollector collector([](const std::string&) { return FakeCollector::Answer{200, ""}; });
  Faults faults;
  CollectorSink sink(config_for(collector, dir), faults.function());
  publish(sink, 0, 5);
  REQUIRE(eventually([&] { return collector.accepted_set() == ids(0, 5); }));

  faults.segment_enospc = true;
  publish(sink, 5, 10);
  REQUIRE(eventually([&] { return sink.stats().dropped_spool_error == 5; }));
  CHECK(eventually([&] { return sink.stats().spool_write_failing.load(); }));
  CHECK(eventually([&] { return sink.stats().segment_write_errors >= 1; }));

  faults.segment_enospc = false;
  publish(sink, 10, 15);
  REQUIRE(eventually([&] { return collector.accepted_set().size() == 10; }));
  auto expected = ids(0, 5);
  for (const auto& id : ids(10, 15)) expected.insert(id);
  CHECK(collector.accepted_set() == expected);
  CHECK(eventually([&] { return !sink.stats().spool_write_failing; }));
  CHECK(sink.stats().dropped_spool_error == 5);
  CHECK(sink.stats().send_loop_failures == 0);
}

TEST_CASE("acknowledgements that cannot be written are counted and uploads go on",
          "[probe][collector_sink]") {
  TempDir dir;
  FakeCollector collector([](const std::string&) { return FakeCollector::Answer{200, ""}; });
  Faults faults;
  CollectorSink sink(config_for(collector, dir), faults.function());
  faults.cursor_eio = true;
  publish(sink, 0, 5);
  REQUIRE(eventually([&] { return collector.accepted_set() == ids(0, 5); }));
  REQUIRE(eventually([&] { return sink.stats().cursor_write_errors >= 1; }));
  CHECK(eventually([&] { return sink.stats().spool_write_failing.load(); }));
  publish(sink, 5, 10);
  REQUIRE(eventually([&] { return collector.accepted_set() == ids(0, 10); }));
  CHECK(collector.accepted().size() == 10);  // moved on in memory: nothing sent twice

  faults.cursor_eio = false;
  publish(sink, 10, 11);
  REQUIRE(eventually([&] { return collector.accepted_set() == ids(0, 11); }));
  CHECK(eventually([&] { return !sink.stats().spool_write_failing; }));
  CHECK(sink.stats().send_loop_failures == 0);
}

TEST_CASE(
    "a reload hands a new collector URL and token to the running sender; queued and spooled "
    "results go there and the spool's settings stay",
    "[probe][collector_sink][reload]") {
  TempDir dir;
  FakeCollector refusing([](const std::string&) {
    return FakeCollector::Answer{403, "{\"error\":\"unknown token\"}"};
  });
  FakeCollector accepting([](const std::string&) { return FakeCollector::Answer{200, ""}; });
  CollectorConfig first = config_for(refusing, dir);
  first.backoff_initial = 3s;  // the sender then waits 1.5-3 s before it tries again...
  first.backoff_max = 3s;
  CollectorSink sink(first);
  publish(sink, 0, 10);
  REQUIRE(eventually([&] { return sink.stats().upload_errors >= 1; }));
  CHECK(sink.stats().uploaded == 0);

  CollectorConfig next = config_for(accepting, dir);
  next.token = "new-token";
  next.spool_dir = (dir.path / "elsewhere").string();
  next.spool_max_bytes = first.spool_max_bytes * 2;
  const auto swapped = std::chrono::steady_clock::now();
  const auto restart = sink.reconfigure(next);
  CHECK(restart == std::vector<std::string>{"collector.spool_dir", "collector.spool_max_bytes"});
  publish(sink, 10, 20);
  REQUIRE(eventually([&] { return accepting.accepted_set().count(line(0)) == 1; }));
  // ...unless the new settings wake it up.
  CHECK(std::chrono::steady_clock::now() - swapped < 1200ms);
  REQUIRE(eventually([&] { return accepting.accepted_set() == ids(0, 20); }));
  CHECK(eventually([&] { return sink.stats().spool_results == 0; }));
  CHECK_FALSE(fs::exists(dir.path / "elsewhere"));  // the running spool stays where it was
  CHECK(refusing.accepted().empty());
}

TEST_CASE("a failed upload's error is the collector's own text when it gives one",
          "[probe][collector_sink]") {
  net::HttpExchange ex;
  ex.status = 403;
  ex.body = "{\"error\":\"unknown token\"}";
  CHECK(upload_error_text(ex) == "unknown token");
  ex.curl_code = 55;  // it answered, then closed while we were still sending
  ex.error_text = "Send failure: Broken pipe";
  CHECK(upload_error_text(ex) == "unknown token");
  ex.body = "<html>Bad gateway</html>";
  CHECK(upload_error_text(ex) == "Send failure: Broken pipe");
  ex.curl_code = 0;
  ex.error_text.clear();
  ex.status = 502;
  CHECK(upload_error_text(ex) == "<html>Bad gateway</html>");
  ex.body.clear();
  CHECK(upload_error_text(ex) == "HTTP 502 with an empty body");
  ex.status = 0;
  CHECK(upload_error_text(ex) == "no response");
}

TEST_CASE("collector URLs must be an http(s) results endpoint", "[probe][collector_sink][config]") {
  CHECK(collector_url_problem("https://collector.example.com/v1/results") == "");
  CHECK(collector_url_problem("http://127.0.0.1:8080/v1/results") == "");
  CHECK(collector_url_problem("https://example.com/vantage/results?x=1") == "");
  CHECK(collector_url_problem("https://[2001:db8::1]:443/v1/results") == "");
  const std::string no_path = collector_url_problem("https://collector.example.com");
  CHECK(no_path.find("the path \"/\" is not the collector's results endpoint") == 0);
  CHECK(no_path.find("/v1/results") != std::string::npos);
  CHECK(collector_url_problem("https://collector.example.com/v1/results/") != "");
  CHECK(collector_url_problem("https://collector.example.com/v1/upload") != "");
  CHECK(collector_url_problem("https://collector.example.com/v1/results#x") != "");
  CHECK(collector_url_problem("ftp://collector.example.com/v1/results") != "");
  CHECK(collector_url_problem("collector.example.com/v1/results") != "");
}
