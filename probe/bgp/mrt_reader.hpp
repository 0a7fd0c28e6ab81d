// Streaming reader of MRT files (RFC 6396 §2, §3): plain, gzip (zlib) or bzip2 (libbz2), picked
// by the file's magic bytes, records of any length (also over 64 KiB). Reads in 1 MiB chunks
// and hands out each record as a view into its buffer — no copy, no allocation per record.
//
// Damage is reported, never fatal, and never silent: every loss gets a warning naming where it
// is (docs/bgp.md#damage-and-exit-status), and the records before it are always handed out.
// - The compressed stream: a gzip or bzip2 stream that ends before its end marker, fails its
//   CRC or length check, or cannot be decoded, is reported with its compressed byte position;
//   concatenated members (gzip -c a b, pbzip2) are read on, bytes after the last one reported.
//   Both check a CRC only after handing out what it covers: those records may be corrupt.
// - The record framing: a header is plausible when its type is one RFC 6396 (6397, 8050)
//   defines for BGP or the IGPs, its subtype is one of that type's, and its length fits the
//   type (at most one BGP message for BGP4MP, TABLE_DUMP and the deprecated BGP type, at most
//   kMaxRecordBytes otherwise). A record is sound when, besides, its own fields (a BGP
//   message's length, a RIB's entries) end where its length says and a plausible header or
//   the end of the stream follows. When only the length field is wrong — the fields end where
//   a record or the stream does — the record is read as its fields say. Otherwise the reader
//   resynchronises: it looks byte by byte for the next plausible header that is followed by
//   another (or by the end of the stream), with a timestamp within a week of the last good
//   record's, and skips to it — from inside a record whose length points past a record
//   start, or from a header that is not plausible. A stream that ends inside a record in
//   which no record starts is "truncated" (the file is cut), not an implausible length.
// Throws std::system_error only when the file cannot be opened (start-up).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vantage::bgp {

// An allocator that leaves new bytes uninitialised: the reader's buffers are written before
// they are read, and zeroing a 1 MiB buffer (and faulting its pages in) was most of the time
// `vantage bgp dump` spent on a small file.
template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;  // default-initialised: no zeroing
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
using ByteBuffer = std::vector<std::uint8_t, UninitializedAllocator<std::uint8_t>>;

// MRT types (RFC 6396 §4, RFC 8050).
enum MrtType : std::uint16_t {
  kMrtBgp = 5,  // deprecated "BGP" type (Zebra), still in early RIS files
  kMrtTableDump = 12,
  kMrtTableDumpV2 = 13,
  kMrtBgp4mp = 16,
  kMrtBgp4mpEt = 17,  // extended timestamp: 4 more bytes of microseconds
};

struct MrtRecord {
  std::uint32_t timestamp = 0;     // UTC seconds
  std::uint32_t microseconds = 0;  // *_ET types only
  std::uint16_t type = 0;
  std::uint16_t subtype = 0;
  // The message after the common header (and after the microseconds of ET types).
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  std::uint64_t offset = 0;  // byte offset of the record in the decompressed stream
};

class MrtReader {
 public:
  // The longest record of a type that may carry many entries (TABLE_DUMP_V2 RIBs: one prefix
  // with every peer's attributes, legitimately over 64 KiB).
  static constexpr std::size_t kMaxRecordBytes = 16u << 20;

  explicit MrtReader(const std::string& path);
  ~MrtReader();
  MrtReader(const MrtReader&) = delete;
  MrtReader& operator=(const MrtReader&) = delete;

  // The next record; false at the end of the stream (or at damage that ends it).
  bool next(MrtRecord& record);
  // What went wrong, in order: "offset 1234: truncated record: header says 5000 bytes, 12 left",
  // "gzip stream truncated at compressed byte 40960". Offsets are in the decompressed stream.
  const std::vector<std::string>& warnings() const noexcept { return warnings_; }
  // What the damage cost: records with damaged framing — skipped, cut, or read as their own
  // fields say (one warning each) …
  std::uint64_t damaged_records() const noexcept { return damaged_records_; }
  // … the decompressed bytes not handed out as records because of it …
  std::uint64_t skipped_bytes() const noexcept { return skipped_bytes_; }
  // … and whether the compressed stream itself is cut, corrupt or followed by other data.
  bool stream_damaged() const noexcept;
  std::uint64_t compressed_bytes_read() const noexcept;  // for progress and MB/s

 private:
  class Source;
  struct Header;
  bool fill(std::size_t want);  // ensures `want` bytes are buffered; false at end of stream
  Header header_at(std::size_t at) const;  // `at` bytes after begin_ (buffered)
  bool plausible(const Header& h, bool check_time) const;
  bool record_chain_at(std::size_t at);
  bool find_record(std::size_t from, std::size_t to, std::size_t& found);
  void skip(std::size_t n);
  void resynchronise(const std::string& what);
  void damage(std::string what);

  std::unique_ptr<Source> source_;
  ByteBuffer buffer_;
  std::size_t begin_ = 0, end_ = 0;  // unread bytes: buffer_[begin_, end_)
  std::uint64_t consumed_ = 0;       // stream offset of buffer_[begin_]
  bool eof_ = false;
  bool have_time_ = false;
  std::uint32_t last_time_ = 0;  // timestamp of the last good record, for resynchronisation
  std::uint64_t damaged_records_ = 0;
  std::uint64_t skipped_bytes_ = 0;
  std::vector<std::string> warnings_;
};

}  // namespace vantage::bgp
