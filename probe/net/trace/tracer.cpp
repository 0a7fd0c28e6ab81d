#include "probe/net/trace/tracer.hpp"

#include <arpa/inet.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <tuple>

namespace vantage::probe::net::trace {

namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

// A socket fd closed on scope exit (the stream_descriptor that watches it is released first).
struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

sockaddr_storage to_sockaddr(const Address& a, std::uint16_t port, socklen_t& len) {
  sockaddr_storage ss{};
  if (a.v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    std::memcpy(&s6->sin6_addr, a.bytes.data(), 16);
    len = sizeof(sockaddr_in6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    std::memcpy(&s4->sin_addr, a.bytes.data(), 4);
    len = sizeof(sockaddr_in);
  }
  return ss;
}

Address from_sockaddr(const sockaddr_storage& ss) {
  Address a;
  if (ss.ss_family == AF_INET6) {
    a.v6 = true;
    std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, 16);
  } else {
    std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, 4);
  }
  return a;
}

std::error_code errno_code(int e = errno) { return {e, std::generic_category()}; }

// The source address the routing table picks for `destination` (a connected UDP socket sends
// nothing).
std::optional<Address> route_source(const Address& destination, std::uint16_t port,
                                    std::error_code& ec) {
  Fd s(::socket(destination.v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (s.fd < 0) {
    ec = errno_code();
    return std::nullopt;
  }
  socklen_t len = 0;
  const auto ss = to_sockaddr(destination, port == 0 ? 33434 : port, len);
  if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
    ec = errno_code();
    return std::nullopt;
  }
  sockaddr_storage local{};
  socklen_t local_len = sizeof local;
  if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
    ec = errno_code();
    return std::nullopt;
  }
  return from_sockaddr(local);
}

int open_raw(bool v6, int protocol, std::error_code& ec) {
  const int fd =
      ::socket(v6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) ec = errno_code();
  return fd;
}

// Only the ICMP types a trace reads reach the socket (less to copy on a busy host).
void filter_icmp(int fd, bool v6) {
  if (v6) {
    icmp6_filter f;
    ICMP6_FILTER_SETBLOCKALL(&f);
    ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
    ICMP6_FILTER_SETPASS(ICMP6_DST_UNREACH, &f);
    ICMP6_FILTER_SETPASS(ICMP6_TIME_EXCEEDED, &f);
    (void)::setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f);
  } else {
    icmp_filter f{};
    f.data = ~((1u << ICMP_ECHOREPLY) | (1u << ICMP_DEST_UNREACH) | (1u << ICMP_TIME_EXCEEDED));
    (void)::setsockopt(fd, SOL_RAW, ICMP_FILTER, &f, sizeof f);
  }
}

bool is_permission(const std::error_code& ec) {
  return ec.value() == EPERM || ec.value() == EACCES;
}

struct PendingHop {
  Hop hop;
  std::vector<SteadyTime> sent_at;
  SteadyTime expires{};
  int answered = 0;
};

struct AddressLess {
  bool operator()(const Address& a, const Address& b) const {
    return std::tie(a.v6, a.bytes) < std::tie(b.v6, b.bytes);
  }
};

double ms_between(SteadyTime from, SteadyTime to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

}  // namespace

std::string_view to_string(StopReason r) noexcept {
  switch (r) {
    case StopReason::reached:
      return "reached";
    case StopReason::unreachable:
      return "unreachable";
    case StopReason::loop:
      return "loop";
    case StopReason::no_reply:
      return "no_reply";
    case StopReason::max_hops:
      return "max_hops";
    case StopReason::deadline:
      return "deadline";
    case StopReason::not_permitted:
      return "not_permitted";
    case StopReason::error:
      return "error";
  }
  return "error";
}

std::optional<Address> Hop::address() const {
  for (const auto& p : probes) {
    if (p.reply) return p.reply->from;
  }
  return std::nullopt;
}

std::vector<Address> Hop::addresses() const {
  std::vector<Address> out;
  for (const auto& p : probes) {
    if (p.reply && std::find(out.begin(), out.end(), p.reply->from) == out.end()) {
      out.push_back(p.reply->from);
    }
  }
  return out;
}

