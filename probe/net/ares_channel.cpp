#include "probe/net/ares_channel.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/post.hpp>
#include <mutex>
#include <system_error>

#include "common/log.hpp"
#include "probe/net/completion.hpp"
#include "probe/net/errors.hpp"
#include "probe/net/fd_watch.hpp"

namespace vantage::probe::net {

namespace asio = boost::asio;
using boost::system::error_code;

void ares_global_setup() {
  static std::once_flag once;
  std::call_once(once, [] {
    const int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) throw std::system_error(make_ares_error(rc), "ares_library_init");
  });
}

const char* ares_status_name(int status) noexcept {
  switch (status) {
    case ARES_SUCCESS:
      return "ARES_SUCCESS";
    case ARES_ENODATA:
      return "ARES_ENODATA";
    case ARES_EFORMERR:
      return "ARES_EFORMERR";
    case ARES_ESERVFAIL:
      return "ARES_ESERVFAIL";
    case ARES_ENOTFOUND:
      return "ARES_ENOTFOUND";
    case ARES_ENOTIMP:
      return "ARES_ENOTIMP";
    case ARES_EREFUSED:
      return "ARES_EREFUSED";
    case ARES_EBADQUERY:
      return "ARES_EBADQUERY";
    case ARES_EBADNAME:
      return "ARES_EBADNAME";
    case ARES_EBADFAMILY:
      return "ARES_EBADFAMILY";
    case ARES_EBADRESP:
      return "ARES_EBADRESP";
    case ARES_ECONNREFUSED:
      return "ARES_ECONNREFUSED";
    case ARES_ETIMEOUT:
      return "ARES_ETIMEOUT";
    case ARES_EOF:
      return "ARES_EOF";
    case ARES_EFILE:
      return "ARES_EFILE";
    case ARES_ENOMEM:
      return "ARES_ENOMEM";
    case ARES_EDESTRUCTION:
      return "ARES_EDESTRUCTION";
    case ARES_EBADSTR:
      return "ARES_EBADSTR";
    case ARES_ECANCELLED:
      return "ARES_ECANCELLED";
    default:
      return "ARES_E?";
  }
}

// One in-flight operation. c-ares holds a `new std::shared_ptr<Op>` as its callback argument;
// the cancellation handler holds a weak_ptr, so whichever comes second finds the op done.
// (Handlers are only move-constructed: Boost 1.81's any_completion_handler move-assignment
// recurses forever.)
struct AresChannel::ResolveOp {
  ResolveOp(AresChannel* o, asio::any_completion_handler<ResolveSignature> h)
      : owner(o), handler(std::move(h)) {}
  AresChannel* owner = nullptr;
  asio::any_completion_handler<ResolveSignature> handler;
  bool done = false;
};
struct AresChannel::QueryOp {
  QueryOp(AresChannel* o, asio::any_completion_handler<QuerySignature> h)
      : owner(o), handler(std::move(h)) {}
  AresChannel* owner = nullptr;
  asio::any_completion_handler<QuerySignature> handler;
  bool done = false;
};

AresChannel::AresChannel(asio::io_context& io, AresOptions options)
    : io_(io), timer_(io), alive_(std::make_shared<bool>(true)) {
  ares_global_setup();
  ares_options opts{};
  int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB |
             ARES_OPT_LOOKUPS;
  // STAYOPEN: keep each server's UDP socket between queries. Without it c-ares 1.18 closes every
  // socket whenever no query is pending, so a probe whose queries rarely overlap pays socket(),
  // connect(), an epoll registration and close() per query (about a fifth of a DNS check's CPU).
  // The source port still changes: maybe_rotate_sockets() reopens them every kQueriesPerSocket
  // queries.
  opts.flags = ARES_FLAG_NOCHECKRESP | ARES_FLAG_STAYOPEN;
  opts.timeout = static_cast<int>(options.timeout.count());
  opts.tries = options.tries;
  opts.sock_state_cb = &AresChannel::sock_state_callback;
  opts.sock_state_cb_data = this;
  char lookups_files_dns[] = "fb";
  char lookups_dns[] = "b";
  opts.lookups = options.use_hosts_file ? lookups_files_dns : lookups_dns;
  const int rc = ares_init_options(&channel_, &opts, mask);
  if (rc != ARES_SUCCESS) throw std::system_error(make_ares_error(rc), "ares_init_options");
  if (!options.servers.empty()) {
    std::string csv;
    for (const auto& s : options.servers) {
      if (!csv.empty()) csv += ',';
      csv += s;
    }
    const int src = ares_set_servers_ports_csv(channel_, csv.c_str());
    if (src != ARES_SUCCESS) {
      ares_destroy(channel_);
      throw std::system_error(make_ares_error(src), "DNS servers \"" + csv + "\"");
    }
    description_ = csv;
  } else {
    description_ = "system";
  }
}

