#include "probe/checks/dns/dns_check.hpp"

#include <ares.h>
#include <arpa/inet.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>
#include <set>

#include "common/config_node.hpp"
#include "probe/async_util.hpp"
#include "probe/checks/common_config.hpp"
#include "probe/checks/dns/dns_message.hpp"
#include "probe/net/ares_channel.hpp"
#include "probe/net/failure_mapping.hpp"
#include "probe/resolver_pool.hpp"

namespace vantage::probe::checks::dns {

namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

std::optional<IpPrefix> IpPrefix::parse(const std::string& text) {
  IpPrefix p;
  p.text = text;
  const auto slash = text.find('/');
  const std::string addr = text.substr(0, slash);
  if (inet_pton(AF_INET, addr.c_str(), p.bytes.data()) == 1) {
    p.v6 = false;
    p.length = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), p.bytes.data()) == 1) {
    p.v6 = true;
    p.length = 128;
  } else {
    return std::nullopt;
  }
  if (slash != std::string::npos) {
    const std::string len = text.substr(slash + 1);
    if (len.empty() || len.size() > 3 || len.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
    const int l = std::stoi(len);
    if (l > p.length) return std::nullopt;
    p.length = l;
  }
  return p;
}

bool IpPrefix::contains(const std::string& address) const {
  std::uint8_t a[16] = {};
  if (inet_pton(v6 ? AF_INET6 : AF_INET, address.c_str(), a) != 1) return false;
  const int full = length / 8;
  if (std::memcmp(a, bytes.data(), static_cast<std::size_t>(full)) != 0) return false;
  const int rest = length % 8;
  if (rest == 0) return true;
  const std::uint8_t mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
  return (a[full] & mask) == (bytes[full] & mask);
}

DnsConfig parse_dns_config(const ConfigNode& node) {
  expect_check_keys(node, {"name", "type", "resolvers", "expect"});
  DnsConfig c;
  const ConfigNode name = node.require("name");
  c.name = name.as_nonempty_string();
  if (c.name.size() > 253) name.fail("a DNS name has at most 253 characters");
  if (auto v = node.get("type")) {
    c.type = v->as_enum({"A", "AAAA", "CNAME", "TXT", "MX", "NS", "SOA"});
  }
  c.type_code = *dns_type_from_name(c.type);
  c.resolvers = {"system"};
  if (auto v = node.get("resolvers")) c.resolvers = parse_resolvers(*v, false);
  if (auto expect = node.get("expect")) {
    expect->expect_keys(
        {"rcode", "answers", "answers_match", "answers_within", "min_ttl", "min_answers"});
    if (auto v = expect->get("rcode")) {
      c.rcodes.clear();
      for (const auto& text : v->as_string_list(/*allow_scalar=*/true)) {
        auto code = dns_rcode_from_name(text);
        if (!code)
          v->fail("unknown rcode \"" + text + "\" (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, …)");
        c.rcodes.push_back(*code);
      }
    }
    if (auto v = expect->get("answers")) c.answers = v->as_string_list();
    if (auto v = expect->get("answers_match")) c.answers_match = Pattern::parse(*v);
    if (auto v = expect->get("answers_within")) {
      if (c.type != "A" && c.type != "AAAA") v->fail("answers_within needs type A or AAAA");
      for (const auto& item : v->items()) {
        auto p = IpPrefix::parse(item.as_string());
        if (!p) item.fail("expected a prefix such as 203.0.113.0/24 or 2001:db8::/32");
        c.answers_within.push_back(std::move(*p));
      }
    }
    if (auto v = expect->get("min_ttl")) {
      c.min_ttl = static_cast<std::uint32_t>(
          std::chrono::duration_cast<std::chrono::seconds>(
              v->as_duration(std::chrono::seconds(0), std::chrono::hours(24 * 365)))
              .count());
    }
    if (auto v = expect->get("min_answers")) c.min_answers = static_cast<int>(v->as_int(0, 1000));
  }
  return c;
}

DnsCheck::DnsCheck(CheckCommon common, DnsConfig config)
    : Check(std::move(common)), config_(std::move(config)) {}

std::string DnsCheck::describe() const {
  std::string r;
  for (const auto& s : config_.resolvers) r += (r.empty() ? "" : ",") + s;
  return config_.type + " " + config_.name + " @" + r;
}

CheckPtr make_dns_check(CheckCommon common, const ConfigNode& node) {
  return std::make_unique<DnsCheck>(std::move(common), parse_dns_config(node));
}

asio::awaitable<std::vector<CheckResult>> DnsCheck::run(RunContext& ctx) {
  if (config_.resolvers.size() == 1) {
    // (Not `vector{co_await …}`: GCC 12 miscompiles co_await inside a braced initializer.)
    std::vector<CheckResult> out;
    out.push_back(co_await query(ctx, config_.resolvers.front()));
    co_return out;
  }
  std::vector<asio::awaitable<CheckResult>> tasks;
  for (const auto& r : config_.resolvers) tasks.push_back(query(ctx, r));
  co_return co_await gather(std::move(tasks));
}