int Hop::received() const {
  return static_cast<int>(std::count_if(probes.begin(), probes.end(),
                                        [](const auto& p) { return p.reply.has_value(); }));
}

double Hop::loss_percent() const {
  if (probes.empty()) return 0;
  return 100.0 * (sent() - received()) / sent();
}

std::error_code raw_socket_permission() {
  std::error_code ec;
  Fd s(open_raw(false, IPPROTO_ICMP, ec));
  return ec;
}

asio::awaitable<TraceResult> run_trace(asio::io_context& io, const Clock& clock,
                                       TraceOptions options, SteadyTime deadline) {
  TraceResult result;
  const SteadyTime started = clock.steady_now();
  const bool v6 = options.destination.v6;
  auto finish = [&](StopReason stop, std::string detail) {
    result.stop = stop;
    if (!detail.empty()) result.detail = std::move(detail);
    result.duration_ms = ms_between(started, clock.steady_now());
    return std::move(result);
  };

  Flow& flow = result.flow;
  flow.protocol = options.protocol;
  flow.destination = options.destination;
  std::random_device random;
  flow.source_port = static_cast<std::uint16_t>(33000 + random() % 32000);
  flow.destination_port = options.port;
  flow.icmp_identifier = static_cast<std::uint16_t>(random());
  std::error_code ec;
  if (options.source) {
    flow.source = *options.source;
  } else if (auto s = route_source(options.destination, options.port, ec)) {
    flow.source = *s;
  } else {
    co_return finish(StopReason::unreachable, "no route to " + to_string(options.destination) +
                                                  " from this host: " + ec.message());
  }

  // Sockets: the sending one, and the ICMP one for answers (the same for ICMP probes).
  const int icmp_protocol = v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
  const int send_protocol = options.protocol == Protocol::udp   ? int{IPPROTO_UDP}
                            : options.protocol == Protocol::tcp ? int{IPPROTO_TCP}
                                                                : icmp_protocol;
  Fd send_fd(open_raw(v6, send_protocol, ec));
  Fd icmp_fd;
  if (!ec && options.protocol != Protocol::icmp) {
    icmp_fd.fd = open_raw(v6, icmp_protocol, ec);
  }
  if (ec) {
    if (is_permission(ec)) {
      co_return finish(StopReason::not_permitted, "raw sockets need CAP_NET_RAW: " + ec.message());
    }
    co_return finish(StopReason::error, "cannot open a raw socket: " + ec.message());
  }
  const int answer_fd = options.protocol == Protocol::icmp ? send_fd.fd : icmp_fd.fd;
  filter_icmp(answer_fd, v6);
  if (options.protocol == Protocol::udp) {
    // The raw UDP socket would get a copy of every UDP datagram the host receives: keep its
    // buffer at the minimum, it is never read.
    const int small = 1;
    (void)::setsockopt(send_fd.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  }
  {
    socklen_t len = 0;
    const auto ss = to_sockaddr(flow.source, 0, len);
    if (::bind(send_fd.fd, reinterpret_cast<const sockaddr*>(&ss), len) != 0) {
      co_return finish(StopReason::error,
                       "cannot bind to " + to_string(flow.source) + ": " + errno_code().message());
    }
  }

  // Watch without owning: the descriptors are released before Fd closes them.
  asio::posix::stream_descriptor answers(io, answer_fd);
  std::optional<asio::posix::stream_descriptor> tcp_answers;
  if (options.protocol == Protocol::tcp) tcp_answers.emplace(io, send_fd.fd);
  struct Release {
    asio::posix::stream_descriptor& a;
    std::optional<asio::posix::stream_descriptor>& b;
    ~Release() {
      a.release();
      if (b) b->release();
    }
  } release{answers, tcp_answers};

  const int per_hop = std::clamp(options.probes_per_hop, 1, 10);
  const int first_ttl = std::clamp(options.first_ttl, 1, 255);
  const int max_ttl = std::clamp(options.max_ttl, first_ttl, 255);
  const int parallel = std::clamp(options.parallel_hops, 1, 32);
  std::map<int, PendingHop> pending;  // by TTL
  int next_ttl = first_ttl;
  int silent = 0;
  int last_answered = 0;
  std::map<Address, int, AddressLess> first_seen;  // address -> the first TTL it answered at

  socklen_t dest_len = 0;
  const auto dest = to_sockaddr(flow.destination, 0, dest_len);
  auto tag_of = [&](int ttl, int k) {
    return static_cast<std::uint16_t>((ttl - first_ttl) * per_hop + k + 1);
  };

  // Sends every probe of one TTL. Returns false (and sets the result) when the host itself
  // cannot send.
  std::optional<std::pair<StopReason, std::string>> send_failure;
  auto send_hop = [&](int ttl) {
    PendingHop& p = pending[ttl];
    p.hop.ttl = ttl;
    const int hops_option = ttl;
    if (v6) {
      ::setsockopt(send_fd.fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops_option, sizeof hops_option);
    } else {
      ::setsockopt(send_fd.fd, IPPROTO_IP, IP_TTL, &hops_option, sizeof hops_option);
    }
    for (int k = 0; k < per_hop; ++k) {
      const std::uint16_t tag = tag_of(ttl, k);
      const auto packet = options.protocol == Protocol::udp   ? build_udp_probe(flow, tag)
                          : options.protocol == Protocol::tcp ? build_tcp_probe(flow, tag)
                                                              : build_icmp_probe(flow, tag);
      p.hop.probes.emplace_back();
      p.sent_at.push_back(clock.steady_now());
      const auto n = ::sendto(send_fd.fd, packet.data(), packet.size(), 0,
                              reinterpret_cast<const sockaddr*>(&dest), dest_len);
      if (n < 0) {
        const int e = errno;
        if (e == ENETUNREACH || e == EHOSTUNREACH || e == EPERM || e == EACCES) {
          // The local routing table or firewall refused it: nothing left the host.
          send_failure = {e == ENETUNREACH || e == EHOSTUNREACH ? StopReason::unreachable
                                                                : StopReason::not_permitted,
                          "this host cannot send to " + to_string(flow.destination) + ": " +
                              errno_code(e).message()};
          return;
        }
        // EAGAIN, ENOBUFS: the probe is lost, like one dropped on the path.
      }
    }
    p.expires = clock.steady_now() + options.hop_timeout;
  };

  auto on_reply = [&](const Reply& reply, SteadyTime at) {
    const int index = reply.tag - 1;
    const int ttl = first_ttl + index / per_hop;
    const int k = index % per_hop;
    auto it = pending.find(ttl);
    if (it == pending.end() || k >= static_cast<int>(it->second.hop.probes.size())) return;
    auto& probe = it->second.hop.probes[static_cast<std::size_t>(k)];
    if (probe.reply) return;  // duplicate
    probe.reply = reply;
    probe.rtt_ms = ms_between(it->second.sent_at[static_cast<std::size_t>(k)], at);
    ++it->second.answered;
  };

  auto drain = [&](int fd, bool tcp_socket) {
    std::uint8_t buf[2048];
    for (;;) {
      sockaddr_storage from{};
      socklen_t from_len = sizeof from;
      const auto n =
          ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < 0) return;  // EAGAIN: drained (other errors: the next wait says so again)
      const SteadyTime at = clock.steady_now();
      if (auto r = parse_reply(flow, tcp_socket,
                               std::span<const std::uint8_t>(buf, static_cast<std::size_t>(n)),
                               from_sockaddr(from))) {
        on_reply(*r, at);
      }
    }
  };

  // Judges complete hops in TTL order; returns a stop reason when the trace ends there.
  auto judge = [&](SteadyTime now) -> std::optional<StopReason> {
    while (!pending.empty()) {
      auto it = pending.begin();
      PendingHop& p = it->second;
      const bool complete = p.answered == static_cast<int>(p.hop.probes.size()) || now >= p.expires;
      if (!complete) return std::nullopt;
      Hop hop = std::move(p.hop);
      pending.erase(it);
      result.hops.push_back(std::move(hop));
      const Hop& h = result.hops.back();
      const auto address = h.address();
      // The target answered: the trace is complete, whatever else this hop saw.
      for (const auto& probe : h.probes) {
        if (!probe.reply || !(probe.reply->from == flow.destination)) continue;
        const auto& r = *probe.reply;
        const bool target_port_unreachable =
            r.kind == ReplyKind::unreachable && r.icmp_code == (v6 ? 4 : 3);
        if (r.kind == ReplyKind::echo_reply || r.kind == ReplyKind::tcp_syn_ack ||
            r.kind == ReplyKind::tcp_reset || target_port_unreachable) {
          result.stop_ttl = h.ttl;
          result.detail =
              (r.kind == ReplyKind::unreachable ? icmp_name(v6, r.icmp_type, r.icmp_code)
                                                : std::string(to_string(r.kind))) +
              " from the target";
          return StopReason::reached;
        }
      }
      for (const auto& probe : h.probes) {
        if (probe.reply && probe.reply->kind == ReplyKind::unreachable) {
          result.stop_ttl = h.ttl;
          result.stop_reply = probe.reply;
          result.detail = icmp_name(v6, probe.reply->icmp_type, probe.reply->icmp_code) + " from " +
                          to_string(probe.reply->from);
          return StopReason::unreachable;
        }
      }
      if (!address) {
        if (++silent >= std::max(1, options.max_silent_hops)) {
          result.stop_ttl = last_answered;
          result.detail = std::to_string(silent) + " hops without an answer after " +
                          (last_answered ? "hop " + std::to_string(last_answered) : "the source");
          return StopReason::no_reply;
        }
      } else {
        silent = 0;
        last_answered = h.ttl;
        auto seen = first_seen.find(*address);
        if (seen != first_seen.end() && seen->second < h.ttl - 1) {
          const Hop& previous = result.hops[result.hops.size() - 2];
          if (previous.address() != address) {
            result.stop_ttl = h.ttl;
            result.detail = to_string(*address) + " answered at hops " +
                            std::to_string(seen->second) + " and " + std::to_string(h.ttl);
            return StopReason::loop;
          }
        }
        first_seen.emplace(*address, h.ttl);
      }
      if (h.ttl >= max_ttl) {
        result.stop_ttl = last_answered;
        result.detail = "no answer from the target within " + std::to_string(max_ttl) + " hops";
        return StopReason::max_hops;
      }
    }
    return std::nullopt;
  };

  asio::steady_timer timer(io);
  for (;;) {
    while (static_cast<int>(pending.size()) < parallel && next_ttl <= max_ttl) {
      send_hop(next_ttl++);
      if (send_failure) co_return finish(send_failure->first, send_failure->second);
    }
    drain(answer_fd, false);
    if (tcp_answers) drain(send_fd.fd, true);
    const SteadyTime now = clock.steady_now();
    if (auto stop = judge(now)) co_return finish(*stop, {});
    if (now >= deadline) {
      // The hops still waiting go in as they are.
      for (auto& [ttl, p] : pending) result.hops.push_back(std::move(p.hop));
      result.stop_ttl = last_answered;
      co_return finish(StopReason::deadline, "the run's deadline came before the trace ended");
    }
    if (pending.empty() && next_ttl <= max_ttl) continue;
    SteadyTime wake = deadline;
    for (const auto& [ttl, p] : pending) wake = std::min(wake, p.expires);
    // The clock may be a test's; the timer runs on the real one: wait the difference.
    timer.expires_after(std::max(std::chrono::nanoseconds(0), wake - now));
    if (tcp_answers) {
      co_await (answers.async_wait(asio::posix::descriptor_base::wait_read,
                                   asio::as_tuple(asio::use_awaitable)) ||
                tcp_answers->async_wait(asio::posix::descriptor_base::wait_read,
                                        asio::as_tuple(asio::use_awaitable)) ||
                timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    } else {
      co_await (answers.async_wait(asio::posix::descriptor_base::wait_read,
                                   asio::as_tuple(asio::use_awaitable)) ||
                timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    }
  }
}

}  // namespace vantage::probe::net::trace
