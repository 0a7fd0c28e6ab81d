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

constexpr std::uint64_t kReadChunk = 1 << 20;

std::error_code last_errno() { return {errno, std::generic_category()}; }

bool parse_segment_name(const std::string& name, std::uint64_t& seq) {
  if (name.size() != 27 || name.substr(20) != ".ndjson") return false;
  for (std::size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
  }
  seq = std::stoull(name.substr(0, 20));
  return true;
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

// The offset just past the first '\n' at or after `from`, or npos when [from, size) holds none.
std::uint64_t find_line_end(const std::string& path, std::uint64_t from, std::uint64_t size) {
  for (std::uint64_t pos = from; pos < size;) {
    const std::string chunk = read_range(path, pos, std::min(kReadChunk, size - pos));
    if (chunk.empty()) break;
    const auto nl = chunk.find('\n');
    if (nl != std::string::npos) return pos + nl + 1;
    pos += chunk.size();
  }
  return std::string::npos;
}

// Closes a descriptor on every way out, the seam's exceptions included.
struct FdGuard {
  int fd;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

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

  // Cut a torn last line (a crash in the middle of a write) from the newest segment. Should that
  // fail, nothing breaks: the segment is never appended to again (see below) and the reader
  // skips a fragment at the end of a segment.
  if (!segments_.empty()) {
    const std::string path = segment_path(segments_.back());
    const std::uint64_t size = segment_size(segments_.back());
    if (size > 0) {
      const std::uint64_t window = std::min<std::uint64_t>(size, kReadChunk);
      const std::string tail = read_range(path, size - window, window);
      const auto nl = tail.rfind('\n');
      const std::uint64_t keep = nl == std::string::npos ? size - window : size - window + nl + 1;
      if (keep != size) {
        const bool cut = ::truncate(path.c_str(), static_cast<off_t>(keep)) == 0;
        log::warn(cut ? "spool.torn_line_removed" : "spool.torn_line_kept",
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
  next_segment_ =
      segments_.empty() ? std::max<std::uint64_t>(cursor_.segment, 1) : segments_.back() + 1;
  if (pending_results_ == 0) {
    // Everything was delivered: start clean.
    for (std::uint64_t seq : segments_) fs::remove(segment_path(seq), ec);
    segments_.clear();
    total_bytes_ = 0;
    cursor_ = {next_segment_, 0};
  }
  // Appends always go to a fresh segment (opened by the first append): older ones are never
  // written again, so a fragment at their end stays the last thing in them.
  write_cursor();  // a failure is kept in cursor_failing() and retried by the next ack
}

Spool::~Spool() { close_active(); }

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

std::uint64_t Spool::readable_size(std::uint64_t seq) const {
  if (active_fd_ >= 0 && !segments_.empty() && seq == segments_.back()) return active_size_;
  return segment_size(seq);
}

std::uint64_t Spool::count_lines(std::uint64_t seq, std::uint64_t from) const {
  const std::uint64_t size = segment_size(seq);
  std::uint64_t lines = 0;
  for (std::uint64_t pos = from; pos < size; pos += kReadChunk) {
    const std::string chunk =
        read_range(segment_path(seq), pos, std::min<std::uint64_t>(kReadChunk, size - pos));
    lines += static_cast<std::uint64_t>(std::count(chunk.begin(), chunk.end(), '\n'));
  }
  return lines;
}

void Spool::failed(SpoolFile file, std::error_code ec) {
  ++write_errors_[static_cast<int>(file)];
  last_error_[static_cast<int>(file)] = ec;
}

std::error_code Spool::open_active() {
  const std::string path = segment_path(next_segment_);
  // O_TRUNC: the number is newer than every segment we know, so whatever a file of that name
  // holds (a leftover of a failed removal) is not ours to keep.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return last_errno();
  active_fd_ = fd;
  active_size_ = 0;
  segments_.push_back(next_segment_++);
  return {};
}

void Spool::close_active() {
  if (active_fd_ < 0) return;
  ::fdatasync(active_fd_);
  ::close(active_fd_);
  active_fd_ = -1;
}

std::error_code Spool::write_all(SpoolFile file, int fd, const char* data, std::size_t len,
                                 std::size_t& written) {
  written = 0;
  while (written < len) {
    const ssize_t n = options_.write ? options_.write(file, fd, data + written, len - written)
                                     : ::write(fd, data + written, len - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_errno();
    }
    // write(2) returns 0 for a non-empty buffer only on odd devices: an error, not a spin.
    if (n == 0) return std::make_error_code(std::errc::io_error);
    written += static_cast<std::size_t>(n);
  }
  return {};
}

void Spool::keep_complete_lines(const std::string& buf, std::size_t written, SpoolAppend& out) {
  // A short write (ENOSPC after some pages, or an I/O error) may end in the middle of a line.
  // Keep the complete lines before it and cut the rest, so the next line written does not run
  // into a fragment (the collector would refuse the merged line, and the batch with it).
  std::size_t keep = 0;
  if (written > 0) {
    const auto nl = buf.rfind('\n', written - 1);
    keep = nl == std::string::npos ? 0 : nl + 1;
  }
  const auto kept_lines = static_cast<std::size_t>(
      std::count(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(keep), '\n'));
  const std::uint64_t good_size = active_size_ + keep;
  active_size_ = good_size;
  total_bytes_ += keep;
  pending_results_ += kept_lines;
  out.lines += kept_lines;
  if (written > keep && ::ftruncate(active_fd_, static_cast<off_t>(good_size)) != 0) {
    // Cannot even cut it (an I/O error): stop appending to this segment. Its fragment stays last
    // in it, and read_batch skips a segment's newline-less end.
    log::warn("spool.fragment_kept", {{"segment", segment_path(segments_.back())},
                                      {"bytes", static_cast<std::int64_t>(written - keep)},
                                      {"error", last_errno().message()}});
    close_active();
  }
}

bool Spool::flush(std::string& buf, std::size_t& buffered, SpoolAppend& out) {
  if (buf.empty()) return true;
  std::size_t written = 0;
  std::error_code ec;
  try {
    ec = write_all(SpoolFile::segment, active_fd_, buf.data(), buf.size(), written);
  } catch (...) {
    keep_complete_lines(buf, written, out);
    throw;
  }
  if (ec) {
    keep_complete_lines(buf, written, out);
    out.error = ec;
    failed(SpoolFile::segment, ec);
    return false;
  }
  active_size_ += buf.size();
  total_bytes_ += buf.size();
  pending_results_ += buffered;
  out.lines += buffered;
  buf.clear();
  buffered = 0;
  return true;
}

SpoolAppend Spool::append(const std::vector<std::string>& lines) {
  SpoolAppend out;
  if (lines.empty()) return out;
  std::string buf;  // lines for the open segment, written with one write(2)
  std::size_t buffered = 0;
  bool ok = true;
  for (const auto& line : lines) {
    const std::uint64_t pending = active_size_ + buf.size();
    if (active_fd_ >= 0 && pending > 0 && pending + line.size() + 1 > options_.segment_max_bytes) {
      if (!flush(buf, buffered, out)) {
        ok = false;
        break;
      }
      close_active();
    }
    if (active_fd_ < 0) {
      if (const auto ec = open_active()) {
        out.error = ec;
        failed(SpoolFile::segment, ec);
        ok = false;
        break;
      }
    }
    buf += line;
    buf += '\n';
    ++buffered;
  }
  if (ok) flush(buf, buffered, out);
  append_failing_ = static_cast<bool>(out.error);
  evict_if_needed();
  return out;
}

std::error_code Spool::sync() {
  if (active_fd_ < 0 || ::fdatasync(active_fd_) == 0) return {};
  const auto ec = last_errno();
  failed(SpoolFile::segment, ec);
  append_failing_ = true;
  return ec;
}

void Spool::evict_if_needed() {
  while (total_bytes_ > options_.max_bytes && segments_.size() > 1) {
    const std::uint64_t seq = segments_.front();
    std::uint64_t lost = 0;
    if (seq >= cursor_.segment) {
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
      write_cursor();  // a failure is recorded; the next ack writes it again
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
    if (it == segments_.end()) break;  // all delivered: the cursor waits for the next segment
    const bool last = it + 1 == segments_.end();
    const std::string path = segment_path(pos.segment);
    const std::uint64_t size = readable_size(pos.segment);
    if (pos.offset >= size) {
      if (last) break;
      pos = {*(it + 1), 0};
      continue;
    }
    const std::uint64_t want =
        std::min<std::uint64_t>(size - pos.offset, max_bytes - b.body.size() + 64 * 1024);
    const std::string chunk = read_range(path, pos.offset, want);
    std::size_t start = 0;
    while (b.count < max_lines) {
      const auto nl = chunk.find('\n', start);
      if (nl == std::string::npos) break;
      if (b.count > 0 && b.body.size() + (nl + 1 - start) > max_bytes) break;
      b.body.append(chunk, start, nl + 1 - start);
      ++b.count;
      start = nl + 1;
      if (b.body.size() >= max_bytes) break;
    }
    pos.offset += start;
    if (start > 0) continue;
    // No whole line in the window.
    if (b.count > 0) break;  // the next line does not fit in this batch
    const std::uint64_t end = find_line_end(path, pos.offset, size);
    if (end == std::string::npos) {
      // The segment ends in a fragment without a newline, left by a write that failed and could
      // not be cut (append closed the segment after it) or by a crash: skip it. In the last
      // segment, wait: the next append opens a newer one.
      if (last) break;
      pos = {*(it + 1), 0};
      continue;
    }
    // One line longer than max_bytes: it goes alone (the collector may refuse it with 413, and
    // the sender sets it aside), rather than stall everything behind it.
    const std::string line = read_range(path, pos.offset, end - pos.offset);
    if (line.size() != end - pos.offset) break;  // a read error: try again next time
    b.body = line;
    b.count = 1;
    pos.offset = end;
    break;
  }
  b.end = pos;
  return b;
}

std::error_code Spool::ack(const SpoolBatch& batch) {
  if (batch.empty()) return {};
  cursor_ = batch.end;
  pending_results_ -= std::min<std::uint64_t>(pending_results_, batch.count);
  drop_consumed_segments();
  if (active_fd_ >= 0 && segments_.size() == 1 && cursor_.segment == segments_.back() &&
      cursor_.offset >= active_size_ && active_size_ > 0) {
    // Everything written was delivered: remove the segment so no delivered data stays on disk
    // (the next append opens a new one).
    const std::uint64_t old = segments_.back();
    ::close(active_fd_);
    active_fd_ = -1;
    segments_.clear();
    std::error_code ec;
    fs::remove(segment_path(old), ec);
    total_bytes_ = 0;
    cursor_ = {next_segment_, 0};
  }
  return write_cursor();
}

std::error_code Spool::reject(const SpoolBatch& batch) {
  if (batch.empty()) return {};
  std::error_code ec;
  fs::create_directories(options_.dir + "/rejected", ec);
  if (ec) {
    failed(SpoolFile::rejected, ec);
    return ec;
  }
  const std::string path = options_.dir + "/rejected/" + std::to_string(batch.begin.segment) + "-" +
                           std::to_string(batch.begin.offset) + ".ndjson";
  {
    FdGuard fd{::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
    if (fd.fd < 0) {
      ec = last_errno();
    } else {
      std::size_t written = 0;
      ec = write_all(SpoolFile::rejected, fd.fd, batch.body.data(), batch.body.size(), written);
      if (!ec && ::fdatasync(fd.fd) != 0) ec = last_errno();
    }
  }
  if (ec) {
    // A partial copy would look like the whole batch: remove it; the batch stays pending.
    ::unlink(path.c_str());
    failed(SpoolFile::rejected, ec);
    return ec;
  }
  rejected_ += batch.count;
  ack(batch);
  return {};
}

void Spool::drop_consumed_segments() {
  // A segment before the cursor's, or the cursor's when fully read, is done. The open segment is
  // left to ack(), which removes it only when everything in it was delivered.
  while (!segments_.empty()) {
    const std::uint64_t seq = segments_.front();
    if (active_fd_ >= 0 && seq == segments_.back()) break;
    const bool done =
        seq < cursor_.segment || (seq == cursor_.segment && cursor_.offset >= segment_size(seq));
    if (!done) break;
    const std::uint64_t size = segment_size(seq);
    std::error_code ec;
    fs::remove(segment_path(seq), ec);
    segments_.erase(segments_.begin());
    total_bytes_ -= std::min(total_bytes_, size);
    if (cursor_.segment <= seq) {
      cursor_ =
          segments_.empty() ? SpoolPosition{next_segment_, 0} : SpoolPosition{segments_.front(), 0};
    }
  }
}

std::error_code Spool::write_cursor() {
  // Written to a temporary file and renamed over the old one, so a failure at any step leaves
  // the previous cursor whole.
  const std::string tmp = options_.dir + "/cursor.tmp";
  const std::string final_path = options_.dir + "/cursor";
  const std::string text =
      std::to_string(cursor_.segment) + " " + std::to_string(cursor_.offset) + "\n";
  std::error_code ec;
  {
    FdGuard fd{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
    if (fd.fd < 0) {
      ec = last_errno();
    } else {
      std::size_t written = 0;
      ec = write_all(SpoolFile::cursor, fd.fd, text.data(), text.size(), written);
      if (!ec && ::fdatasync(fd.fd) != 0) ec = last_errno();
    }
  }
  if (!ec && ::rename(tmp.c_str(), final_path.c_str()) != 0) ec = last_errno();
  cursor_failing_ = static_cast<bool>(ec);
  if (ec) failed(SpoolFile::cursor, ec);
  return ec;
}

}  // namespace vantage::probe::sinks
