#include "beacon-collector/ingest/content_encoding.hpp"

#include <zlib.h>

#include <algorithm>

namespace vantage::collector::ingest {
namespace {

InflateStatus run(std::string_view in, int window_bits, std::uint64_t max_bytes, std::string& out,
                  std::string& error) {
  z_stream z{};
  if (inflateInit2(&z, window_bits) != Z_OK) {
    error = "zlib initialisation failed";
    return InflateStatus::malformed;
  }
  out.clear();
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  char chunk[16 * 1024];
  InflateStatus status = InflateStatus::ok;
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof chunk;
    const int rc = inflate(&z, Z_NO_FLUSH);
    const std::size_t produced = sizeof chunk - z.avail_out;
    if (out.size() + produced > max_bytes) {
      status = InflateStatus::too_large;
      break;
    }
    out.append(chunk, produced);
    if (rc == Z_STREAM_END) {
      // gzip allows several members one after another (RFC 1952 §2.2).
      if (z.avail_in > 0 && (window_bits & 16) != 0) {
        if (inflateReset(&z) != Z_OK) {
          status = InflateStatus::malformed;
          error = "bad gzip member";
          break;
        }
        continue;
      }
      if (z.avail_in > 0) {
        status = InflateStatus::malformed;
        error = "data after the end of the compressed stream";
      }
      break;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && z.avail_in == 0) {
      status = InflateStatus::malformed;
      error = "the compressed stream is truncated";
      break;
    }
    status = InflateStatus::malformed;
    error = z.msg ? z.msg : "corrupt compressed stream";
    break;
  }
  inflateEnd(&z);
  return status;
}

}  // namespace

InflateStatus inflate_body(std::string_view compressed, bool gzip, std::uint64_t max_bytes,
                           std::string& out, std::string& error) {
  if (compressed.size() > UINT32_MAX) {
    error = "body too large to inflate";
    return InflateStatus::too_large;
  }
  if (gzip) return run(compressed, 16 + MAX_WBITS, max_bytes, out, error);
  // "deflate" is the zlib format (RFC 9110 §8.4.1.2), but some senders use raw deflate: a zlib
  // stream starts with a header whose 16-bit value is a multiple of 31 and method 8.
  const bool zlib_header = compressed.size() >= 2 &&
                           (static_cast<unsigned char>(compressed[0]) & 0x0f) == 8 &&
                           ((static_cast<unsigned char>(compressed[0]) << 8) |
                            static_cast<unsigned char>(compressed[1])) %
                                   31 ==
                               0;
  if (zlib_header) {
    // A raw stream can start with bytes that pass the check by chance (about 1 in 500).
    const InflateStatus status = run(compressed, MAX_WBITS, max_bytes, out, error);
    if (status != InflateStatus::malformed) return status;
    std::string raw_error;
    const InflateStatus raw = run(compressed, -MAX_WBITS, max_bytes, out, raw_error);
    return raw == InflateStatus::malformed ? status : raw;
  }
  return run(compressed, -MAX_WBITS, max_bytes, out, error);
}

}  // namespace vantage::collector::ingest
