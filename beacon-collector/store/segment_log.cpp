#include "beacon-collector/store/segment_log.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/log.hpp"

namespace vantage::collector::store {
namespace {

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kTable = make_table();

std::uint32_t crc32c_portable(std::uint32_t crc, const unsigned char* p, std::size_t n) {
  crc = ~crc;
  while (n--) crc = kTable[(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(std::uint32_t crc,
                                                             const unsigned char* p,
                                                             std::size_t n) {
  std::uint64_t c = ~crc;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return ~c32;
}
const bool kHaveSse42 = __builtin_cpu_supports("sse4.2");
#endif

void put_u32(char* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_u64(char* out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
std::uint32_t get_u32(const char* in) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}
std::uint64_t get_u64(const char* in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}

std::error_code last_error() { return {errno, std::generic_category()}; }

// How far ahead of the frames a segment is filled with zeros (see run()).
constexpr std::uint64_t kZeroAhead = 1 << 20;

std::string segment_name(std::uint64_t first_seq) {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(first_seq));
  return name;
}

// "00000000000000000042.seg" -> 42; false for any other name.
bool parse_segment_name(std::string_view name, std::uint64_t& seq) {
  if (name.size() != 24 || name.substr(20) != ".seg") return false;
  seq = 0;
  for (char c : name.substr(0, 20)) {
    if (c < '0' || c > '9') return false;
    seq = seq * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return true;
}

std::error_code sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return last_error();
  std::error_code ec;
  if (::fsync(fd) != 0) ec = last_error();
  ::close(fd);
  return ec;
}

std::error_code read_file(const std::string& path, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return last_error();
  out.clear();
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const auto ec = last_error();
      ::close(fd);
      return ec;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return {};
}

}  // namespace

std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t size) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (kHaveSse42) return crc32c_sse42(crc, p, size);
#endif
  return crc32c_portable(crc, p, size);
}

void append_frame(std::string& out, std::uint64_t seq, std::string_view payload) {
  char header[kFrameHeaderBytes];
  put_u64(header + 8, seq);
  std::uint32_t crc = crc32c(0, header + 8, 8);
  crc = crc32c(crc, payload.data(), payload.size());
  put_u32(header, static_cast<std::uint32_t>(payload.size()));
  put_u32(header + 4, crc);
  out.append(header, sizeof header);
  out.append(payload);
}

std::vector<FrameView> parse_frames(std::string_view bytes, std::size_t& valid_bytes) {
  std::vector<FrameView> frames;
  std::size_t at = 0;
  for (;;) {
    if (bytes.size() - at < kFrameHeaderBytes) break;
    const char* h = bytes.data() + at;
    const std::uint32_t length = get_u32(h);
    if (length == 0 || length > kMaxFramePayload) break;
    if (bytes.size() - at - kFrameHeaderBytes < length) break;  // torn: cut short
    std::uint32_t crc = crc32c(0, h + 8, 8);
    crc = crc32c(crc, h + kFrameHeaderBytes, length);
    if (crc != get_u32(h + 4)) break;  // torn or corrupt
    const std::uint64_t seq = get_u64(h + 8);
    // Sequence numbers only grow: a frame that goes back is not one of this segment's.
    if (seq == 0 || (!frames.empty() && seq <= frames.back().seq)) break;
    frames.push_back({seq, std::string_view(h + kFrameHeaderBytes, length)});
    at += kFrameHeaderBytes + length;
  }
  valid_bytes = at;
  return frames;
}

SegmentLog::SegmentLog(std::string dir, std::uint64_t segment_bytes)
    : dir_(std::move(dir)), segment_bytes_(std::max<std::uint64_t>(segment_bytes, 4096)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw std::system_error(ec, "segment log \"" + dir_ + "\": cannot create the directory");
  DIR* d = ::opendir(dir_.c_str());
  if (!d) throw std::system_error(last_error(), "segment log \"" + dir_ + "\": cannot read");
  while (const dirent* e = ::readdir(d)) {
    std::uint64_t first = 0;
    if (parse_segment_name(e->d_name, first))
      segments_.push_back({first, 0, dir_ + "/" + e->d_name});
  }
  ::closedir(d);
  std::sort(segments_.begin(), segments_.end(),
            [](const Segment& a, const Segment& b) { return a.first_seq < b.first_seq; });
}

SegmentLog::~SegmentLog() {
  stop();
  if (fd_ >= 0) ::close(fd_);
}

ReplayStats SegmentLog::replay(std::uint64_t after,
                               const std::function<void(std::uint64_t, std::string_view)>& fn) {
  ReplayStats stats;
  std::string bytes;
  for (Segment& s : segments_) {
    if (auto ec = read_file(s.path, bytes)) {
      throw std::system_error(ec, "segment log: cannot read \"" + s.path + "\"");
    }
    ++stats.segments;
    std::string_view body = bytes;
    if (body.substr(0, kSegmentMagic.size()) != kSegmentMagic) {
      // Created but its magic never made it to disk: nothing was acknowledged from it.
      stats.torn_bytes += body.size();
      continue;
    }
    body.remove_prefix(kSegmentMagic.size());
    std::size_t valid = 0;
    const auto frames = parse_frames(body, valid);
    // Zeros after the last frame are the room written ahead (run()), not a torn tail.
    const std::string_view rest = body.substr(valid);
    const bool torn = rest.find_first_not_of('\0') != std::string_view::npos;
    if (torn) stats.torn_bytes += rest.size();
    if (torn) {
      log::warn("store.log_torn_tail",
                {{"segment", s.path},
                 {"valid_bytes", static_cast<std::int64_t>(valid)},
                 {"torn_bytes", static_cast<std::int64_t>(body.size() - valid)}});
    }
    for (const FrameView& f : frames) {
      ++stats.frames;
      s.last_seq = f.seq;
      stats.last_seq = std::max(stats.last_seq, f.seq);
      if (f.seq > after) {
        ++stats.replayed;
        fn(f.seq, f.payload);
      }
    }
  }
  return stats;
}

std::error_code SegmentLog::open_segment(std::uint64_t first_seq) {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  const std::string path = dir_ + "/" + segment_name(first_seq);
  // O_TRUNC: a file of this name holds no acknowledged frame (it would have a number below).
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return last_error();
  std::error_code ec;
  if (::write(fd, kSegmentMagic.data(), kSegmentMagic.size()) !=
      static_cast<ssize_t>(kSegmentMagic.size())) {
    ec = errno ? last_error() : std::make_error_code(std::errc::no_space_on_device);
  } else if (::fdatasync(fd) != 0) {
    ec = last_error();
  } else {
    ec = sync_directory(dir_);  // the new name itself must survive a power cut
  }
  if (ec) {
    ::close(fd);
    ::unlink(path.c_str());
    return ec;
  }
  fd_ = fd;
  offset_ = kSegmentMagic.size();
  zeroed_ = offset_;
  std::lock_guard lock(mutex_);
  segments_.push_back({first_seq, 0, path});
  return {};
}

void SegmentLog::start(std::uint64_t committed) {
  std::uint64_t highest = committed;
  for (const Segment& s : segments_) highest = std::max(highest, s.last_seq);
  committed_.store(committed, std::memory_order_relaxed);
  // Everything replayed is stored now: the old segments go (none is open yet).
  while (!segments_.empty() && segments_.front().last_seq <= committed) {
    ::unlink(segments_.front().path.c_str());
    segments_.pop_front();
  }
  next_seq_ = highest + 1;
  if (auto ec = open_segment(next_seq_)) {
    throw std::system_error(ec, "segment log \"" + dir_ + "\": cannot create a segment");
  }
  {
    std::lock_guard lock(mutex_);
    started_ = true;
  }
  thread_ = std::thread([this] { run(); });
}

std::uint64_t SegmentLog::append(std::string_view payload, Done done) {
  std::uint64_t seq = 0;
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (!started_ || stopping_) return 0;
    seq = next_seq_++;
    if (pending_done_.empty()) {
      pending_first_ = seq;
      wake = true;  // the sync thread sleeps only on an empty buffer
    }
    pending_last_ = seq;
    append_frame(pending_, seq, payload);
    pending_done_.push_back(std::move(done));
  }
  if (wake) wake_.notify_one();
  return seq;
}

void SegmentLog::committed(std::uint64_t seq) noexcept {
  std::uint64_t prev = committed_.load(std::memory_order_relaxed);
  while (prev < seq && !committed_.compare_exchange_weak(prev, seq, std::memory_order_relaxed)) {
  }
}

void SegmentLog::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

std::size_t SegmentLog::segment_count() const {
  std::lock_guard lock(mutex_);
  return segments_.size();
}

void SegmentLog::delete_committed() {
  const std::uint64_t committed = committed_.load(std::memory_order_relaxed);
  std::vector<std::string> doomed;
  {
    std::lock_guard lock(mutex_);
    // Never the open segment (the back one).
    while (segments_.size() > 1 && segments_.front().last_seq <= committed) {
      doomed.push_back(std::move(segments_.front().path));
      segments_.pop_front();
    }
  }
  for (const auto& path : doomed) ::unlink(path.c_str());
}

void SegmentLog::extend_zeros(std::uint64_t needed) {
  if (needed <= zeroed_) return;
  static const std::string zeros(64 << 10, '\0');
  const std::uint64_t target = needed + kZeroAhead;
  while (zeroed_ < target) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), target - zeroed_));
    const ssize_t w = ::pwrite(fd_, zeros.data(), n, static_cast<off_t>(zeroed_));
    if (w <= 0) {
      if (w < 0 && errno == EINTR) continue;
      return;  // the frames are written anyway; what was zeroed stays counted
    }
    zeroed_ += static_cast<std::uint64_t>(w);
  }
}

