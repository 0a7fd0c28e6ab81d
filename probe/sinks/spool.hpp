// The collector sink's on-disk spool: append-only NDJSON segment files plus an acknowledgement
// cursor, so results survive probe restarts and collector outages.
//
//   <dir>/00000000000000000007.ndjson   segments, oldest first; the newest is appended to
//   <dir>/cursor                        "<segment> <byte offset>" of the first unacknowledged line
//   <dir>/rejected/<segment>-<offset>.ndjson   batches the collector refused as malformed (kept)
//
// Lines are written with write(2) (a crashed probe loses nothing the kernel has) and fdatasync'ed
// by sync() (the sink calls it every flush interval and at shutdown). A torn last line left by a
// crash is cut off at start-up. When the spool outgrows max_bytes the oldest segment is dropped
// and its unacknowledged lines are counted in dropped(). Not thread-safe: one owner thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vantage::probe::sinks {

struct SpoolOptions {
  std::string dir;
  std::uint64_t max_bytes = 256ULL << 20;
  std::uint64_t segment_max_bytes = 1ULL << 20;
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

class Spool {
 public:
  // Opens (creating) the directory and recovers its state. Throws std::system_error on I/O errors.
  explicit Spool(SpoolOptions options);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Appends lines (without trailing newline). Throws std::system_error if the disk write fails.
  void append(const std::vector<std::string>& lines);
  // Flushes appended data to stable storage.
  void sync();

  // Up to `max_lines` lines / about `max_bytes` bytes from the cursor (at least one line if any).
  SpoolBatch read_batch(std::size_t max_lines, std::size_t max_bytes);
  // Marks everything before `end` as delivered; deletes segments no longer needed.
  void ack(const SpoolBatch& batch);
  // Moves a batch the collector refused into rejected/ and acknowledges it.
  void reject(const SpoolBatch& batch);

  std::uint64_t pending_results() const noexcept { return pending_results_; }
  std::uint64_t bytes() const noexcept { return total_bytes_; }
  std::uint64_t dropped() const noexcept { return dropped_; }
  std::uint64_t rejected() const noexcept { return rejected_; }
  const std::string& dir() const noexcept { return options_.dir; }

 private:
  std::string segment_path(std::uint64_t seq) const;
  void open_active(std::uint64_t seq);
  void rotate();
  void write_cursor();
  void evict_if_needed();
  void drop_consumed_segments();
  std::uint64_t count_lines(std::uint64_t seq, std::uint64_t from) const;
  std::uint64_t segment_size(std::uint64_t seq) const;

  SpoolOptions options_;
  std::vector<std::uint64_t> segments_;  // sequence numbers, ascending; back() is active
  int active_fd_ = -1;
  std::uint64_t active_size_ = 0;
  SpoolPosition cursor_;
  std::uint64_t total_bytes_ = 0;
  std::uint64_t pending_results_ = 0;
  std::uint64_t dropped_ = 0;
  std::uint64_t rejected_ = 0;
};

}  // namespace vantage::probe::sinks
