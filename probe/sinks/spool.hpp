// The collector sink's on-disk spool: append-only NDJSON segment files plus an acknowledgement
// cursor, so results survive probe restarts and collector outages.
//
//   <dir>/00000000000000000007.ndjson   segments, oldest first; the newest is appended to
//   <dir>/cursor                        "<segment> <byte offset>" of the first unacknowledged line
//   <dir>/rejected/<segment>-<offset>.ndjson   batches the collector refused (kept)
//
// Lines are written with write(2) (a crashed probe loses nothing the kernel has) and fdatasync'ed
// by sync() (the sink calls it every flush interval and at shutdown). A torn last line left by a
// crash is cut off at start-up. When the spool outgrows max_bytes the oldest segment is dropped
// and its unacknowledged lines are counted in dropped(). Not thread-safe: one owner thread.
//
// Disk errors (ENOSPC, EIO, a read-only file system) are data, not exceptions: append(), ack(),
// reject() and sync() return what failed, the spool stays usable, and the next call tries the disk
// again, so delivery resumes by itself when space returns. What a failure costs:
//   - append: the lines from the first one not wholly written on are not spooled (the caller
//     counts them as dropped). A line written in part is cut off again (ftruncate to the last
//     complete line); if even that fails, the segment is closed and never appended to again, and
//     the reader skips the fragment at its end. Lines already spooled are never touched.
//   - ack: the cursor file keeps its old position. In memory the spool moves on (nothing is sent
//     twice by this process); after a restart the lines since the old position are sent again,
//     which the collector deduplicates by result id.
//   - reject: the batch is neither copied to rejected/ nor acknowledged (it stays pending).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

namespace vantage::probe::sinks {

// The files the spool writes, for SpoolOptions::write and error reports.
enum class SpoolFile { segment, cursor, rejected };

using SpoolWriteFunction =
    std::function<ssize_t(SpoolFile file, int fd, const void* data, std::size_t size)>;

struct SpoolOptions {
  std::string dir;
  std::uint64_t max_bytes = 256ULL << 20;
  std::uint64_t segment_max_bytes = 1ULL << 20;
  // Test seam for disk faults: when set, called instead of write(2) for every write the spool
  // makes, with write(2)'s contract (bytes written, possibly fewer than `size`; or -1 with errno
  // set). It may also throw, to stand for an unexpected failure: the exception leaves the spool
  // call that made the write, with the spool's state still consistent. Production code leaves it
  // empty.
  SpoolWriteFunction write;
};

struct SpoolPosition {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
};

struct SpoolBatch {
  std::string body;          // complete lines, each ending in '\n'
  std::size_t count = 0;     // number of lines
  SpoolPosition begin, end;  // [begin, end) in spool positions
  bool empty() const noexcept { return count == 0; }
};

// What append() did: the first `lines` lines given are in the spool; if `error` is set, the
// others are not (the disk refused them).
struct SpoolAppend {
  std::size_t lines = 0;
  std::error_code error;
};

class Spool {
 public:
  // Opens (creating) the directory and recovers its state. Throws std::system_error (or
  // std::filesystem::filesystem_error) only when the directory cannot be created or listed: a
  // full or read-only disk at start-up is not fatal (write_failing(), retried by later calls).
  explicit Spool(SpoolOptions options);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Appends lines (without trailing newline), in order; see SpoolAppend. Never throws for I/O.
  SpoolAppend append(const std::vector<std::string>& lines);
  // Flushes appended data to stable storage (fdatasync). An error means data since the last
  // successful sync may not survive a power loss.
  std::error_code sync();

  // Up to `max_lines` lines / about `max_bytes` bytes from the cursor. At least one line if any
  // is pending, however long it is (so one oversized line cannot stall the reader).
  SpoolBatch read_batch(std::size_t max_lines, std::size_t max_bytes);
  // Marks everything before `end` as delivered and deletes segments no longer needed. Always
  // takes effect in memory; an error means the cursor file was not updated (see above).
  std::error_code ack(const SpoolBatch& batch);
  // Copies a batch the collector refused into rejected/ and acknowledges it. An error means the
  // copy could not be written and nothing changed (the batch stays pending). A cursor write
  // failing after the copy is reported as for every cursor write: cursor_failing(),
  // write_errors(SpoolFile::cursor).
  std::error_code reject(const SpoolBatch& batch);

  std::uint64_t pending_results() const noexcept { return pending_results_; }
  std::uint64_t bytes() const noexcept { return total_bytes_; }
  std::uint64_t dropped() const noexcept { return dropped_; }  // lost to max_bytes eviction
  std::uint64_t rejected() const noexcept { return rejected_; }
  // The last append (or segment sync) or the last cursor write failed: the disk is full or
  // broken. Clears when the same kind of write succeeds again.
  bool write_failing() const noexcept { return append_failing_ || cursor_failing_; }
  bool append_failing() const noexcept { return append_failing_; }
  bool cursor_failing() const noexcept { return cursor_failing_; }
  // Failed writes (and syncs) of each kind of file since start, and the last error of each.
  std::uint64_t write_errors(SpoolFile file) const noexcept {
    return write_errors_[static_cast<int>(file)];
  }
  std::error_code last_error(SpoolFile file) const noexcept {
    return last_error_[static_cast<int>(file)];
  }
  const std::string& dir() const noexcept { return options_.dir; }

 private:
  std::string segment_path(std::uint64_t seq) const;
  std::error_code open_active();
  void close_active();
  std::error_code write_all(SpoolFile file, int fd, const char* data, std::size_t len,
                            std::size_t& written);
  bool flush(std::string& buf, std::size_t& buffered, SpoolAppend& out);
  void keep_complete_lines(const std::string& buf, std::size_t written, SpoolAppend& out);
  void failed(SpoolFile file, std::error_code ec);
  std::error_code write_cursor();
  void evict_if_needed();
  void drop_consumed_segments();
  // Bytes of a segment that the reader may read: the open segment's complete lines, otherwise
  // the file's size.
  std::uint64_t readable_size(std::uint64_t seq) const;
  std::uint64_t count_lines(std::uint64_t seq, std::uint64_t from) const;
  std::uint64_t segment_size(std::uint64_t seq) const;

  SpoolOptions options_;
  std::vector<std::uint64_t> segments_;  // sequence numbers of segment files, ascending
  // The segment being appended to is segments_.back() while active_fd_ >= 0. It is closed when
  // full, and when a write to it failed in a way that left a fragment behind; the next append
  // then opens next_segment_, so nothing is ever written after a fragment.
  int active_fd_ = -1;
  std::uint64_t active_size_ = 0;  // bytes of complete lines in the open segment
  std::uint64_t next_segment_ = 1;
  SpoolPosition cursor_;
  std::uint64_t total_bytes_ = 0;
  std::uint64_t pending_results_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t rejected_ = 0;
  bool append_failing_ = false;
  bool cursor_failing_ = false;
  std::uint64_t write_errors_[3] = {0, 0, 0};  // by SpoolFile
  std::error_code last_error_[3];
};

}  // namespace vantage::probe::sinks
