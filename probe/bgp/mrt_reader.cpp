#include "probe/bgp/mrt_reader.hpp"

#include <bzlib.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <system_error>

namespace vantage::bgp {

namespace {
constexpr std::size_t kChunk = 1u << 20;
constexpr std::size_t kInputChunk = 256u * 1024;

// One BGP message (RFC 8654: up to 65,535 bytes) plus the fixed fields around it in a
// BGP4MP(_ET), TABLE_DUMP or deprecated BGP record, with room to spare.
constexpr std::uint32_t kOneMessageRecordBytes = 65535 + 256;
// A resynchronisation candidate's timestamp must be this close to the last good record's:
// inside a record's bytes, four bytes that happen to look like a type, a subtype and a
// length are rare; also looking like a time of the same week makes a false match negligible.
constexpr std::uint32_t kResyncTimeWindow = 7 * 24 * 3600;

// What RFC 6396 (and RFC 6397, RFC 8050) define: the types a BGP or IGP collector writes
// today, each with its subtypes and the longest record it can need. The deprecated types 0-4
// and 6-10 (MRTd's NULL, START, …, BGP4PLUS) are not accepted: no file we know has them, and
// a run of zero bytes would otherwise read as a stream of NULL records.
struct TypeRule {
  std::uint16_t type;
  const char* name;
  std::uint16_t first_subtype, last_subtype;
  std::uint32_t max_length;
  bool knows(std::uint16_t subtype) const {
    return subtype >= first_subtype && subtype <= last_subtype;
  }
};
constexpr TypeRule kTypes[] = {
    {kMrtBgp, "BGP", 0, 7, kOneMessageRecordBytes},    // NULL .. KEEPALIVE
    {11, "OSPFv2", 0, 1, MrtReader::kMaxRecordBytes},  // STATE_CHANGE, LSA_UPDATE
    {kMrtTableDump, "TABLE_DUMP", 1, 4,
     kOneMessageRecordBytes},  // AFI_IPv4, AFI_IPv6, their AS4 forms
    {kMrtTableDumpV2, "TABLE_DUMP_V2", 1, 12,
     MrtReader::kMaxRecordBytes},  // PEER_INDEX_TABLE .. RIB_GENERIC_ADDPATH
    {kMrtBgp4mp, "BGP4MP", 0, 11,
     kOneMessageRecordBytes},  // STATE_CHANGE .. MESSAGE_AS4_LOCAL_ADDPATH
    {kMrtBgp4mpEt, "BGP4MP_ET", 0, 11, kOneMessageRecordBytes},
    // The IGP types' subtypes are hardly specified; any small number is let through.
    {32, "ISIS", 0, 15, MrtReader::kMaxRecordBytes},
    {33, "ISIS_ET", 0, 15, MrtReader::kMaxRecordBytes},
    {48, "OSPFv3", 0, 15, MrtReader::kMaxRecordBytes},
    {49, "OSPFv3_ET", 0, 15, MrtReader::kMaxRecordBytes},
};

const TypeRule* type_rule(std::uint16_t type) {
  for (const auto& rule : kTypes) {
    if (rule.type == type) return &rule;
  }
  return nullptr;
}

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}
std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::string bytes(std::uint64_t n) { return std::to_string(n) + (n == 1 ? " byte" : " bytes"); }

// The length a record's own fields give it, for the types whose fields give one: a BGP4MP
// message (its BGP header's length) or state change (its address family), a TABLE_DUMP entry
// (its attribute length), a TABLE_DUMP_V2 RIB (its entries). `n`: the bytes after the MRT
// header that are at hand, which may be more or fewer than the header says. 0 when the fields
// do not say or are not all at hand. Every record of every MRT file in tests/data and
// ../shared/data has exactly the length its fields give; a damaged length field does not, even
// one that happens to point at a later record's header (which would otherwise swallow the
// records in between without a word).
std::size_t content_length(std::uint16_t type, std::uint16_t subtype, const std::uint8_t* p,
                           std::size_t n) {
  if (type == kMrtBgp4mp || type == kMrtBgp4mpEt) {
    const std::size_t et = type == kMrtBgp4mpEt ? 4 : 0;  // microseconds
    // STATE_CHANGE(_AS4), MESSAGE(_AS4) and their LOCAL and ADD-PATH forms (not ENTRY, SNAPSHOT).
    if (subtype == 2 || subtype == 3) return 0;
    const bool as4 = subtype == 4 || subtype == 5 || subtype == 7 || subtype == 9 || subtype == 11;
    const std::size_t as_len = as4 ? 4 : 2;
    if (n < et + 2 * as_len + 4) return 0;
    const std::uint16_t afi = be16(p + et + 2 * as_len + 2);
    if (afi != 1 && afi != 2) return 0;
    const std::size_t head = et + 2 * as_len + 4 + 2 * (afi == 2 ? 16 : 4);
    if (subtype == 0 || subtype == 5) return head + 4;  // old and new state
    if (n < head + 19) return 0;
    for (std::size_t i = 0; i < 16; ++i) {
      if (p[head + i] != 0xff) return 0;  // no BGP marker: the decoders report that
    }
    return head + be16(p + head + 16);
  }
  if (type == kMrtTableDump && subtype >= 1 && subtype <= 4) {
    const std::size_t address = subtype == 2 || subtype == 4 ? 16 : 4;
    const std::size_t fixed = 4 + address + 2 + 4 + address + (subtype >= 3 ? 4 : 2) + 2;
    return n < fixed ? 0 : fixed + be16(p + fixed - 2);
  }
  if (type == kMrtTableDumpV2 && (subtype == 2 || subtype == 4 || subtype == 8 || subtype == 10)) {
    if (n < 5) return 0;
    std::size_t i = 5 + (std::size_t{p[4]} + 7) / 8;
    if (n < i + 2) return 0;
    const std::size_t entries = be16(p + i);
    const std::size_t head =
        subtype >= 8 ? 12 : 8;  // peer index, time, [path id,] attribute length
    i += 2;
    for (std::size_t e = 0; e < entries; ++e) {
      if (n < i + head) return 0;
      i += head + be16(p + i + head - 2);
    }
    return i;
  }
  return 0;
}
}  // namespace

