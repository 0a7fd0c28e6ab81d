#include "beacon-collector/enrich/client_ip.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace vantage::collector::enrich {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool trusted_peer(const IpAddress& a, const std::vector<Cidr>& trusted) {
  return std::any_of(trusted.begin(), trusted.end(), [&](const Cidr& c) { return c.contains(a); });
}

// The `for=` value of one Forwarded element: `for=192.0.2.1`, `for="[2001:db8::1]:4711"`,
// `for=192.0.2.1:80` (with a port only when quoted, but accept both).
std::optional<IpAddress> parse_forwarded_for(std::string_view element) {
  std::size_t pos = 0;
  while (pos <= element.size()) {
    const std::size_t semi = std::min(element.find(';', pos), element.size());
    std::string_view pair = trim(element.substr(pos, semi - pos));
    pos = semi + 1;
    if (pair.size() < 4) continue;
    if (!(std::tolower(static_cast<unsigned char>(pair[0])) == 'f' &&
          std::tolower(static_cast<unsigned char>(pair[1])) == 'o' &&
          std::tolower(static_cast<unsigned char>(pair[2])) == 'r' && pair[3] == '=')) {
      continue;
    }
    std::string_view v = pair.substr(4);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (!v.empty() && v.front() == '[') {
      const auto close = v.find(']');
      if (close == std::string_view::npos) return std::nullopt;
      return IpAddress::parse(v.substr(1, close - 1));
    }
    if (std::count(v.begin(), v.end(), ':') == 1) v = v.substr(0, v.find(':'));  // v4:port
    return IpAddress::parse(v);
  }
  return std::nullopt;
}

std::vector<std::string_view> split_commas(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos <= s.size()) {
    const std::size_t comma = std::min(s.find(',', pos), s.size());
    out.push_back(trim(s.substr(pos, comma - pos)));
    pos = comma + 1;
  }
  return out;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  text = trim(text);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN + 1];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddress a;
  if (::inet_pton(AF_INET, buf, a.bytes.data()) == 1) {
    a.v4 = true;
    return a;
  }
  if (::inet_pton(AF_INET6, buf, a.bytes.data()) == 1) {
    static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.bytes.data(), kMapped, 12) == 0) {
      IpAddress m;
      std::memcpy(m.bytes.data(), a.bytes.data() + 12, 4);
      return m;
    }
    a.v4 = false;
    return a;
  }
  return std::nullopt;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  ::inet_ntop(v4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

std::string IpAddress::truncated(int v4_bits, int v6_bits) const {
  const int bits = v4 ? v4_bits : v6_bits;
  IpAddress t = *this;
  const int total = v4 ? 32 : 128;
  for (int i = bits; i < total; ++i) {
    t.bytes[static_cast<std::size_t>(i / 8)] &= static_cast<std::uint8_t>(~(0x80u >> (i % 8)));
  }
  return t.to_string() + "/" + std::to_string(bits);
}

void IpAddress::to_sockaddr(void* storage) const {
  std::memset(storage, 0, sizeof(sockaddr_storage));
  if (v4) {
    auto* sin = static_cast<sockaddr_in*>(storage);
    sin->sin_family = AF_INET;
    std::memcpy(&sin->sin_addr, bytes.data(), 4);
  } else {
    auto* sin6 = static_cast<sockaddr_in6*>(storage);
    sin6->sin6_family = AF_INET6;
    std::memcpy(&sin6->sin6_addr, bytes.data(), 16);
  }
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  text = trim(text);
  const auto slash = text.find('/');
  auto addr = IpAddress::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  Cidr c{*addr, addr->v4 ? 32 : 128};
  if (slash != std::string_view::npos) {
    const std::string_view b = text.substr(slash + 1);
    if (b.empty() || b.size() > 3 || !std::all_of(b.begin(), b.end(), ::isdigit)) {
      return std::nullopt;
    }
    c.bits = std::stoi(std::string(b));
    if (c.bits > (addr->v4 ? 32 : 128)) return std::nullopt;
  }
  return c;
}

bool Cidr::contains(const IpAddress& a) const noexcept {
  if (a.v4 != network.v4) return false;
  const int full = bits / 8;
  if (std::memcmp(a.bytes.data(), network.bytes.data(), static_cast<std::size_t>(full)) != 0) {
    return false;
  }
  const int rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFFu << (8 - rest));
  return (a.bytes[static_cast<std::size_t>(full)] & mask) ==
         (network.bytes[static_cast<std::size_t>(full)] & mask);
}

IpAddress resolve_client(const IpAddress& peer, std::string_view x_forwarded_for,
                         std::string_view forwarded, const std::vector<Cidr>& trusted) {
  if (!trusted_peer(peer, trusted)) return peer;
  std::vector<std::optional<IpAddress>> hops;
  if (!trim(forwarded).empty()) {
    for (auto element : split_commas(forwarded)) hops.push_back(parse_forwarded_for(element));
  } else if (!trim(x_forwarded_for).empty()) {
    for (auto item : split_commas(x_forwarded_for)) hops.push_back(IpAddress::parse(item));
  }
  IpAddress client = peer;
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    if (!*it) break;  // garbage (or "unknown"/obfuscated): stop at the last address we trust
    client = **it;
    if (!trusted_peer(client, trusted)) break;
  }
  return client;
}

}  // namespace vantage::collector::enrich
