// c-ares driven by a Boost.Asio io_context.
//
// One AresChannel owns one ares_channel configured with a fixed server list (or the system's
// /etc/resolv.conf), with ARES_FLAG_NOCHECKRESP so that SERVFAIL / REFUSED answers are delivered
// as answers (without it c-ares 1.18 retries other servers and finally reports "could not contact
// DNS servers", hiding the resolver's real rcode).
//
// Rules (HOUSE-STYLE "Async"): sockets are watched with FdWatch and never owned; the timer is
// recomputed with ares_timeout() after every ares_process_fd(); query callbacks run inside c-ares
// and only copy their result and post the completion; c-ares 1.18 has no per-query cancel, so a
// cancelled operation completes at once with operation_aborted and its late answer is ignored.
#pragma once

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

struct ares_channeldata;
struct ares_addrinfo;

namespace vantage::probe::net {

class FdWatch;

struct AresOptions {
  // DNS servers as "ip", "ip:port" or "[ipv6]:port". Empty = the system's resolv.conf.
  std::vector<std::string> servers;
  // Time to wait for an answer from one server on the first try (c-ares doubles it per round).
  std::chrono::milliseconds timeout{2000};
  int tries = 2;
  // Consult /etc/hosts before DNS for address lookups (async_resolve only).
  bool use_hosts_file = true;
};

// Addresses found for a name.
struct ResolvedAddresses {
  std::vector<std::string> ipv4;  // dotted quad
  std::vector<std::string> ipv6;  // RFC 5952 text
  std::uint32_t min_ttl = 0;      // seconds (0 from /etc/hosts or literals)
};

class AresChannel {
 public:
  // Throws std::system_error (ares_category) on initialisation failure or a bad server string.
  AresChannel(boost::asio::io_context& io, AresOptions options);
  ~AresChannel();
  AresChannel(const AresChannel&) = delete;
  AresChannel& operator=(const AresChannel&) = delete;

  // Address lookup (A and/or AAAA) via ares_getaddrinfo. `family`: AF_UNSPEC, AF_INET, AF_INET6.
  // Completes with an ares_category() error (ARES_ENOTFOUND, ARES_ENODATA, ARES_ESERVFAIL,
  // ARES_EREFUSED, ARES_ETIMEOUT, ARES_ECONNREFUSED, …) or operation_aborted when cancelled.
  using ResolveSignature = void(boost::system::error_code, ResolvedAddresses);
  template <typename Token>
  auto async_resolve(std::string host, int family, Token&& token) {
    return boost::asio::async_initiate<Token, ResolveSignature>(
        [this](auto handler, std::string h, int f) {
          start_resolve(std::move(h), f,
                        boost::asio::any_completion_handler<ResolveSignature>(std::move(handler)));
        },
        token, std::move(host), family);
  }

  // Sends one query (recursion desired, no EDNS) with ares_send and completes with the raw DNS
  // response message, whatever its rcode. Errors: ARES_ETIMEOUT / ARES_ECONNREFUSED when no
  // server answered, ARES_EBADNAME for an unencodable name, operation_aborted when cancelled.
  using QuerySignature = void(boost::system::error_code, std::vector<std::uint8_t>);
  template <typename Token>
  auto async_query(std::string name, int dns_class, int dns_type, Token&& token) {
    return boost::asio::async_initiate<Token, QuerySignature>(
        [this](auto handler, std::string n, int c, int t) {
          start_query(std::move(n), c, t,
                      boost::asio::any_completion_handler<QuerySignature>(std::move(handler)));
        },
        token, std::move(name), dns_class, dns_type);
  }

  // Lookups sent over one set of (kept open) sockets before they are closed and reopened once the
  // channel is idle, so the UDP source port keeps changing (RFC 5452 §9.2) while most queries
  // skip socket set-up.
  static constexpr std::uint64_t kQueriesPerSocket = 64;

  // "system" or the configured server list, comma-separated.
  const std::string& description() const noexcept { return description_; }
  std::size_t in_flight() const noexcept { return pending_; }

 private:
  struct ResolveOp;
  struct QueryOp;
  static void sock_state_callback(void* data, int fd, int readable, int writable);
  static void resolve_callback(void* arg, int status, int timeouts, ::ares_addrinfo* result);
  static void query_callback(void* arg, int status, int timeouts, unsigned char* abuf, int alen);

  void start_resolve(std::string host, int family,
                     boost::asio::any_completion_handler<ResolveSignature> handler);
  void start_query(std::string name, int dns_class, int dns_type,
                   boost::asio::any_completion_handler<QuerySignature> handler);
  void on_socket_ready(int fd, bool readable, bool writable);
  void reschedule_timer();
  void maybe_rotate_sockets();

  boost::asio::io_context& io_;
  ares_channeldata* channel_ = nullptr;
  boost::asio::steady_timer timer_;
  std::uint64_t timer_generation_ = 0;
  bool timer_armed_ = false;
  std::uint64_t queries_on_sockets_ = 0;
  std::unordered_map<int, std::shared_ptr<FdWatch>> sockets_;
  std::string description_;
  std::size_t pending_ = 0;
  std::shared_ptr<bool> alive_;
};

// Process-wide ares_library_init(); call once before creating channels.
void ares_global_setup();

// Maps a c-ares status to its symbolic name ("ARES_ENOTFOUND").
const char* ares_status_name(int status) noexcept;

}  // namespace vantage::probe::net
