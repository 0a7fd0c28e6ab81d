// Request body Content-Encoding (RFC 9110 §8.4.1): gzip (RFC 1952) and deflate (the zlib format,
// RFC 1950; a raw RFC 1951 stream is accepted too, as browsers do for responses), with the
// inflated size limited so that a small compressed body cannot expand without bound.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vantage::collector::ingest {

enum class InflateStatus { ok, too_large, malformed };

// Inflates `compressed` into `out` (replaced). `gzip`: RFC 1952 (one member or several);
// otherwise deflate (zlib-wrapped, or raw if the zlib header is missing). Stops as soon as the
// output would exceed `max_bytes` (too_large, `out` unspecified); malformed for a corrupt,
// truncated or trailing-garbage stream, with the zlib message in `error`.
InflateStatus inflate_body(std::string_view compressed, bool gzip, std::uint64_t max_bytes,
                           std::string& out, std::string& error);

}  // namespace vantage::collector::ingest