// A decompressing byte source over one file: gzip through zlib's inflate() with its gzip
// wrapper (which checks each member's CRC-32 and length), bzip2 through libbz2's low-level
// API, or plain bytes, picked by the magic bytes. Not gzread(): it ends a cut member like a
// complete one, without an error. Concatenated members are read on, as gzip(1) and bzip2(1)
// do. Whatever stops the stream early is reported once, with the compressed byte position.
class MrtReader::Source {
 public:
  enum class Kind { plain, gzip, bzip2 };

  explicit Source(const std::string& path) : input_(kInputChunk) {
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_)
      throw std::system_error(errno, std::generic_category(), "cannot open \"" + path + "\"");
    want_input(3);
    if (in_avail_ >= 2 && in_next_[0] == 0x1f && in_next_[1] == 0x8b) {
      kind_ = Kind::gzip;
      if (inflateInit2(&zlib_, 16 + MAX_WBITS) != Z_OK) {
        std::fclose(file_);
        throw std::system_error(ENOMEM, std::generic_category(), "gzip: cannot initialise");
      }
      zlib_active_ = true;
    } else if (in_avail_ >= 3 && std::memcmp(in_next_, "BZh", 3) == 0) {
      kind_ = Kind::bzip2;
      if (BZ2_bzDecompressInit(&bzip2_, 0, 0) != BZ_OK) {
        std::fclose(file_);
        throw std::system_error(ENOMEM, std::generic_category(), "bzip2: cannot initialise");
      }
      bzip2_active_ = true;
    }
  }
  ~Source() {
    if (zlib_active_) inflateEnd(&zlib_);
    if (bzip2_active_) BZ2_bzDecompressEnd(&bzip2_);
    std::fclose(file_);
  }
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  // Reads up to `n` bytes; 0 at the end. Damage that ends the stream sets `error` (once).
  std::size_t read(std::uint8_t* out, std::size_t n, std::string& error) {
    if (done_) return 0;
    n = std::min<std::size_t>(n, UINT_MAX);
    switch (kind_) {
      case Kind::plain:
        return read_plain(out, n, error);
      case Kind::gzip:
        return read_gzip(out, n, error);
      case Kind::bzip2:
        return read_bzip2(out, n, error);
    }
    return 0;
  }

  // Compressed bytes consumed so far (the file position for plain files).
  std::uint64_t position() const { return file_bytes_ - in_avail_; }
  bool damaged() const { return damaged_; }

 private:
  // Makes at least `n` input bytes available in in_next_ unless the file ends first.
  void want_input(std::size_t n) {
    if (in_avail_ >= n || in_eof_) return;
    if (in_avail_ > 0) std::memmove(input_.data(), in_next_, in_avail_);
    in_next_ = input_.data();
    while (in_avail_ < n && !in_eof_) {
      const std::size_t got =
          std::fread(input_.data() + in_avail_, 1, input_.size() - in_avail_, file_);
      if (got == 0) {
        in_eof_ = true;
        if (std::ferror(file_)) read_errno_ = errno ? errno : EIO;
      }
      in_avail_ += got;
      file_bytes_ += got;
    }
  }

  void fail(std::string what, std::string& error) {
    error = std::move(what);
    damaged_ = true;
    done_ = true;
  }
  // A read error is reported where the bytes stop.
  bool read_failed(std::string& error) {
    if (!read_errno_) return false;
    fail("read error at compressed byte " + std::to_string(position()) + ": " +
             std::strerror(read_errno_),
         error);
    return true;
  }

  std::size_t read_plain(std::uint8_t* out, std::size_t n, std::string& error) {
    std::size_t produced = 0;
    while (produced < n) {
      if (in_avail_ == 0) {
        want_input(1);
        if (in_avail_ == 0) {
          if (!read_failed(error)) done_ = true;
          break;
        }
      }
      const std::size_t take = std::min(in_avail_, n - produced);
      std::memcpy(out + produced, in_next_, take);
      in_next_ += take;
      in_avail_ -= take;
      produced += take;
    }
    return produced;
  }

  // After the end of a member: another member, the end of the file, or bytes that are not one.
  // Returns true when another member starts.
  bool next_member(const char* format, const unsigned char* magic, std::size_t magic_len,
                   std::string& error) {
    want_input(magic_len);
    if (in_avail_ == 0) {
      if (!read_failed(error)) done_ = true;
      return false;
    }
    if (in_avail_ >= magic_len && std::memcmp(in_next_, magic, magic_len) == 0) return true;
    if (in_eof_ && in_avail_ < magic_len && std::memcmp(in_next_, magic, in_avail_) == 0) {
      // The start of another member, cut within its magic bytes.
      fail(std::string(format) + " stream truncated at compressed byte " +
               std::to_string(file_bytes_),
           error);
      return false;
    }
    const std::uint64_t at = position();
    while (!in_eof_) {  // count what follows, to say how much is ignored
      in_avail_ = 0;
      want_input(1);
    }
    fail(std::string(format) + ": " + bytes(file_bytes_ - at) + " after the end of the " + format +
             " data at compressed byte " + std::to_string(at) + " are not a " + format +
             " stream (ignored)",
         error);
    return false;
  }

  std::size_t read_gzip(std::uint8_t* out, std::size_t n, std::string& error) {
    static constexpr unsigned char kMagic[] = {0x1f, 0x8b};
    std::size_t produced = 0;
    while (produced < n && !done_) {
      if (in_avail_ == 0) want_input(1);
      if (in_avail_ == 0 && read_failed(error)) break;
      zlib_.next_in = const_cast<Bytef*>(in_next_);
      zlib_.avail_in = static_cast<uInt>(std::min<std::size_t>(in_avail_, UINT_MAX));
      zlib_.next_out = out + produced;
      zlib_.avail_out = static_cast<uInt>(n - produced);
      const uInt avail_in = zlib_.avail_in;
      const int rc = inflate(&zlib_, Z_NO_FLUSH);
      in_next_ += avail_in - zlib_.avail_in;
      in_avail_ -= avail_in - zlib_.avail_in;
      produced = n - zlib_.avail_out;
      if (rc == Z_STREAM_END) {
        // zlib has checked the member's CRC-32 and length (window bits 16 + MAX_WBITS).
        if (next_member("gzip", kMagic, sizeof kMagic, error)) inflateReset(&zlib_);
        continue;
      }
      if (rc == Z_OK) continue;
      if (rc == Z_BUF_ERROR) {  // no progress: zlib needs input the file does not have
        if (in_avail_ == 0 && in_eof_) {
          fail("gzip stream truncated at compressed byte " + std::to_string(position()), error);
        } else if (in_avail_ > 0) {
          fail("gzip data corrupt at compressed byte " + std::to_string(position()), error);
        }
        continue;
      }
      // zlib's fixed messages for the trailer checks (inflate.c): a wrong CRC or length means
      // the member's data, already handed out, is not what was compressed.
      const std::string message = zlib_.msg ? zlib_.msg : "error " + std::to_string(rc);
      const std::string at = " at compressed byte " + std::to_string(position());
      if (message == "incorrect data check") {
        fail("gzip CRC mismatch" + at + ": the records read from this gzip member may be corrupt",
             error);
      } else if (message == "incorrect length check") {
        fail(
            "gzip length mismatch" + at + ": the records read from this gzip member may be corrupt",
            error);
      } else {
        fail("gzip data corrupt" + at + " (" + message + "); the rest of the file is not read",
             error);
      }
    }
    return produced;
  }

  std::size_t read_bzip2(std::uint8_t* out, std::size_t n, std::string& error) {
    static constexpr unsigned char kMagic[] = {'B', 'Z', 'h'};
    std::size_t produced = 0;
    while (produced < n && !done_) {
      if (in_avail_ == 0) want_input(1);
      if (in_avail_ == 0 && read_failed(error)) break;
      bzip2_.next_in = reinterpret_cast<char*>(const_cast<std::uint8_t*>(in_next_));
      bzip2_.avail_in = static_cast<unsigned>(std::min<std::size_t>(in_avail_, UINT_MAX));
      bzip2_.next_out = reinterpret_cast<char*>(out + produced);
      bzip2_.avail_out = static_cast<unsigned>(n - produced);
      const unsigned avail_in = bzip2_.avail_in;
      const int rc = BZ2_bzDecompress(&bzip2_);
      const std::size_t used = avail_in - bzip2_.avail_in;
      in_next_ += used;
      in_avail_ -= used;
      const std::size_t got = (n - produced) - bzip2_.avail_out;
      produced += got;
      if (rc == BZ_STREAM_END) {
        // libbz2 has checked every block's CRC and the stream's combined CRC.
        BZ2_bzDecompressEnd(&bzip2_);
        bzip2_active_ = false;
        if (next_member("bzip2", kMagic, sizeof kMagic, error)) {
          std::memset(&bzip2_, 0, sizeof bzip2_);
          if (BZ2_bzDecompressInit(&bzip2_, 0, 0) != BZ_OK) {
            fail("bzip2: cannot initialise", error);
          } else {
            bzip2_active_ = true;
          }
        }
        continue;
      }
      if (rc == BZ_OK) {
        if (used == 0 && got == 0) {  // no progress: the stream needs input the file does not have
          if (in_avail_ == 0 && in_eof_) {
            fail("bzip2 stream truncated at compressed byte " + std::to_string(position()), error);
          } else if (in_avail_ > 0) {
            fail("bzip2 data corrupt at compressed byte " + std::to_string(position()), error);
          }
        }
        continue;
      }
      const std::string at = " at compressed byte " + std::to_string(position());
      if (rc == BZ_DATA_ERROR) {
        // libbz2 checks a block's CRC once the block is out: what it gave may be corrupt.
        fail("bzip2 data corrupt" + at +
                 " (a block's CRC or coding does not check out): the records read from this block "
                 "may be corrupt; the rest of the file is not read",
             error);
      } else if (rc == BZ_DATA_ERROR_MAGIC) {
        fail("bzip2 data corrupt" + at + " (no stream header); the rest of the file is not read",
             error);
      } else {
        fail("bzip2 error " + std::to_string(rc) + at + "; the rest of the file is not read",
             error);
      }
    }
    return produced;
  }

  std::FILE* file_ = nullptr;
  Kind kind_ = Kind::plain;
  ByteBuffer input_;
  const std::uint8_t* in_next_ = nullptr;
  std::size_t in_avail_ = 0;
  std::uint64_t file_bytes_ = 0;  // read from the file so far
  bool in_eof_ = false;
  int read_errno_ = 0;
  bool done_ = false;
  bool damaged_ = false;
  z_stream zlib_{};
  bool zlib_active_ = false;
  bz_stream bzip2_{};
  bool bzip2_active_ = false;
};