AresChannel::~AresChannel() {
  *alive_ = false;
  // ares_destroy calls every pending callback with ARES_EDESTRUCTION; they drop their handlers.
  ares_destroy(channel_);
  for (auto& [fd, watch] : sockets_) watch->stop();
  sockets_.clear();
}

void AresChannel::sock_state_callback(void* data, int fd, int readable, int writable) {
  // Runs inside c-ares: bookkeeping only.
  auto* self = static_cast<AresChannel*>(data);
  try {
    auto it = self->sockets_.find(fd);
    if (!readable && !writable) {
      if (it != self->sockets_.end()) {
        it->second->stop();
        self->sockets_.erase(it);
      }
      return;
    }
    if (it == self->sockets_.end()) {
      auto watch = FdWatch::create(
          self->io_, fd, [self](int f, bool r, bool w, bool) { self->on_socket_ready(f, r, w); });
      it = self->sockets_.emplace(fd, std::move(watch)).first;
    }
    it->second->set_interest(readable != 0, writable != 0);
  } catch (const std::exception& e) {
    log::error("ares.sock_state_callback_failed", {{"error", e.what()}});
  }
}

void AresChannel::on_socket_ready(int fd, bool readable, bool writable) {
  ares_process_fd(channel_, readable ? fd : ARES_SOCKET_BAD, writable ? fd : ARES_SOCKET_BAD);
  reschedule_timer();
  maybe_rotate_sockets();
}

void AresChannel::reschedule_timer() {
  timeval tv{};
  // Nothing pending: an armed wake-up is left alone (harmless, it finds nothing to do).
  if (!ares_timeout(channel_, nullptr, &tv)) return;
  const auto due = std::chrono::steady_clock::now() + std::chrono::seconds(tv.tv_sec) +
                   std::chrono::microseconds(tv.tv_usec);
  // Keep a wake-up that comes no later than the one needed: waking early only runs
  // ares_process_fd once more and recomputes. Re-arming on every event would cost a
  // timerfd_settime system call each time.
  if (timer_armed_ && timer_.expiry() <= due) return;
  ++timer_generation_;
  timer_.expires_at(due);  // cancels a later wake-up
  timer_armed_ = true;
  timer_.async_wait(
      [this, gen = timer_generation_, alive = std::weak_ptr<bool>(alive_)](const error_code& ec) {
        if (ec || alive.expired() || gen != timer_generation_) return;
        timer_armed_ = false;
        ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        reschedule_timer();
        maybe_rotate_sockets();
      });
}

void AresChannel::maybe_rotate_sockets() {
  // c-ares 1.18 closes a channel's sockets only when its server list is set, and refuses that
  // while queries are pending: rotate when idle, outside any c-ares callback.
  if (pending_ != 0 || queries_on_sockets_ < kQueriesPerSocket) return;
  ares_addr_port_node* servers = nullptr;
  if (ares_get_servers_ports(channel_, &servers) != ARES_SUCCESS) return;
  if (ares_set_servers_ports(channel_, servers) == ARES_SUCCESS) queries_on_sockets_ = 0;
  ares_free_data(servers);
}

void AresChannel::start_resolve(std::string host, int family,
                                asio::any_completion_handler<ResolveSignature> handler) {
  auto op = std::make_shared<ResolveOp>(this, std::move(handler));
  auto slot = asio::get_associated_cancellation_slot(op->handler);
  if (slot.is_connected()) {
    slot.assign([this, weak = std::weak_ptr<ResolveOp>(op)](asio::cancellation_type) {
      asio::post(io_, [this, weak] {
        auto o = weak.lock();
        if (!o || o->done) return;
        o->done = true;
        complete_later(io_, std::move(o->handler), error_code(asio::error::operation_aborted),
                       ResolvedAddresses{});
      });
    });
  }
  ares_addrinfo_hints hints{};
  hints.ai_family = family;
  hints.ai_flags = ARES_AI_NOSORT;
  ++pending_;
  ++queries_on_sockets_;
  ares_getaddrinfo(channel_, host.c_str(), nullptr, &hints, &AresChannel::resolve_callback,
                   new std::shared_ptr<ResolveOp>(op));
  reschedule_timer();
}