void SegmentLog::run() {
  std::string buffer;
  std::vector<Done> dones;
  for (;;) {
    std::uint64_t first = 0, last = 0;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !pending_done_.empty(); });
      if (pending_done_.empty()) break;  // stopping and drained
      buffer.swap(pending_);
      dones.swap(pending_done_);
      first = pending_first_;
      last = pending_last_;
    }
    std::error_code ec;
    if (fd_ < 0) ec = open_segment(first);  // the previous one failed and was given up
    // Frames overwrite zeros written ahead of them: a sync then flushes data pages only, not
    // the file's size and block allocation (measured on ext4: those metadata writes made each
    // fdatasync(2) two synchronous writes). Best effort: a disk too full for the zeros may
    // still take the frames.
    if (!ec) extend_zeros(offset_ + buffer.size());
    std::size_t written = 0;
    while (!ec && written < buffer.size()) {
      const ssize_t n = ::pwrite(fd_, buffer.data() + written, buffer.size() - written,
                                 static_cast<off_t>(offset_ + written));
      if (n < 0) {
        if (errno == EINTR) continue;
        ec = last_error();
      } else {
        written += static_cast<std::size_t>(n);
      }
    }
    if (!ec && ::fdatasync(fd_) != 0) ec = last_error();
    if (!ec) {
      offset_ += buffer.size();
      syncs_.fetch_add(1, std::memory_order_relaxed);
      bytes_written_.fetch_add(buffer.size(), std::memory_order_relaxed);
    } else {
      sync_errors_.fetch_add(1, std::memory_order_relaxed);
      log::error("store.log_write_failed", {{"dir", dir_},
                                            {"error", ec.message()},
                                            {"frames", static_cast<std::int64_t>(dones.size())}});
      // Cut the failed frames off so that a restart does not store what was answered 503. If
      // that fails too (after a failed fsync the file's state is unknown: fsync(2)), the next
      // write goes to a new segment.
      if (fd_ >= 0 && (written == 0 || (::ftruncate(fd_, static_cast<off_t>(offset_)) == 0 &&
                                        ::fdatasync(fd_) == 0))) {
        if (written) zeroed_ = offset_;  // cut there: the segment ends at offset_ again
      } else if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
      }
    }
    {
      std::lock_guard lock(mutex_);
      // The open segment (when one is) holds frames up to `last` (the failed ones perhaps).
      if (!segments_.empty()) segments_.back().last_seq = last;
    }
    for (std::size_t i = 0; i < dones.size(); ++i) dones[i](first + i, ec);
    buffer.clear();
    dones.clear();
    if (fd_ >= 0 && offset_ >= segment_bytes_) {
      if (auto rc = open_segment(last + 1)) {
        log::error("store.log_rotate_failed", {{"dir", dir_}, {"error", rc.message()}});
      }
    }
    delete_committed();
  }
}

}  // namespace vantage::collector::store
