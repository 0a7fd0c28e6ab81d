#include "probe/checks/dns/dns_message.hpp"

#include <arpa/inet.h>

#include <array>
#include <cstdio>
#include <utility>

namespace vantage::probe::checks::dns {
namespace {

constexpr std::array<std::pair<std::uint16_t, const char*>, 11> kTypes{{
    {1, "A"},
    {2, "NS"},
    {5, "CNAME"},
    {6, "SOA"},
    {12, "PTR"},
    {15, "MX"},
    {16, "TXT"},
    {28, "AAAA"},
    {33, "SRV"},
    {65, "HTTPS"},
    {257, "CAA"},
}};

constexpr std::array<std::pair<int, const char*>, 11> kRcodes{{
    {0, "NOERROR"},
    {1, "FORMERR"},
    {2, "SERVFAIL"},
    {3, "NXDOMAIN"},
    {4, "NOTIMP"},
    {5, "REFUSED"},
    {6, "YXDOMAIN"},
    {7, "YXRRSET"},
    {8, "NXRRSET"},
    {9, "NOTAUTH"},
    {10, "NOTZONE"},
}};

class Cursor {
 public:
  explicit Cursor(std::span<const std::uint8_t> m) : m_(m) {}
  bool u8(std::uint8_t& v) {
    if (pos_ + 1 > m_.size()) return false;
    v = m_[pos_++];
    return true;
  }
  bool u16(std::uint16_t& v) {
    if (pos_ + 2 > m_.size()) return false;
    v = static_cast<std::uint16_t>(m_[pos_] << 8 | m_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (pos_ + 4 > m_.size()) return false;
    v = std::uint32_t{m_[pos_]} << 24 | std::uint32_t{m_[pos_ + 1]} << 16 |
        std::uint32_t{m_[pos_ + 2]} << 8 | m_[pos_ + 3];
    pos_ += 4;
    return true;
  }
  // Reads a possibly compressed domain name (RFC 1035 §4.1.4) starting at the cursor.
  bool name(std::string& out) {
    std::size_t end = 0;
    if (!name_at(pos_, out, end)) return false;
    pos_ = end;
    return true;
  }
  // Reads a name at an absolute offset; `end` is where the name ends in the original place.
  bool name_at(std::size_t at, std::string& out, std::size_t& end) const {
    out.clear();
    std::size_t p = at;
    bool jumped = false;
    int jumps = 0;
    std::size_t total = 0;
    for (;;) {
      if (p >= m_.size()) return false;
      const std::uint8_t len = m_[p];
      if ((len & 0xC0) == 0xC0) {
        if (p + 1 >= m_.size() || ++jumps > 64) return false;  // loop guard
        const std::size_t target = static_cast<std::size_t>((len & 0x3F) << 8 | m_[p + 1]);
        if (!jumped) end = p + 2;
        jumped = true;
        if (target >= m_.size()) return false;
        p = target;
        continue;
      }
      if ((len & 0xC0) != 0) return false;  // 0x40 / 0x80 label types are obsolete
      if (len == 0) {
        if (!jumped) end = p + 1;
        if (out.empty()) out = ".";
        return true;
      }
      if (p + 1 + len > m_.size()) return false;
      total += len + 1;
      if (total > 255) return false;
      for (std::size_t i = 0; i < len; ++i) {
        const char c = static_cast<char>(m_[p + 1 + i]);
        if (c == '.' || c == '\\') {
          out += '\\';
          out += c;
        } else if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7E) {
          char buf[5];
          std::snprintf(buf, sizeof buf, "\\%03u",
                        static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
      }
      out += '.';
      p += 1 + len;
    }
  }
  std::size_t pos() const { return pos_; }
  void skip(std::size_t n) { pos_ += n; }
  std::size_t size() const { return m_.size(); }
  std::span<const std::uint8_t> bytes() const { return m_; }

 private:
  std::span<const std::uint8_t> m_;
  std::size_t pos_ = 0;
};

std::string quoted(std::span<const std::uint8_t> s) {
  std::string out = "\"";
  for (std::uint8_t c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c > 0x7E) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\%03u", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// Presentation form of RDATA (RFC 1035 §3.3, RFC 3596, RFC 3597 for the rest).
bool rdata_text(const Cursor& c, std::uint16_t type, std::size_t start, std::size_t len,
                std::string& out) {
  const auto m = c.bytes();
  const std::size_t stop = start + len;
  std::size_t end = 0;
  switch (type) {
    case 1: {  // A
      if (len != 4) return false;
      char buf[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, m.data() + start, buf, sizeof buf);
      out = buf;
      return true;
    }
    case 28: {  // AAAA
      if (len != 16) return false;
      char buf[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, m.data() + start, buf, sizeof buf);
      out = buf;
      return true;
    }
    case 2:
    case 5:
    case 12: {  // NS, CNAME, PTR
      if (!c.name_at(start, out, end) || end > stop) return false;
      return true;
    }
    case 15: {  // MX
      if (len < 3) return false;
      const unsigned pref = static_cast<unsigned>(m[start] << 8 | m[start + 1]);
      std::string exchange;
      if (!c.name_at(start + 2, exchange, end) || end > stop) return false;
      out = std::to_string(pref) + " " + exchange;
      return true;
    }
    case 16: {  // TXT: one or more <character-string>s
      std::size_t p = start;
      out.clear();
      while (p < stop) {
        const std::size_t n = m[p];
        if (p + 1 + n > stop) return false;
        if (!out.empty()) out += ' ';
        out += quoted(m.subspan(p + 1, n));
        p += 1 + n;
      }
      return true;
    }
    case 6: {  // SOA
      std::string mname, rname;
      if (!c.name_at(start, mname, end) || end > stop) return false;
      if (!c.name_at(end, rname, end) || end + 20 != stop) return false;
      std::uint32_t v[5];
      for (int i = 0; i < 5; ++i) {
        const std::size_t p = end + 4 * static_cast<std::size_t>(i);
        v[i] = std::uint32_t{m[p]} << 24 | std::uint32_t{m[p + 1]} << 16 |
               std::uint32_t{m[p + 2]} << 8 | m[p + 3];
      }
      out = mname + " " + rname;
      for (auto x : v) out += " " + std::to_string(x);
      return true;
    }
    default: {  // RFC 3597 generic form
      out = "\\# " + std::to_string(len);
      if (len) out += ' ';
      static const char* hex = "0123456789abcdef";
      for (std::size_t i = start; i < stop; ++i) {
        out += hex[m[i] >> 4];
        out += hex[m[i] & 15];
      }
      return true;
    }
  }
}

bool read_records(Cursor& c, int count, const char* section, std::vector<DnsRecord>* out,
                  std::string& error) {
  for (int i = 0; i < count; ++i) {
    const std::string where = std::string(section) + " " + std::to_string(i + 1) + ": ";
    DnsRecord rr;
    std::uint16_t type = 0, klass = 0, rdlen = 0;
    std::uint32_t ttl = 0;
    if (!c.name(rr.name)) {
      error = where + "malformed owner name";
      return false;
    }
    if (!c.u16(type) || !c.u16(klass) || !c.u32(ttl) || !c.u16(rdlen)) {
      error = where + "record header runs past the end of the message";
      return false;
    }
    if (c.pos() + rdlen > c.size()) {
      error = where + "record data runs past the end of the message";
      return false;
    }
    if (out) {
      rr.type = dns_type_name(type);
      rr.ttl = ttl;
      if (!rdata_text(c, type, c.pos(), rdlen, rr.data)) {
        error = where + "malformed " + rr.type + " record data";
        return false;
      }
      out->push_back(std::move(rr));
    }
    c.skip(rdlen);
  }
  return true;
}

}  // namespace

std::optional<DnsMessage> parse_dns_message(std::span<const std::uint8_t> msg, std::string& error) {
  Cursor c(msg);
  DnsMessage m;
  std::uint16_t flags = 0, qd = 0, an = 0, ns = 0, ar = 0;
  if (!c.u16(m.id) || !c.u16(flags) || !c.u16(qd) || !c.u16(an) || !c.u16(ns) || !c.u16(ar)) {
    error = "message shorter than the 12-byte header";
    return std::nullopt;
  }
  m.response = flags & 0x8000;
  m.opcode = (flags >> 11) & 0xF;
  m.authoritative = flags & 0x0400;
  m.truncated = flags & 0x0200;
  m.recursion_desired = flags & 0x0100;
  m.recursion_available = flags & 0x0080;
  m.rcode = flags & 0xF;
  m.additional_count = ar;
  for (int i = 0; i < qd; ++i) {
    std::string name;
    std::uint16_t type = 0, klass = 0;
    if (!c.name(name) || !c.u16(type) || !c.u16(klass)) {
      error = "question " + std::to_string(i + 1) + ": malformed";
      return std::nullopt;
    }
    if (i == 0) {
      m.question_name = std::move(name);
      m.question_type = type;
    }
  }
  // A truncated (TC) answer may end early; keep what is complete.
  if (!read_records(c, an, "answer", &m.answers, error)) {
    if (!m.truncated) return std::nullopt;
    error.clear();
    return m;
  }
  if (!read_records(c, ns, "authority", &m.authority, error)) {
    if (!m.truncated) return std::nullopt;
    error.clear();
  }
  return m;
}

std::optional<std::uint16_t> dns_type_from_name(const std::string& name) {
  for (const auto& [v, n] : kTypes) {
    if (name == n) return v;
  }
  return std::nullopt;
}

std::string dns_type_name(std::uint16_t type) {
  for (const auto& [v, n] : kTypes) {
    if (v == type) return n;
  }
  return "TYPE" + std::to_string(type);
}

std::string dns_rcode_name(int rcode) {
  for (const auto& [v, n] : kRcodes) {
    if (v == rcode) return n;
  }
  return "RCODE" + std::to_string(rcode);
}

std::optional<int> dns_rcode_from_name(const std::string& name) {
  for (const auto& [v, n] : kRcodes) {
    if (name == n) return v;
  }
  return std::nullopt;
}

}  // namespace vantage::probe::checks::dns
