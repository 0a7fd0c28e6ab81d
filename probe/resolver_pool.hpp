// Name resolution for checks: one c-ares channel per distinct resolver list, created on first
// use, plus the deadline and failure mapping every check needs when it resolves its target.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/time.hpp"
#include "probe/net/failure_mapping.hpp"

namespace boost::asio {
class io_context;
}

namespace vantage::probe {

namespace net {
class AresChannel;
}

enum class IpFamily { any, ip4, ip6 };

struct Resolution {
  std::vector<std::string> addresses;  // IPv6 first then IPv4 for `any` (Happy Eyeballs order)
  double dns_ms = 0;                   // time spent resolving
  std::uint32_t ttl = 0;               // smallest TTL of the answers, seconds
  std::string resolver;                // "system" or the server list used
  std::optional<net::MappedFailure> failure;  // set when nothing usable was found
};

class ResolverPool {
 public:
  explicit ResolverPool(boost::asio::io_context& io);
  ~ResolverPool();

  // The channel for a resolver list ("host:port" entries; empty or ["system"] = resolv.conf).
  // Throws std::system_error for an unusable server string (validated at config load).
  net::AresChannel& channel(const std::vector<std::string>& servers);

  // Resolves `host` (an IP literal is returned as is, with dns_ms 0) before `deadline`.
  // A lookup still running at the deadline is a dns.unreachable failure.
  boost::asio::awaitable<Resolution> resolve(std::string host, IpFamily family,
                                             const std::vector<std::string>& servers,
                                             SteadyTime deadline);

  std::size_t channels() const noexcept { return channels_.size(); }

 private:
  boost::asio::io_context& io_;
  std::map<std::string, std::unique_ptr<net::AresChannel>> channels_;
};

// Checks a resolver entry ("system", "192.0.2.53", "192.0.2.53:5353", "[2001:db8::53]:53");
// returns an error message or empty.
std::string validate_resolver(const std::string& entry);

}  // namespace vantage::probe
