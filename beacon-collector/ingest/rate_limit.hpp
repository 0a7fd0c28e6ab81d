// Token buckets keyed by client address or origin (429 + Retry-After when empty).
// Thread-safe (sharded mutexes); time is passed in (steady clock, seconds) so tests need no clock.
// Memory is bounded: past `max_keys` keys per shard, buckets that have refilled are forgotten.
#pragma once

#include <array>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace vantage::collector::ingest {

class TokenBuckets {
 public:
  // `rate` tokens per second, at most `burst` stored; rate <= 0 disables the limit.
  TokenBuckets(double rate, double burst, std::size_t max_keys = 100'000);

  // Takes one token for `key` at time `now_s`. Returns 0 when allowed, else the number of whole
  // seconds (>= 1) until a token is available (the Retry-After value).
  int take(std::string_view key, double now_s);
  bool enabled() const noexcept { return rate_ > 0; }

 private:
  struct Bucket {
    double tokens;
    double updated_s;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Bucket> buckets;
  };
  double rate_, burst_;
  std::size_t max_keys_per_shard_;
  std::array<Shard, 16> shards_;
};

}  // namespace vantage::collector::ingest
