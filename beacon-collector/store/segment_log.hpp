// The collector's write-ahead log for browser uploads (docs/collector.md#durability): an
// append-only sequence of segment files in one directory, written before the 204 so that an
// acknowledged report survives a SIGKILL or a power cut, and loaded into the store
// asynchronously by the Writer (store.hpp).
//
// On disk: <dir>/<first sequence number, 20 decimal digits>.seg. A segment starts with the
// 8-byte magic "VNTGLOG1" and holds frames back to back, integers little-endian:
//   u32 payload length (1 … kMaxFramePayload) | u32 CRC32C (Castagnoli, RFC 3720 §B.4) of the
//   sequence number's 8 bytes and the payload | u64 sequence number | payload
// Sequence numbers grow by one per frame across segments; one frame is one upload. A frame
// is durable once the fdatasync(2) that follows its write() has returned: appends that arrive
// while a sync runs share the next one (group sync). A frame cut short by a crash (the torn
// tail) fails its length or CRC check: replay stops that segment there and the next segment
// starts a fresh file, so it is never appended to. A segment is filled with zeros ahead of its
// frames (a length of 0 ends the frames): a sync then writes data, not the file's metadata.
//
// A closed segment is deleted once the store reports (committed()) that every frame in it is
// stored; the store keeps that sequence number in the same transaction as the rows, so replay
// at start skips what is already stored (no row twice).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace vantage::collector::store {

inline constexpr std::uint32_t kMaxFramePayload = 64u << 20;  // bytes
inline constexpr std::size_t kFrameHeaderBytes = 16;
inline constexpr std::string_view kSegmentMagic = "VNTGLOG1";

// CRC32C (Castagnoli polynomial 0x1EDC6F41, reflected), as iSCSI and ext4 use it; `crc` is the
// value of the bytes before (0 to start). SSE4.2's crc32 instruction when the CPU has it.
std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t size) noexcept;

// Appends one frame (header and payload) to `out`.
void append_frame(std::string& out, std::uint64_t seq, std::string_view payload);

// The frames of one segment's bytes (after the magic), in order, up to the first that is torn
// or corrupt. `valid_bytes`: where the intact frames end (relative to `bytes`).
struct FrameView {
  std::uint64_t seq = 0;
  std::string_view payload;
};
std::vector<FrameView> parse_frames(std::string_view bytes, std::size_t& valid_bytes);

struct ReplayStats {
  std::size_t segments = 0;
  std::uint64_t frames = 0;      // intact frames read
  std::uint64_t replayed = 0;    // … of which handed to the callback (seq > after)
  std::uint64_t last_seq = 0;    // the highest sequence number found (0: none)
  std::uint64_t torn_bytes = 0;  // bytes after the last intact frame of each segment, summed
};

class SegmentLog {
 public:
  // Called on the log's thread once the frame's sync returned: no error = durable. Called in
  // sequence order.
  using Done = std::function<void(std::uint64_t seq, std::error_code)>;

  // Opens `dir` (created if missing, like mkdir -p) and lists its segments. `segment_bytes`: a
  // segment is closed and a new one started once it is this large. Throws std::system_error
  // naming the directory when it cannot be created or read (start-up).
  SegmentLog(std::string dir, std::uint64_t segment_bytes);
  ~SegmentLog();
  SegmentLog(const SegmentLog&) = delete;
  SegmentLog& operator=(const SegmentLog&) = delete;

  // Before start(): calls `fn` with every intact frame whose sequence number is above `after`,
  // in order. A segment that cannot be read throws std::system_error (start-up).
  ReplayStats replay(std::uint64_t after,
                     const std::function<void(std::uint64_t, std::string_view)>& fn);
  // Starts appending: numbering continues above max(`committed`, the highest sequence number
  // replay() saw), segments wholly at or below `committed` are deleted, a new segment is
  // created and the sync thread starts. Throws std::system_error when the segment cannot be
  // created.
  void start(std::uint64_t committed);
  // Queues one frame; `done` follows its sync (or the failure of its write or sync: ENOSPC,
  // EIO, EFBIG…; the frame then counts as not written). Returns its sequence number, or 0 when
  // the log is stopped (`done` not called). Thread-safe.
  std::uint64_t append(std::string_view payload, Done done);
  // The store holds every frame up to `seq`: closed segments wholly at or below are deleted by
  // the sync thread. Thread-safe.
  void committed(std::uint64_t seq) noexcept;
  // Writes and syncs what is queued, calls its `done`s, joins the thread. Idempotent.
  void stop();

  const std::string& dir() const noexcept { return dir_; }
  std::uint64_t syncs() const noexcept { return syncs_.load(std::memory_order_relaxed); }
  std::uint64_t sync_errors() const noexcept {
    return sync_errors_.load(std::memory_order_relaxed);
  }
  std::uint64_t bytes_written() const noexcept {
    return bytes_written_.load(std::memory_order_relaxed);
  }
  std::size_t segment_count() const;  // segment files on disk (closed and the open one)

 private:
  struct Segment {
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;  // 0: no frame
    std::string path;
  };
  void run();
  std::error_code open_segment(std::uint64_t first_seq);
  void delete_committed();
  void extend_zeros(std::uint64_t needed);

  const std::string dir_;
  const std::uint64_t segment_bytes_;
  mutable std::mutex mutex_;  // guards the pending buffer, next_seq_, stopping_, segments_
  std::condition_variable wake_;
  std::string pending_;  // frames waiting for the sync thread
  std::vector<Done> pending_done_;
  std::uint64_t pending_first_ = 0, pending_last_ = 0;
  std::uint64_t next_seq_ = 1;
  bool started_ = false, stopping_ = false;
  std::deque<Segment> segments_;  // oldest first; the back one is open once started
  // Sync thread only:
  int fd_ = -1;
  std::uint64_t offset_ = 0;  // bytes of the open segment known good
  std::uint64_t zeroed_ = 0;  // the open segment's length: frames, then zeros up to here
  std::atomic<std::uint64_t> committed_{0};
  std::atomic<std::uint64_t> syncs_{0}, sync_errors_{0}, bytes_written_{0};
  std::thread thread_;
};

}  // namespace vantage::collector::store
