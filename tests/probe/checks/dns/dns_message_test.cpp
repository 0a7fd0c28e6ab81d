#include "probe/checks/dns/dns_message.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

using namespace vantage::probe::checks::dns;

namespace {

// Builds DNS messages byte by byte (RFC 1035 §4.1).
struct Builder {
  std::vector<std::uint8_t> b;
  void u16(unsigned v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
  }
  void u32(unsigned v) {
    u16(v >> 16);
    u16(v & 0xFFFF);
  }
  void name(const std::string& dotted) {
    std::size_t start = 0;
    while (start < dotted.size()) {
      auto dot = dotted.find('.', start);
      if (dot == std::string::npos) dot = dotted.size();
      b.push_back(static_cast<std::uint8_t>(dot - start));
      for (std::size_t i = start; i < dot; ++i) b.push_back(static_cast<std::uint8_t>(dotted[i]));
      start = dot + 1;
    }
    b.push_back(0);
  }
  void pointer(unsigned offset) { u16(0xC000 | offset); }
  void header(unsigned flags, unsigned qd, unsigned an, unsigned ns, unsigned ar) {
    u16(0x1234);
    u16(flags);
    u16(qd);
    u16(an);
    u16(ns);
    u16(ar);
  }
};

}  // namespace

TEST_CASE("an A answer with a compressed owner name parses", "[probe][dns]") {
  Builder m;
  m.header(0x8180, 1, 2, 0, 0);  // response, RD, RA, NOERROR
  m.name("shop.example.com");    // at offset 12
  m.u16(1);
  m.u16(1);
  for (unsigned ip : {0xC0000201u, 0xC0000202u}) {
    m.pointer(12);
    m.u16(1);
    m.u16(1);
    m.u32(300);
    m.u16(4);
    m.u32(ip);
  }
  std::string error;
  const auto msg = parse_dns_message(m.b, error);
  INFO(error);
  REQUIRE(msg);
  CHECK(msg->rcode == 0);
  CHECK(msg->response);
  CHECK(msg->recursion_available);
  CHECK(msg->question_name == "shop.example.com.");
  REQUIRE(msg->answers.size() == 2);
  CHECK(msg->answers[0].name == "shop.example.com.");
  CHECK(msg->answers[0].type == "A");
  CHECK(msg->answers[0].ttl == 300);
  CHECK(msg->answers[0].data == "192.0.2.1");
  CHECK(msg->answers[1].data == "192.0.2.2");
}

