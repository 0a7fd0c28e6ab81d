#include "beacon-collector/ingest/rate_limit.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

namespace vantage::collector::ingest {

TokenBuckets::TokenBuckets(double rate, double burst, std::size_t max_keys)
    : rate_(rate),
      burst_(std::max(1.0, burst)),
      max_keys_per_shard_(std::max<std::size_t>(1, max_keys / 16)) {}

int TokenBuckets::take(std::string_view key, double now_s) {
  if (rate_ <= 0) return 0;
  Shard& shard = shards_[std::hash<std::string_view>{}(key) % shards_.size()];
  std::lock_guard lock(shard.mutex);
  auto it = shard.buckets.find(std::string(key));
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= max_keys_per_shard_) {
      // Forget the buckets that are full again: they carry no state worth keeping.
      std::erase_if(shard.buckets, [&](const auto& kv) {
        return kv.second.tokens + (now_s - kv.second.updated_s) * rate_ >= burst_;
      });
    }
    it = shard.buckets.emplace(std::string(key), Bucket{burst_, now_s}).first;
  }
  Bucket& b = it->second;
  b.tokens = std::min(burst_, b.tokens + std::max(0.0, now_s - b.updated_s) * rate_);
  b.updated_s = now_s;
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1 - b.tokens) / rate_)));
}

}  // namespace vantage::collector::ingest