struct MrtReader::Header {
  std::uint32_t time;
  std::uint16_t type, subtype;
  std::uint32_t length;
};

MrtReader::MrtReader(const std::string& path)
    : source_(std::make_unique<Source>(path)), buffer_(kChunk) {}

MrtReader::~MrtReader() = default;

std::uint64_t MrtReader::compressed_bytes_read() const noexcept { return source_->position(); }

bool MrtReader::stream_damaged() const noexcept { return source_->damaged(); }

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
    if (!error.empty()) warnings_.push_back(std::move(error));
    if (n == 0) {
      eof_ = true;
      return end_ - begin_ >= want;
    }
    end_ += n;
  }
  return true;
}

MrtReader::Header MrtReader::header_at(std::size_t at) const {
  const std::uint8_t* h = buffer_.data() + begin_ + at;
  return Header{be32(h), be16(h + 4), be16(h + 6), be32(h + 8)};
}

bool MrtReader::plausible(const Header& h, bool check_time) const {
  const TypeRule* rule = type_rule(h.type);
  if (!rule || !rule->knows(h.subtype) || h.length > rule->max_length) return false;
  if (check_time && have_time_) {
    const std::uint32_t distance = h.time > last_time_ ? h.time - last_time_ : last_time_ - h.time;
    if (distance > kResyncTimeWindow) return false;
  }
  return true;
}

