// BrowserRecords as bytes for the segment log (segment_log.hpp): one upload's records after
// parsing and enrichment, so that replay stores exactly what would have been stored.
//
// Layout (integers little-endian): u32 record count, then per record its fields in the order
// of record.hpp: i64 as 8 bytes, u32 as 4, double as its 8 IEEE-754 bytes, a string as u32
// length + bytes, an optional as one byte 0/1 followed by the value when 1, ua_major as i32.
// The format is private to one collector version's log: a log is read back by the build that
// wrote it or a later one that still decodes this layout (the segment magic changes with it).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "beacon-collector/store/record.hpp"

namespace vantage::collector::store {

// Appends the encoding of `records` to `out`.
void encode_reports(const std::vector<BrowserRecord>& records, std::string& out);
// Decodes what encode_reports() wrote; false (and `records` unspecified) when `bytes` is not
// exactly one such encoding.
bool decode_reports(std::string_view bytes, std::vector<BrowserRecord>& records);

}  // namespace vantage::collector::store