void AresChannel::resolve_callback(void* arg, int status, int, ::ares_addrinfo* result) {
  // Runs inside c-ares: copy the answer, post the completion, never call c-ares.
  std::unique_ptr<std::shared_ptr<ResolveOp>> holder(static_cast<std::shared_ptr<ResolveOp>*>(arg));
  std::shared_ptr<ResolveOp> op = *holder;
  ResolvedAddresses out;
  bool first_ttl = true;
  if (status == ARES_SUCCESS && result) {
    for (ares_addrinfo_node* n = result->nodes; n; n = n->ai_next) {
      char buf[INET6_ADDRSTRLEN] = {};
      if (n->ai_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(n->ai_addr)->sin_addr, buf, sizeof buf);
        if (std::find(out.ipv4.begin(), out.ipv4.end(), buf) == out.ipv4.end()) {
          out.ipv4.emplace_back(buf);
        }
      } else if (n->ai_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(n->ai_addr)->sin6_addr, buf,
                  sizeof buf);
        if (std::find(out.ipv6.begin(), out.ipv6.end(), buf) == out.ipv6.end()) {
          out.ipv6.emplace_back(buf);
        }
      } else {
        continue;
      }
      const auto ttl = static_cast<std::uint32_t>(std::max(0, n->ai_ttl));
      if (first_ttl || ttl < out.min_ttl) out.min_ttl = ttl;
      first_ttl = false;
    }
  }
  if (result) ares_freeaddrinfo(result);
  if (status == ARES_EDESTRUCTION) return;  // the channel is being destroyed
  // The channel outlives every callback it makes (ares_destroy runs them with EDESTRUCTION).
  --op->owner->pending_;
  if (op->done) return;  // already completed as cancelled
  op->done = true;
  error_code ec;
  if (status != ARES_SUCCESS)
    ec = error_code(make_ares_error(status));
  else if (out.ipv4.empty() && out.ipv6.empty())
    ec = error_code(make_ares_error(ARES_ENODATA));
  complete_later(op->owner->io_, std::move(op->handler), ec, std::move(out));
}

void AresChannel::start_query(std::string name, int dns_class, int dns_type,
                              asio::any_completion_handler<QuerySignature> handler) {
  auto op = std::make_shared<QueryOp>(this, std::move(handler));
  unsigned char* buf = nullptr;
  int len = 0;
  const int rc = ares_create_query(name.c_str(), dns_class, dns_type, 0, /*rd=*/1, &buf, &len, 0);
  if (rc != ARES_SUCCESS) {
    op->done = true;
    complete_later(io_, std::move(op->handler), error_code(make_ares_error(rc)),
                   std::vector<std::uint8_t>{});
    return;
  }
  auto slot = asio::get_associated_cancellation_slot(op->handler);
  if (slot.is_connected()) {
    slot.assign([this, weak = std::weak_ptr<QueryOp>(op)](asio::cancellation_type) {
      asio::post(io_, [this, weak] {
        auto o = weak.lock();
        if (!o || o->done) return;
        o->done = true;
        complete_later(io_, std::move(o->handler), error_code(asio::error::operation_aborted),
                       std::vector<std::uint8_t>{});
      });
    });
  }
  ++pending_;
  ++queries_on_sockets_;
  ares_send(channel_, buf, len, &AresChannel::query_callback, new std::shared_ptr<QueryOp>(op));
  ares_free_string(buf);
  reschedule_timer();
}

void AresChannel::query_callback(void* arg, int status, int, unsigned char* abuf, int alen) {
  std::unique_ptr<std::shared_ptr<QueryOp>> holder(static_cast<std::shared_ptr<QueryOp>*>(arg));
  std::shared_ptr<QueryOp> op = *holder;
  if (status == ARES_EDESTRUCTION) return;
  --op->owner->pending_;
  if (op->done) return;
  op->done = true;
  std::vector<std::uint8_t> response;
  if (status == ARES_SUCCESS && abuf && alen > 0) response.assign(abuf, abuf + alen);
  error_code ec;
  if (status != ARES_SUCCESS) ec = error_code(make_ares_error(status));
  complete_later(op->owner->io_, std::move(op->handler), ec, std::move(response));
}

}  // namespace vantage::probe::net