asio::awaitable<CheckResult> DnsCheck::query(RunContext& ctx, std::string resolver) {
  CheckResult r;
  r.target.host = config_.name;
  r.target.resolver = resolver;
  if (resolver != "system") {
    std::string ip = resolver;
    if (!ip.empty() && ip.front() == '[')
      ip = ip.substr(1, ip.find(']') - 1);
    else if (ip.find(':') != std::string::npos)
      ip = ip.substr(0, ip.find(':'));
    r.target.server_ip = ip;
  }
  const auto start = std::chrono::steady_clock::now();
  net::AresChannel& channel = ctx.services.resolvers.channel({resolver});
  asio::steady_timer timer(ctx.services.io);
  timer.expires_at(ctx.deadline);
  auto outcome = co_await (channel.async_query(config_.name, /*class IN*/ 1, config_.type_code,
                                               asio::as_tuple(asio::use_awaitable)) ||
                           timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  const double took = to_ms(std::chrono::steady_clock::now() - start);
  r.phases.dns = took;
  r.phases.total = took;

  auto fail = [&](FailureType type, std::string detail) {
    r.outcome.type = type;
    r.outcome.failed_at = Phase::dns;
    r.outcome.detail = std::move(detail);
  };
  if (outcome.index() == 1) {
    fail(FailureType::dns_unreachable, "no answer from " + resolver + " before the deadline");
    co_return r;
  }
  auto& [ec, response] = std::get<0>(outcome);
  if (ec) {
    const std::error_code status = ec;  // the adapter's c-ares status, unwrapped
    const auto mapped = net::map_ares_failure(status.value(), resolver);
    fail(mapped.type, mapped.detail);
    co_return r;
  }
  std::string error;
  const auto msg = parse_dns_message(response, error);
  if (!msg) {
    fail(FailureType::dns_failed, "malformed response from " + resolver + ": " + error);
    co_return r;
  }
  DnsFacts facts;
  facts.rcode = dns_rcode_name(msg->rcode);
  facts.query_name = config_.name;
  facts.query_type = config_.type;
  facts.answers = msg->answers;
  facts.authority_rrs = static_cast<int>(msg->authority.size());
  facts.additional_rrs = msg->additional_count;
  facts.authoritative = msg->authoritative;
  facts.truncated = msg->truncated;
  r.dns = facts;

  const bool rcode_ok =
      std::find(config_.rcodes.begin(), config_.rcodes.end(), msg->rcode) != config_.rcodes.end();
  std::string expected_rcodes;
  for (int c : config_.rcodes)
    expected_rcodes += (expected_rcodes.empty() ? "" : ", ") + dns_rcode_name(c);
  if (!rcode_ok && msg->rcode != 0) {
    // The resolver said the name is missing or failed: the NEL type names which.
    fail(net::map_dns_rcode(msg->rcode), facts.rcode + " from " + resolver);
  }
  record_assertion(r, "rcode", rcode_ok, expected_rcodes, facts.rcode);

  std::vector<std::string> data;
  for (const auto& rr : msg->answers) {
    if (rr.type == config_.type) data.push_back(rr.data);
  }
  std::string observed;
  for (const auto& d : data) observed += (observed.empty() ? "" : ", ") + d;
  if (observed.empty()) observed = "(none)";

  if (config_.min_answers) {
    record_assertion(r, "min_answers", static_cast<int>(data.size()) >= *config_.min_answers,
                     "at least " + std::to_string(*config_.min_answers),
                     std::to_string(data.size()));
  }
  if (config_.answers) {
    std::multiset<std::string> want(config_.answers->begin(), config_.answers->end());
    std::multiset<std::string> got(data.begin(), data.end());
    std::string expected;
    for (const auto& d : *config_.answers) expected += (expected.empty() ? "" : ", ") + d;
    record_assertion(r, "answers", want == got, expected, observed);
  }
  if (config_.answers_match) {
    bool ok = !data.empty();
    for (const auto& d : data) ok = ok && config_.answers_match->search(d);
    record_assertion(r, "answers_match", ok,
                     "every answer matches " + config_.answers_match->source(), observed);
  }
  if (!config_.answers_within.empty()) {
    bool ok = true;
    std::string outside;
    for (const auto& d : data) {
      const bool in = std::any_of(config_.answers_within.begin(), config_.answers_within.end(),
                                  [&](const IpPrefix& p) { return p.contains(d); });
      if (!in) {
        ok = false;
        outside += (outside.empty() ? "" : ", ") + d;
      }
    }
    std::string prefixes;
    for (const auto& p : config_.answers_within)
      prefixes += (prefixes.empty() ? "" : ", ") + p.text;
    record_assertion(r, "answers_within", ok, "every answer in " + prefixes,
                     ok ? observed : "outside: " + outside);
  }
  if (config_.min_ttl) {
    std::uint32_t lowest = UINT32_MAX;
    for (const auto& rr : msg->answers) lowest = std::min(lowest, rr.ttl);
    const bool ok = msg->answers.empty() || lowest >= *config_.min_ttl;
    record_assertion(r, "min_ttl", ok, std::to_string(*config_.min_ttl) + "s",
                     msg->answers.empty() ? "(no answers)" : std::to_string(lowest) + "s");
  }
  co_return r;
}

}  // namespace vantage::probe::checks::dns
