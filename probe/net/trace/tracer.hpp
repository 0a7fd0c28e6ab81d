// A Paris traceroute (probe/net/trace/packet.hpp) on the probe's Asio event loop.
//
// One trace opens its own raw sockets (CAP_NET_RAW): a sending socket of the probe's protocol
// and an ICMP (IPv4, RFC 792) or ICMPv6 (RFC 4443) socket for the routers' answers; TCP traces
// read the target's SYN-ACK or RST from the sending socket. The sockets are watched with
// posix::stream_descriptor::async_wait and read non-blocking; nothing blocks the loop.
//
// Probing: `probes_per_hop` probes per TTL, sent back to back; at most `parallel_hops` TTLs in
// flight; a hop is complete when every probe was answered or `hop_timeout` after it was sent.
// Hops are judged in TTL order, and the first of these ends the trace:
//   reached      the target answered (echo reply, SYN-ACK, RST, or its own port unreachable)
//   unreachable  a router (or the target) sent Destination Unreachable: type/code named
//   loop         a hop's address answered at an earlier, non-adjacent hop (A, B, A)
//   no_reply     `max_silent_hops` consecutive hops without any answer
//   max_hops     `max_ttl` hops without any of the above
//   deadline     the run's deadline came first
//   not_permitted / error: the raw sockets could not be opened or used
//
// Routers rate-limit ICMP errors (Linux: net.ipv4.icmp_ratelimit, 1 per second per destination
// after a burst of 6): many probes per hop or many traces a second through one router show as
// loss there, not as a fault of the path.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "common/time.hpp"
#include "probe/net/trace/packet.hpp"

namespace boost::asio {
class io_context;
}

namespace vantage::probe::net::trace {

struct TraceOptions {
  Protocol protocol = Protocol::udp;
  Address destination;
  std::uint16_t port = 33434;  // UDP and TCP destination port; kept for the whole trace
  int first_ttl = 1;           // 1..255
  int max_ttl = 30;            // first_ttl..255
  int probes_per_hop = 3;      // 1..10
  int parallel_hops = 4;       // TTLs in flight, 1..32
  int max_silent_hops = 5;     // consecutive hops without answer that end the trace, 1..255
  std::chrono::milliseconds hop_timeout{1000};  // per hop, from its probes' sending
  std::optional<Address> source;  // default: what the routing table picks for `destination`
};

enum class StopReason : std::uint8_t {
  reached,
  unreachable,
  loop,
  no_reply,
  max_hops,
  deadline,
  not_permitted,
  error,
};
std::string_view to_string(StopReason r) noexcept;

// One probe's fate.
struct ProbeResult {
  std::optional<double> rtt_ms;  // unset: no answer within the hop timeout
  std::optional<Reply> reply;
};

// One TTL.
struct Hop {
  int ttl = 0;
  std::vector<ProbeResult> probes;  // in sending order

  // The first address that answered for this TTL (nullopt: none did).
  std::optional<Address> address() const;
  // Every distinct address that answered (per-packet load balancing shows more than one).
  std::vector<Address> addresses() const;
  int sent() const { return static_cast<int>(probes.size()); }
  int received() const;
  double loss_percent() const;  // 0..100
};

struct TraceResult {
  Flow flow;              // addresses, ports, identifier the probes used
  std::vector<Hop> hops;  // first_ttl.. up to the hop where the trace stopped
  StopReason stop = StopReason::error;
  // The TTL of the hop that ended the trace (reached, unreachable, loop), or of the last hop
  // that answered (no_reply, max_hops, deadline); 0 when none.
  int stop_ttl = 0;
  std::optional<Reply> stop_reply;  // unreachable: the message that said so
  std::string detail;               // human-readable, e.g. "host_unreachable from 10.0.2.1"
  double duration_ms = 0;
};

// Runs one trace on `io`, finishing by `deadline`. Failures are results (stop = error /
// not_permitted with `detail`); only cancellation throws (operation_aborted).
boost::asio::awaitable<TraceResult> run_trace(boost::asio::io_context& io, const Clock& clock,
                                              TraceOptions options, SteadyTime deadline);

// Whether this process may open raw sockets: an empty error code, or EPERM/EACCES (no
// CAP_NET_RAW) or another socket error.
std::error_code raw_socket_permission();

}  // namespace vantage::probe::net::trace