TEST_CASE("NXDOMAIN, MX, TXT, AAAA, CNAME and SOA records read in presentation form",
          "[probe][dns]") {
  Builder m;
  m.header(0x8183, 1, 5, 1, 0);  // NXDOMAIN
  m.name("example.com");
  m.u16(15);
  m.u16(1);
  // MX 10 mail.example.com.
  m.pointer(12);
  m.u16(15);
  m.u16(1);
  m.u32(60);
  m.u16(2 + 5 + 2);
  m.u16(10);
  m.b.push_back(4);
  for (char c : std::string("mail")) m.b.push_back(static_cast<std::uint8_t>(c));
  m.pointer(12);
  // TXT "v=spf1 -all" "x\"y"
  m.pointer(12);
  m.u16(16);
  m.u16(1);
  m.u32(60);
  m.u16(1 + 11 + 1 + 3);
  m.b.push_back(11);
  for (char c : std::string("v=spf1 -all")) m.b.push_back(static_cast<std::uint8_t>(c));
  m.b.push_back(3);
  m.b.push_back('x');
  m.b.push_back('"');
  m.b.push_back('y');
  // AAAA 2001:db8::1
  m.pointer(12);
  m.u16(28);
  m.u16(1);
  m.u32(60);
  m.u16(16);
  m.u16(0x2001);
  m.u16(0x0db8);
  for (int i = 0; i < 5; ++i) m.u16(0);
  m.u16(1);
  // CNAME www -> example.com
  m.pointer(12);
  m.u16(5);
  m.u16(1);
  m.u32(60);
  m.u16(2);
  m.pointer(12);
  // unknown type 99
  m.pointer(12);
  m.u16(99);
  m.u16(1);
  m.u32(1);
  m.u16(2);
  m.u16(0xABCD);
  // authority SOA
  m.pointer(12);
  m.u16(6);
  m.u16(1);
  m.u32(3600);
  const std::size_t len_at = m.b.size();
  m.u16(0);
  const std::size_t start = m.b.size();
  m.b.push_back(2);
  m.b.push_back('n');
  m.b.push_back('s');
  m.pointer(12);
  m.b.push_back(4);
  for (char c : std::string("host")) m.b.push_back(static_cast<std::uint8_t>(c));
  m.pointer(12);
  for (unsigned v : {2024010101u, 7200u, 900u, 1209600u, 300u}) m.u32(v);
  const auto rdlen = m.b.size() - start;
  m.b[len_at] = static_cast<std::uint8_t>(rdlen >> 8);
  m.b[len_at + 1] = static_cast<std::uint8_t>(rdlen);

  std::string error;
  const auto msg = parse_dns_message(m.b, error);
  INFO(error);
  REQUIRE(msg);
  CHECK(msg->rcode == 3);
  CHECK(dns_rcode_name(msg->rcode) == "NXDOMAIN");
  REQUIRE(msg->answers.size() == 5);
  CHECK(msg->answers[0].data == "10 mail.example.com.");
  CHECK(msg->answers[1].data == "\"v=spf1 -all\" \"x\\\"y\"");
  CHECK(msg->answers[2].data == "2001:db8::1");
  CHECK(msg->answers[3].data == "example.com.");
  CHECK(msg->answers[4].type == "TYPE99");
  CHECK(msg->answers[4].data == "\\# 2 abcd");
  REQUIRE(msg->authority.size() == 1);
  CHECK(msg->authority[0].data ==
        "ns.example.com. host.example.com. 2024010101 7200 900 1209600 300");
}

TEST_CASE("malformed messages are errors, never crashes", "[probe][dns]") {
  std::string error;
  CHECK_FALSE(parse_dns_message(std::vector<std::uint8_t>{0x12, 0x34}, error));
  CHECK(error == "message shorter than the 12-byte header");

  Builder loop;  // a compression pointer that points at itself
  loop.header(0x8180, 1, 0, 0, 0);
  loop.pointer(12);
  loop.u16(1);
  loop.u16(1);
  CHECK_FALSE(parse_dns_message(loop.b, error));

  Builder truncated;
  truncated.header(0x8180, 1, 1, 0, 0);
  truncated.name("a.example");
  truncated.u16(1);
  truncated.u16(1);
  truncated.pointer(12);
  truncated.u16(1);
  truncated.u16(1);
  truncated.u32(5);
  truncated.u16(4);
  truncated.u16(0xC000);  // only 2 of 4 bytes
  CHECK_FALSE(parse_dns_message(truncated.b, error));
  CHECK(error == "answer 1: record data runs past the end of the message");

  Builder bad_a;
  bad_a.header(0x8180, 0, 1, 0, 0);
  bad_a.name("x");
  bad_a.u16(1);
  bad_a.u16(1);
  bad_a.u32(1);
  bad_a.u16(3);
  bad_a.b.push_back(1);
  bad_a.b.push_back(2);
  bad_a.b.push_back(3);
  CHECK_FALSE(parse_dns_message(bad_a.b, error));
  CHECK(error == "answer 1: malformed A record data");
}

TEST_CASE("type and rcode names map both ways", "[probe][dns]") {
  CHECK(*dns_type_from_name("AAAA") == 28);
  CHECK(dns_type_name(6) == "SOA");
  CHECK(*dns_rcode_from_name("SERVFAIL") == 2);
  CHECK_FALSE(dns_rcode_from_name("OOPS"));
}
