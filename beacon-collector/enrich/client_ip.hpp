// Client addresses: parsing, CIDR matching, the trusted-proxy rule for X-Forwarded-For /
// Forwarded (RFC 7239), and truncation to a prefix before anything is stored.
// No I/O, no allocation on the lookup path except the returned strings.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sockaddr;

namespace vantage::collector::enrich {

// An IPv4 or IPv6 address. IPv4-mapped IPv6 (::ffff:a.b.c.d) is normalised to IPv4.
struct IpAddress {
  bool v4 = true;
  std::array<std::uint8_t, 16> bytes{};  // v4: first 4 bytes
  bool operator==(const IpAddress&) const = default;

  // "192.0.2.1", "2001:db8::1", "[2001:db8::1]", "::ffff:192.0.2.1"; nullopt otherwise.
  static std::optional<IpAddress> parse(std::string_view text);
  std::string to_string() const;
  // The address truncated to `v4_bits` / `v6_bits` in CIDR form: "192.0.2.0/24", "2001:db8::/48".
  std::string truncated(int v4_bits, int v6_bits) const;
  // Fills a sockaddr_storage-sized buffer for libmaxminddb's MMDB_lookup_sockaddr.
  void to_sockaddr(void* storage) const;
};

// "192.0.2.0/24", "2001:db8::/32", or a bare address (a /32 or /128).
struct Cidr {
  IpAddress network;
  int bits = 0;
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& a) const noexcept;
  bool operator==(const Cidr&) const = default;
};

// The client address of a request. When `peer` is in `trusted`, the forwarding headers are
// walked from the right (the address the proxy itself appended) skipping trusted proxies; the
// first untrusted address is the client. `Forwarded` (RFC 7239 §4 `for=`) wins over
// `X-Forwarded-For` when both are present. A header that does not parse leaves the last good
// address. Headers from an untrusted peer are ignored: the peer is the client.
IpAddress resolve_client(const IpAddress& peer, std::string_view x_forwarded_for,
                         std::string_view forwarded, const std::vector<Cidr>& trusted);

}  // namespace vantage::collector::enrich
