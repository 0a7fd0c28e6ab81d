#include "common/ip_prefix.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace vantage {

void IpAddr::append_to(std::string& out) const {
  char buf[INET6_ADDRSTRLEN];
  ::inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  out += buf;
}

std::string IpAddr::to_string() const {
  std::string s;
  append_to(s);
  return s;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  if (text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddr a;
  if (::inet_pton(AF_INET, buf, a.bytes.data()) == 1) return a;
  if (::inet_pton(AF_INET6, buf, a.bytes.data()) == 1) {
    a.v6 = true;
    return a;
  }
  return std::nullopt;
}

std::string IpPrefix::to_string() const {
  std::string s = addr.to_string();
  s += '/';
  s += std::to_string(length);
  return s;
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = IpAddr::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  const std::string_view len = text.substr(slash + 1);
  if (len.empty() || len.size() > 3 ||
      len.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  int bits = 0;
  for (char c : len) bits = bits * 10 + (c - '0');
  if (bits > (addr->v6 ? 128 : 32)) return std::nullopt;
  IpPrefix p{*addr, static_cast<std::uint8_t>(bits)};
  // Host bits must be zero in a prefix: refuse "192.0.2.1/24" rather than guess.
  for (int i = bits; i < (addr->v6 ? 128 : 32); ++i) {
    if (p.addr.bit(i)) return std::nullopt;
  }
  return p;
}

bool IpPrefix::contains(const IpPrefix& other) const noexcept {
  if (other.addr.v6 != addr.v6 || other.length < length) return false;
  const int full = length / 8;
  if (std::memcmp(addr.bytes.data(), other.addr.bytes.data(), static_cast<std::size_t>(full)) !=
      0) {
    return false;
  }
  const int rest = length % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
  return (addr.bytes[static_cast<std::size_t>(full)] & mask) ==
         (other.addr.bytes[static_cast<std::size_t>(full)] & mask);
}

}  // namespace vantage
