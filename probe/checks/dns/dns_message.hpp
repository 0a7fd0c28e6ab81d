// Parses DNS response messages (RFC 1035 §4) into presentation-form records for the dns check.
// Bounds-checked throughout: a truncated or malformed message yields an error, never a crash
// (fuzzed by tests/fuzz/dns_message_fuzz.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/observation.hpp"

namespace vantage::probe::checks::dns {

struct DnsMessage {
  std::uint16_t id = 0;
  bool response = false;
  int opcode = 0;
  bool authoritative = false;
  bool truncated = false;
  bool recursion_desired = false;
  bool recursion_available = false;
  int rcode = 0;  // RFC 1035 §4.1.1 (4 bits; extended rcodes need EDNS, not requested)
  std::string question_name;
  std::uint16_t question_type = 0;
  std::vector<DnsRecord> answers;
  std::vector<DnsRecord> authority;
  int additional_count = 0;
};

// Parses a complete DNS message. On failure returns nullopt and sets `error`
// (e.g. "answer 2: record data runs past the end of the message").
std::optional<DnsMessage> parse_dns_message(std::span<const std::uint8_t> msg, std::string& error);

// "A" -> 1 etc. for the types a dns check may ask for; nullopt for others.
std::optional<std::uint16_t> dns_type_from_name(const std::string& name);
// 1 -> "A"; unknown types -> "TYPE<n>" (RFC 3597).
std::string dns_type_name(std::uint16_t type);
// 0 -> "NOERROR", 3 -> "NXDOMAIN", … ; others "RCODE<n>".
std::string dns_rcode_name(int rcode);
// "NXDOMAIN" -> 3; nullopt for an unknown name.
std::optional<int> dns_rcode_from_name(const std::string& name);

}  // namespace vantage::probe::checks::dns
