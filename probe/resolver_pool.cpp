#include "probe/resolver_pool.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <netdb.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "probe/net/ares_channel.hpp"
#include "probe/net/url.hpp"

namespace vantage::probe {

namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

ResolverPool::ResolverPool(asio::io_context& io) : io_(io) {}
ResolverPool::~ResolverPool() = default;

namespace {

std::string key_of(const std::vector<std::string>& servers) {
  std::string key;
  for (const auto& s : servers) {
    if (s == "system") continue;
    if (!key.empty()) key += ',';
    key += s;
  }
  return key;
}

}  // namespace

std::string validate_resolver(const std::string& entry) {
  if (entry == "system") return {};
  std::string host = entry;
  std::string port;
  if (!entry.empty() && entry.front() == '[') {
    const auto close = entry.find(']');
    if (close == std::string::npos) return "unterminated [IPv6] address";
    host = entry.substr(1, close - 1);
    if (close + 1 < entry.size()) {
      if (entry[close + 1] != ':') return "expected :port after ]";
      port = entry.substr(close + 2);
    }
    unsigned char buf[16];
    if (inet_pton(AF_INET6, host.c_str(), buf) != 1) return "not an IPv6 address: " + host;
  } else {
    const auto colon = entry.find(':');
    if (colon != std::string::npos) {
      if (entry.find(':', colon + 1) != std::string::npos) {
        return "write an IPv6 resolver as [address]:port";
      }
      host = entry.substr(0, colon);
      port = entry.substr(colon + 1);
    }
    unsigned char buf[4];
    if (inet_pton(AF_INET, host.c_str(), buf) != 1) {
      return "not an IP address: \"" + host + "\" (resolvers are given by address)";
    }
  }
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) < 1 || std::stoi(port) > 65535) {
      return "invalid port \"" + port + "\"";
    }
  }
  return {};
}

net::AresChannel& ResolverPool::channel(const std::vector<std::string>& servers) {
  const std::string key = key_of(servers);
  auto it = channels_.find(key);
  if (it == channels_.end()) {
    net::AresOptions opts;
    if (!key.empty()) {
      for (const auto& s : servers) {
        if (s != "system") opts.servers.push_back(s);
      }
      // Explicit resolvers: ask them, not /etc/hosts (the system resolver reads it, like libc).
      opts.use_hosts_file = false;
    }
    it = channels_.emplace(key, std::make_unique<net::AresChannel>(io_, std::move(opts))).first;
  }
  return *it->second;
}

asio::awaitable<Resolution> ResolverPool::resolve(std::string host, IpFamily family,
                                                  const std::vector<std::string>& servers,
                                                  SteadyTime deadline) {
  Resolution out;
  if (net::is_ip_literal(host)) {
    const bool v6 = host.find(':') != std::string::npos;
    if ((family == IpFamily::ip4 && v6) || (family == IpFamily::ip6 && !v6)) {
      out.failure = net::MappedFailure{FailureType::tcp_address_invalid, Phase::connect,
                                       "address " + host + " is not of the requested IP family"};
    } else {
      out.addresses.push_back(host);
    }
    co_return out;
  }
  net::AresChannel& ch = channel(servers);
  out.resolver = ch.description();
  const int af = family == IpFamily::ip4 ? AF_INET : family == IpFamily::ip6 ? AF_INET6 : AF_UNSPEC;
  const auto start = std::chrono::steady_clock::now();
  asio::steady_timer timer(io_);
  timer.expires_at(deadline);
  auto result = co_await (ch.async_resolve(host, af, asio::as_tuple(asio::use_awaitable)) ||
                          timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  out.dns_ms = to_ms(std::chrono::steady_clock::now() - start);
  if (result.index() == 1) {
    out.failure = net::MappedFailure{
        FailureType::dns_unreachable, Phase::dns,
        "no answer from the resolver (" + out.resolver + ") before the deadline"};
    co_return out;
  }
  auto& [ec, addrs] = std::get<0>(result);
  if (ec) {
    // The boost::system::error_code wraps the adapter's std::error_code: read the c-ares status
    // back on the std side.
    const std::error_code status = ec;
    out.failure = net::map_ares_failure(status.value(), out.resolver);
    co_return out;
  }
  out.ttl = addrs.min_ttl;
  for (auto& a : addrs.ipv6) out.addresses.push_back(std::move(a));
  for (auto& a : addrs.ipv4) out.addresses.push_back(std::move(a));
  co_return out;
}

}  // namespace vantage::probe