// A plausible header at `at` whose record is followed by another plausible header, or by the
// end of the stream (within the record or the next header: a cut file).
bool MrtReader::record_chain_at(std::size_t at) {
  if (!fill(at + 12)) return false;
  const Header h = header_at(at);
  if (!plausible(h, true)) return false;
  const std::size_t next = at + 12 + h.length;
  if (!fill(next + 12)) return true;
  return plausible(header_at(next), true);
}

// The first record chain starting in [from, to) bytes after begin_, if any.
bool MrtReader::find_record(std::size_t from, std::size_t to, std::size_t& found) {
  for (std::size_t at = from; at < to; ++at) {
    if (!fill(at + 12)) return false;
    if (record_chain_at(at)) {
      found = at;
      return true;
    }
  }
  return false;
}

void MrtReader::skip(std::size_t n) {
  begin_ += n;
  consumed_ += n;
  skipped_bytes_ += n;
}

void MrtReader::damage(std::string what) {
  ++damaged_records_;
  warnings_.push_back(std::move(what));
}

// Skips from the damaged header at begin_ to the next record chain (or the end of the stream)
// and says so. Bytes already searched are dropped as the search goes on, so that the buffer
// stays small over a long damaged stretch.
void MrtReader::resynchronise(const std::string& what) {
  const std::uint64_t start = consumed_;
  std::size_t at = 1;
  for (;;) {
    std::size_t found = 0;
    const std::size_t window = at + kChunk;
    if (find_record(at, window, found)) {
      skip(found);
      damage("offset " + std::to_string(start) + ": " + what + "; skipped " +
             bytes(consumed_ - start) + " to the next record header at offset " +
             std::to_string(consumed_));
      return;
    }
    if (end_ - begin_ < window + 12 && eof_) break;  // searched to the end of the stream
    skip(window);
    at = 0;
  }
  skip(end_ - begin_);
  damage("offset " + std::to_string(start) + ": " + what +
         "; no valid record header follows: skipped the " + bytes(consumed_ - start) +
         " to the end of the stream");
}

