#include "probe/sinks/spool.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "common/log.hpp"

namespace vantage::probe::sinks {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

bool parse_segment_name(const std::string& name, std::uint64_t& seq) {
  if (name.size() != 27 || name.substr(20) != ".ndjson") return false;
  for (std::size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
  }
  seq = std::stoull(name.substr(0, 20));
  return true;
}

void write_all(int fd, const char* data, std::size_t len, const std::string& what) {
  while (len > 0) {
    const ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(what);
    }
    data += n;
    len -= static_cast<std::size_t>(n);
  }
}

std::string read_range(const std::string& path, std::uint64_t from, std::uint64_t max) {
  std::string out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  out.resize(max);
  std::size_t got = 0;
  while (got < max) {
    const ssize_t n = ::pread(fd, out.data() + got, max - got, static_cast<off_t>(from + got));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  out.resize(got);
  return out;
}

}  // namespace

Spool::Spool(SpoolOptions options) : options_(std::move(options)) {
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (ec) throw std::system_error(ec, "creating spool directory " + options_.dir);
  for (const auto& entry : fs::directory_iterator(options_.dir)) {
    std::uint64_t seq;
    if (entry.is_regular_file() && parse_segment_name(entry.path().filename().string(), seq)) {
      segments_.push_back(seq);
    }
  }
  std::sort(segments_.begin(), segments_.end());

  // Cut a torn last line (a crash in the middle of a write) from the newest segment.
  if (!segments_.empty()) {
    const std::string path = segment_path(segments_.back());
    const std::uint64_t size = segment_size(segments_.back());
    if (size > 0) {
      const std::uint64_t window = std::min<std::uint64_t>(size, 1 << 20);
      const std::string tail = read_range(path, size - window, window);
      const auto nl = tail.rfind('\n');
      const std::uint64_t keep = nl == std::string::npos ? size - window : size - window + nl + 1;
      if (keep != size) {
        if (::truncate(path.c_str(), static_cast<off_t>(keep)) != 0)
          throw_errno("truncating " + path);
        log::warn("spool.torn_line_removed",
                  {{"segment", path}, {"bytes", static_cast<std::int64_t>(size - keep)}});
      }
    }
  }

  // The cursor: first unacknowledged line.
  cursor_ = {segments_.empty() ? 1 : segments_.front(), 0};
  {
    std::ifstream in(options_.dir + "/cursor");
    std::uint64_t seg = 0, off = 0;
    if (in >> seg >> off) {
      cursor_ = {seg, off};
      if (!segments_.empty() && seg < segments_.front()) cursor_ = {segments_.front(), 0};
    }
  }
  // Segments wholly before the cursor were delivered: remove them.
  while (!segments_.empty() && segments_.front() < cursor_.segment) {
    fs::remove(segment_path(segments_.front()), ec);
    segments_.erase(segments_.begin());
  }
  if (!segments_.empty() && cursor_.segment > segments_.back()) cursor_ = {segments_.back() + 1, 0};

  for (std::uint64_t seq : segments_) {
    total_bytes_ += segment_size(seq);
    pending_results_ += count_lines(seq, seq == cursor_.segment ? cursor_.offset : 0);
  }
  const std::uint64_t next =
      segments_.empty() ? std::max<std::uint64_t>(cursor_.segment, 1) : segments_.back() + 1;
  if (pending_results_ == 0) {
    // Everything was delivered: start clean.
    for (std::uint64_t seq : segments_) fs::remove(segment_path(seq), ec);
    segments_.clear();
    total_bytes_ = 0;
    cursor_ = {next, 0};
  }
  // Always append to a fresh segment: older ones are never written again.
  open_active(next);
  write_cursor();
}

Spool::~Spool() {
  if (active_fd_ >= 0) {
    ::fdatasync(active_fd_);
    ::close(active_fd_);
  }
}

std::string Spool::segment_path(std::uint64_t seq) const {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.ndjson", static_cast<unsigned long long>(seq));
  return options_.dir + "/" + name;
}

