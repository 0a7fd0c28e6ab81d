#include "probe/bgp/mrt_reader.hpp"

#include <bzlib.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <system_error>

namespace vantage::bgp {

namespace {
constexpr std::size_t kChunk = 1u << 20;

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}
std::uint16_t be16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
}  // namespace

// A decompressing byte source: gzip or plain through zlib's gz* API (which passes plain files
// through), bzip2 through libbz2's low-level API, so that a cut stream still yields every
// block that was complete and concatenated streams (pbzip2) are read on.
class MrtReader::Source {
 public:
  explicit Source(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) throw std::system_error(errno, std::generic_category(), "cannot open \"" + path + "\"");
    unsigned char magic[3] = {0, 0, 0};
    const std::size_t n = std::fread(magic, 1, 3, file_);
    if (n == 3 && magic[0] == 'B' && magic[1] == 'Z' && magic[2] == 'h') {
      std::rewind(file_);
      bz_input_.resize(256 * 1024);
      start_bz2();
    } else {
      std::fclose(file_);
      file_ = nullptr;
      gz_ = gzopen(path.c_str(), "rb");
      if (!gz_) throw std::system_error(errno ? errno : ENOMEM, std::generic_category(), "cannot open \"" + path + "\"");
      gzbuffer(gz_, 256 * 1024);
    }
  }
  ~Source() {
    if (gz_) gzclose(gz_);
    if (bz_active_) BZ2_bzDecompressEnd(&bz_);
    if (file_) std::fclose(file_);
  }
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // Reads up to `n` bytes; 0 at the end. A decompression error ends the stream with `error`.
  std::size_t read(std::uint8_t* out, std::size_t n, std::string& error) {
    if (gz_) {
      const int r = gzread(gz_, out, static_cast<unsigned>(n));
      if (r < 0) {
        int code = 0;
        error = std::string("gzip: ") + gzerror(gz_, &code);
        return 0;
      }
      if (r == 0 && !gzeof(gz_)) {
        int code = 0;
        const char* msg = gzerror(gz_, &code);
        if (code != Z_OK) error = std::string("gzip: ") + msg;
      }
      return static_cast<std::size_t>(r);
    }
    if (!bz_active_) return 0;
    bz_.next_out = reinterpret_cast<char*>(out);
    bz_.avail_out = static_cast<unsigned>(n);
    while (bz_.avail_out > 0) {
      if (bz_.avail_in == 0 && !std::feof(file_)) {
        const std::size_t got = std::fread(bz_input_.data(), 1, bz_input_.size(), file_);
        bz_.next_in = bz_input_.data();
        bz_.avail_in = static_cast<unsigned>(got);
      }
      const unsigned in_before = bz_.avail_in;
      const unsigned out_before = bz_.avail_out;
      const int rc = BZ2_bzDecompress(&bz_);
      if (rc == BZ_STREAM_END) {
        // Another stream may follow (concatenated bzip2 members).
        char* rest = bz_.next_in;
        const unsigned rest_len = bz_.avail_in;
        BZ2_bzDecompressEnd(&bz_);
        bz_active_ = false;
        if (rest_len == 0 && (std::feof(file_) || peek_eof())) break;
        std::vector<char> pending(rest, rest + rest_len);
        const unsigned produced = static_cast<unsigned>(n) - bz_.avail_out;
        char* next_out = bz_.next_out;
        start_bz2();
        std::copy(pending.begin(), pending.end(), bz_input_.begin());
        bz_.next_in = bz_input_.data();
        bz_.avail_in = static_cast<unsigned>(pending.size());
        bz_.next_out = next_out;
        bz_.avail_out = static_cast<unsigned>(n) - produced;
        continue;
      }
      if (rc != BZ_OK) {
        error = "bzip2: corrupt data (error " + std::to_string(rc) + ")";
        BZ2_bzDecompressEnd(&bz_);
        bz_active_ = false;
        break;
      }
      if (bz_.avail_in == 0 && std::feof(file_) && in_before == 0 && out_before == bz_.avail_out) {
        error = "bzip2: the compressed stream ends early (truncated file)";
        BZ2_bzDecompressEnd(&bz_);
        bz_active_ = false;
        break;
      }
    }
    return n - bz_.avail_out;
  }

  std::uint64_t compressed_position() const {
    if (gz_) return static_cast<std::uint64_t>(gzoffset(gz_));
    if (file_) return static_cast<std::uint64_t>(std::ftell(file_));
    return 0;
  }

 private:
  void start_bz2() {
    std::memset(&bz_, 0, sizeof bz_);
    if (BZ2_bzDecompressInit(&bz_, 0, 0) != BZ_OK) {
      throw std::system_error(ENOMEM, std::generic_category(), "bzip2: cannot initialise");
    }
    bz_active_ = true;
  }
  bool peek_eof() {
    const int c = std::fgetc(file_);
    if (c == EOF) return true;
    std::ungetc(c, file_);
    return false;
  }

  std::string path_;
  gzFile gz_ = nullptr;
  std::FILE* file_ = nullptr;
  bz_stream bz_{};
  bool bz_active_ = false;
  std::vector<char> bz_input_;
};

MrtReader::MrtReader(const std::string& path)
    : source_(std::make_unique<Source>(path)), buffer_(kChunk) {}

MrtReader::~MrtReader() = default;

std::uint64_t MrtReader::compressed_bytes_read() const noexcept {
  return source_->compressed_position();
}

bool MrtReader::fill(std::size_t want) {
  while (end_ - begin_ < want) {
    if (eof_) return false;
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buffer_.size() < want) buffer_.resize(want + kChunk);
    if (buffer_.size() - end_ < kChunk / 4) buffer_.resize(buffer_.size() + kChunk);
    std::string error;
    const std::size_t n = source_->read(buffer_.data() + end_, buffer_.size() - end_, error);
    if (!error.empty()) warnings_.push_back(error);
    if (n == 0) {
      eof_ = true;
      return end_ - begin_ >= want;
    }
    end_ += n;
  }
  return true;
}

bool MrtReader::next(MrtRecord& record) {
  if (!fill(12)) {
    if (end_ > begin_) {
      warnings_.push_back("offset " + std::to_string(consumed_) + ": truncated record header (" +
                          std::to_string(end_ - begin_) + " bytes at the end of the stream)");
      begin_ = end_;
    }
    return false;
  }
  const std::uint8_t* h = buffer_.data() + begin_;
  const std::uint32_t length = be32(h + 8);
  if (length > kMaxRecordBytes) {
    warnings_.push_back("offset " + std::to_string(consumed_) + ": record length " +
                        std::to_string(length) + " is not plausible; stopping (the next header cannot be found)");
    eof_ = true;
    begin_ = end_;
    return false;
  }
  if (!fill(12 + std::size_t{length})) {
    warnings_.push_back("offset " + std::to_string(consumed_) + ": truncated record: header says " +
                        std::to_string(length) + " bytes, " + std::to_string(end_ - begin_ - 12) +
                        " left");
    begin_ = end_;
    return false;
  }
  h = buffer_.data() + begin_;
  record.timestamp = be32(h);
  record.type = be16(h + 4);
  record.subtype = be16(h + 6);
  record.offset = consumed_;
  record.data = h + 12;
  record.size = length;
  record.microseconds = 0;
  if (record.type == kMrtBgp4mpEt && length >= 4) {
    record.microseconds = be32(h + 12);
    record.data += 4;
    record.size -= 4;
  }
  begin_ += 12 + length;
  consumed_ += 12 + length;
  return true;
}

}  // namespace vantage::bgp