bool MrtReader::next(MrtRecord& record) {
  for (;;) {
    if (!fill(12)) {
      if (end_ > begin_) {
        const std::size_t left = end_ - begin_;
        damage("offset " + std::to_string(consumed_) + ": truncated record header (" + bytes(left) +
               " at the end of the stream)");
        skip(left);
      }
      return false;
    }
    const Header h = header_at(0);
    const TypeRule* rule = type_rule(h.type);
    if (!rule) {
      resynchronise("unknown MRT type " + std::to_string(h.type) + " (subtype " +
                    std::to_string(h.subtype) + ", length " + std::to_string(h.length) + ")");
      continue;
    }
    auto type = [&] { return "type " + std::to_string(h.type) + " (" + rule->name + ")"; };
    if (!rule->knows(h.subtype)) {
      resynchronise("unknown subtype " + std::to_string(h.subtype) + " of " + type());
      continue;
    }
    // The record is sound when all of it is at hand, its fields end where its length says, and
    // a plausible header (or the end of the stream) follows. Otherwise, in this order: its
    // fields end where a record (or the stream) does — only the length is wrong: read it as its
    // fields say; a record starts inside it — its length is wrong: skip to that record; the
    // stream ends inside it — it is cut; else the next header is damaged, which the next call
    // finds, and this record is read as it is.
    // A length over the type's maximum is not believed at all (nor read up to: it may be 4 GiB).
    const bool over = h.length > rule->max_length;
    const std::size_t total = 12 + std::size_t{h.length};
    fill(over ? 12 + kOneMessageRecordBytes + 12 : total + 12);
    const std::size_t at_hand = end_ - begin_;
    const bool whole = !over && at_hand >= total;
    const bool next_plausible =
        whole && (at_hand < total + 12 || plausible(header_at(total), false));
    const std::size_t fields =
        content_length(h.type, h.subtype, buffer_.data() + begin_ + 12, at_hand - 12);
    std::size_t length = h.length;
    if (!next_plausible || (fields && fields != h.length)) {
      const std::uint64_t start = consumed_;
      const std::string what =
          "implausible record length " + std::to_string(h.length) + " for " + type() +
          (over ? ", at most " + std::to_string(rule->max_length) : std::string());
      const std::string claim = "offset " + std::to_string(start) + ": " + what + ": ";
      const std::size_t end = 12 + fields;
      std::size_t found = 0;
      if (fields && fields != h.length && end <= at_hand &&
          ((eof_ && end_ - begin_ == end) || record_chain_at(end))) {
        length = fields;
        damage(claim + "its fields end after " + bytes(fields) + ", where " +
               (end_ - begin_ == end ? "the stream ends" : "the next record starts") +
               "; read as " + bytes(fields));
      } else if (over) {
        resynchronise(what);
        continue;
      } else if (find_record(12, whole ? total : at_hand, found)) {
        skip(found);
        damage(claim +
               (!whole ? "the stream ends " + bytes(at_hand - 12) + " after the header"
                : next_plausible
                    ? "its fields end after " + bytes(fields)
                    : "no record header follows it at offset " + std::to_string(start + total)) +
               ", and a record starts inside it; skipped " + bytes(found) +
               " to that record at offset " + std::to_string(consumed_));
        continue;
      } else if (!whole) {
        damage("offset " + std::to_string(start) + ": truncated record: header says " +
               std::to_string(h.length) + " bytes, " + std::to_string(at_hand - 12) + " left");
        skip(end_ - begin_);
        return false;
      }
    }
    const std::uint8_t* p = buffer_.data() + begin_;
    record.timestamp = h.time;
    record.type = h.type;
    record.subtype = h.subtype;
    record.offset = consumed_;
    record.data = p + 12;
    record.size = length;
    record.microseconds = 0;
    if (record.type == kMrtBgp4mpEt && length >= 4) {
      record.microseconds = be32(p + 12);
      record.data += 4;
      record.size -= 4;
    }
    have_time_ = true;
    last_time_ = h.time;
    begin_ += 12 + length;
    consumed_ += 12 + length;
    return true;
  }
}

}  // namespace vantage::bgp
