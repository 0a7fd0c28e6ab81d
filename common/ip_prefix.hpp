// The one IP address and prefix type of the code base (IPv4 and IPv6, network byte order), and
// a binary trie over prefixes for longest-match and covering look-ups (route monitoring, RPKI
// route origin validation, trusted proxies). No allocation per look-up.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vantage {

struct IpAddr {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // IPv4 in the first 4 bytes
  bool operator==(const IpAddr&) const = default;
  // inet_ntop form: "192.0.2.1", "2001:db8::1".
  std::string to_string() const;
  // Appends the inet_ntop form to `out` (no allocation when `out` has room).
  void append_to(std::string& out) const;
  // "192.0.2.1", "2001:db8::1" (inet_pton); nullopt for anything else.
  static std::optional<IpAddr> parse(std::string_view text);
  // Bit `i` (0 = the most significant bit of the first byte).
  bool bit(int i) const noexcept {
    return (bytes[static_cast<std::size_t>(i / 8)] >> (7 - i % 8)) & 1u;
  }
};

struct IpPrefix {
  IpAddr addr;
  std::uint8_t length = 0;  // bits: 0-32 (IPv4), 0-128 (IPv6)
  bool operator==(const IpPrefix&) const = default;
  std::string to_string() const;  // "192.0.2.0/24"
  // "192.0.2.0/24", "2001:db8::/32"; nullopt for anything else, including set host bits
  // ("192.0.2.1/24" is refused rather than guessed at).
  static std::optional<IpPrefix> parse(std::string_view text);
  bool contains(const IpPrefix& other) const noexcept;  // other is this or more specific
  bool contains(const IpAddr& a) const noexcept {
    return contains(IpPrefix{a, a.v6 ? std::uint8_t{128} : std::uint8_t{32}});
  }
};

// Prefixes with a value each (several values may share a prefix), for
//   longest_match(p): the values of the most specific prefix that contains p (p itself or a
//                     less specific one);
//   for_each_covering(p, f): f(prefix length, value) for every prefix containing p, least
//                     specific first.
// A path-compressed binary trie per address family: a look-up costs at most one step per
// stored prefix length on the way down (≤ 33 for IPv4, ≤ 129 for IPv6), independent of how many
// prefixes are stored. Values are kept in insertion order per prefix.
template <typename T>
class PrefixTrie {
 public:
  void insert(const IpPrefix& p, T value) {
    std::uint32_t n = root(p.addr.v6);
    for (int depth = 0; depth < p.length; ++depth) {
      const int b = p.addr.bit(depth);
      if (nodes_[n].child[b] == kNone) {
        nodes_[n].child[b] = static_cast<std::uint32_t>(nodes_.size());
        nodes_.push_back(Node{});
      }
      n = nodes_[n].child[b];
    }
    if (nodes_[n].values == kNone) {
      nodes_[n].values = static_cast<std::uint32_t>(values_.size());
      values_.emplace_back();
    }
    values_[nodes_[n].values].push_back(std::move(value));
    ++size_;
  }

  // Nullptr when no stored prefix contains `p`.
  const std::vector<T>* longest_match(const IpPrefix& p) const {
    const std::vector<T>* best = nullptr;
    for_each_node(p, [&](int, const std::vector<T>& v) { best = &v; });
    return best;
  }

  template <typename F>
  void for_each_covering(const IpPrefix& p, F&& f) const {
    for_each_node(p, [&](int length, const std::vector<T>& v) {
      for (const T& x : v) f(length, x);
    });
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  struct Node {
    std::uint32_t child[2] = {kNone, kNone};
    std::uint32_t values = kNone;  // index into values_
  };

  std::uint32_t root(bool v6) {
    if (nodes_.empty()) nodes_.resize(2);  // 0: IPv4 root, 1: IPv6 root
    return v6 ? 1 : 0;
  }

  template <typename F>
  void for_each_node(const IpPrefix& p, F&& f) const {
    if (nodes_.empty()) return;
    std::uint32_t n = p.addr.v6 ? 1 : 0;
    for (int depth = 0;; ++depth) {
      if (nodes_[n].values != kNone) f(depth, values_[nodes_[n].values]);
      if (depth >= p.length) return;
      n = nodes_[n].child[p.addr.bit(depth)];
      if (n == kNone) return;
    }
  }

  std::vector<Node> nodes_;
  std::vector<std::vector<T>> values_;
  std::size_t size_ = 0;
};

}  // namespace vantage
