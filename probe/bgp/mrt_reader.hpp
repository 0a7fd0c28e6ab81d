// Streaming reader of MRT files (RFC 6396 §2, §3): plain, gzip (zlib) or bzip2 (libbz2), picked
// by the file's magic bytes, records of any length (also over 64 KiB). Reads in 1 MiB chunks
// and hands out each record as a view into its buffer — no copy, no allocation per record.
//
// Damage is reported, never fatal: a record whose header promises more bytes than the file has
// (a truncated file, a cut bz2 stream) ends the stream with a warning; an absurd length
// (over kMaxRecordBytes) is reported and reading stops, since the next header cannot be found.
// Throws std::system_error only when the file cannot be opened (start-up).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vantage::bgp {

// MRT types (RFC 6396 §4, RFC 8050).
enum MrtType : std::uint16_t {
  kMrtBgp = 5,            // deprecated "BGP" type (Zebra), still in early RIS files
  kMrtTableDump = 12,
  kMrtTableDumpV2 = 13,
  kMrtBgp4mp = 16,
  kMrtBgp4mpEt = 17,      // extended timestamp: 4 more bytes of microseconds
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
  static constexpr std::size_t kMaxRecordBytes = 16u << 20;

  explicit MrtReader(const std::string& path);
  ~MrtReader();
  MrtReader(const MrtReader&) = delete;
  MrtReader& operator=(const MrtReader&) = delete;

  // The next record; false at the end of the stream (or at damage that ends it).
  bool next(MrtRecord& record);
  // What went wrong, in order ("offset 1234: truncated record: header says 5000 bytes, 12 left").
  const std::vector<std::string>& warnings() const noexcept { return warnings_; }
  std::uint64_t compressed_bytes_read() const noexcept;  // for progress and MB/s

 private:
  class Source;
  bool fill(std::size_t want);  // ensures `want` bytes are buffered; false at end of stream

  std::unique_ptr<Source> source_;
  std::vector<std::uint8_t> buffer_;
  std::size_t begin_ = 0, end_ = 0;  // unread bytes: buffer_[begin_, end_)
  std::uint64_t consumed_ = 0;
  bool eof_ = false;
  std::vector<std::string> warnings_;
};

}  // namespace vantage::bgp