std::uint64_t Spool::segment_size(std::uint64_t seq) const {
  struct stat st {};
  if (::stat(segment_path(seq).c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_size);
}

std::uint64_t Spool::count_lines(std::uint64_t seq, std::uint64_t from) const {
  const std::uint64_t size = segment_size(seq);
  std::uint64_t lines = 0;
  for (std::uint64_t pos = from; pos < size; pos += 1 << 20) {
    const std::string chunk =
        read_range(segment_path(seq), pos, std::min<std::uint64_t>(1 << 20, size - pos));
    lines += static_cast<std::uint64_t>(std::count(chunk.begin(), chunk.end(), '\n'));
  }
  return lines;
}

void Spool::open_active(std::uint64_t seq) {
  const std::string path = segment_path(seq);
  active_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (active_fd_ < 0) throw_errno("opening spool segment " + path);
  active_size_ = segment_size(seq);
  if (segments_.empty() || segments_.back() != seq) segments_.push_back(seq);
}

void Spool::rotate() {
  ::fdatasync(active_fd_);
  ::close(active_fd_);
  active_fd_ = -1;
  open_active(segments_.back() + 1);
}

void Spool::append(const std::vector<std::string>& lines) {
  if (lines.empty()) return;
  std::string buf;
  for (const auto& line : lines) {
    if (active_size_ + buf.size() + line.size() + 1 > options_.segment_max_bytes &&
        active_size_ + buf.size() > 0) {
      write_all(active_fd_, buf.data(), buf.size(), "writing spool");
      active_size_ += buf.size();
      total_bytes_ += buf.size();
      buf.clear();
      rotate();
    }
    buf += line;
    buf += '\n';
    ++pending_results_;
  }
  write_all(active_fd_, buf.data(), buf.size(), "writing spool");
  active_size_ += buf.size();
  total_bytes_ += buf.size();
  evict_if_needed();
}

void Spool::sync() {
  if (active_fd_ >= 0) ::fdatasync(active_fd_);
}

void Spool::evict_if_needed() {
  while (total_bytes_ > options_.max_bytes && segments_.size() > 1) {
    const std::uint64_t seq = segments_.front();
    std::uint64_t lost = 0;
    if (seq > cursor_.segment || (seq == cursor_.segment)) {
      lost = count_lines(seq, seq == cursor_.segment ? cursor_.offset : 0);
    }
    const std::uint64_t size = segment_size(seq);
    std::error_code ec;
    fs::remove(segment_path(seq), ec);
    segments_.erase(segments_.begin());
    total_bytes_ -= std::min(total_bytes_, size);
    pending_results_ -= std::min(pending_results_, lost);
    dropped_ += lost;
    if (cursor_.segment <= seq) {
      cursor_ = {segments_.front(), 0};
      write_cursor();
    }
    log::warn("spool.full_dropped_oldest", {{"segment", static_cast<std::int64_t>(seq)},
                                            {"results_dropped", static_cast<std::int64_t>(lost)}});
  }
}

SpoolBatch Spool::read_batch(std::size_t max_lines, std::size_t max_bytes) {
  SpoolBatch b;
  b.begin = cursor_;
  SpoolPosition pos = cursor_;
  while (b.count < max_lines && b.body.size() < max_bytes) {
    auto it = std::find(segments_.begin(), segments_.end(), pos.segment);
    if (it == segments_.end()) break;
    const bool active = pos.segment == segments_.back();
    const std::uint64_t size = active ? active_size_ : segment_size(pos.segment);
    if (pos.offset >= size) {
      if (active) break;
      pos = {*(it + 1), 0};
      continue;
    }
    const std::uint64_t want =
        std::min<std::uint64_t>(size - pos.offset, max_bytes - b.body.size() + 64 * 1024);
    const std::string chunk = read_range(segment_path(pos.segment), pos.offset, want);
    std::size_t start = 0;
    bool progressed = false;
    while (b.count < max_lines) {
      const auto nl = chunk.find('\n', start);
      if (nl == std::string::npos) break;
      if (b.count > 0 && b.body.size() + (nl + 1 - start) > max_bytes) break;
      b.body.append(chunk, start, nl + 1 - start);
      ++b.count;
      start = nl + 1;
      progressed = true;
      if (b.body.size() >= max_bytes) break;
    }
    pos.offset += start;
    if (!progressed) break;  // a line longer than the window: should not happen (lines are < 1 MiB)
  }
  b.end = pos;
  return b;
}

void Spool::ack(const SpoolBatch& batch) {
  if (batch.empty()) return;
  cursor_ = batch.end;
  pending_results_ -= std::min<std::uint64_t>(pending_results_, batch.count);
  drop_consumed_segments();
  if (segments_.size() == 1 && cursor_.segment == segments_.back() &&
      cursor_.offset >= active_size_ && active_size_ > 0) {
    // Everything written was delivered: start an empty segment so no delivered data stays on disk.
    const std::uint64_t old = segments_.back();
    ::close(active_fd_);
    active_fd_ = -1;
    segments_.clear();
    std::error_code ec;
    fs::remove(segment_path(old), ec);
    total_bytes_ = 0;
    open_active(old + 1);
    cursor_ = {old + 1, 0};
  }
  write_cursor();
}

void Spool::reject(const SpoolBatch& batch) {
  if (batch.empty()) return;
  std::error_code ec;
  fs::create_directories(options_.dir + "/rejected", ec);
  const std::string path = options_.dir + "/rejected/" + std::to_string(batch.begin.segment) + "-" +
                           std::to_string(batch.begin.offset) + ".ndjson";
  std::ofstream out(path, std::ios::binary);
  out << batch.body;
  rejected_ += batch.count;
  ack(batch);
}

void Spool::drop_consumed_segments() {
  // A segment before the cursor's, or the cursor's when fully read and not active, is done.
  while (segments_.size() > 1) {
    const std::uint64_t seq = segments_.front();
    const bool done =
        seq < cursor_.segment || (seq == cursor_.segment && cursor_.offset >= segment_size(seq));
    if (!done) break;
    const std::uint64_t size = segment_size(seq);
    std::error_code ec;
    fs::remove(segment_path(seq), ec);
    segments_.erase(segments_.begin());
    total_bytes_ -= std::min(total_bytes_, size);
    if (cursor_.segment <= seq) cursor_ = {segments_.front(), 0};
  }
}

void Spool::write_cursor() {
  const std::string tmp = options_.dir + "/cursor.tmp";
  const std::string final_path = options_.dir + "/cursor";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw_errno("writing " + tmp);
  const std::string text =
      std::to_string(cursor_.segment) + " " + std::to_string(cursor_.offset) + "\n";
  write_all(fd, text.data(), text.size(), "writing " + tmp);
  ::fdatasync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) throw_errno("renaming " + tmp);
}

}  // namespace vantage::probe::sinks
