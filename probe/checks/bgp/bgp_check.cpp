#include "probe/checks/bgp/bgp_check.hpp"

#include <fnmatch.h>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/config_node.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/time.hpp"
#include "probe/bgp/bmp.hpp"
#include "probe/bgp/mrt_reader.hpp"
#include "probe/checks/common_config.hpp"
#include "probe/sinks/metrics_sink.hpp"

namespace vantage::probe::checks::bgp {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using asio::ip::tcp;
using vantage::bgp::Alert;
using vantage::bgp::RouteEvent;

namespace {

std::string config_relative(const ConfigNode& node) {
  fs::path file = node.as_nonempty_string();
  if (file.is_relative()) file = (fs::path(node.file()).parent_path() / file).lexically_normal();
  if (!fs::is_regular_file(file)) node.fail("cannot read file \"" + file.string() + "\"");
  return file.string();
}

}  // namespace

BgpConfig parse_bgp_config(const ConfigNode& node) {
  expect_check_keys(node,
                    {"prefixes", "as_rel", "vrp", "min_peers", "bmp", "mrt_dir", "mrt_pattern",
                     "mrt_skip_existing", "mrt_settle", "ris_live", "route_events"});
  BgpConfig c;
  const ConfigNode prefixes = node.require("prefixes");
  c.prefixes_file = config_relative(prefixes);
  auto expectations = std::make_shared<vantage::bgp::Expectations>(
      vantage::bgp::load_expectations(c.prefixes_file));  // ConfigError names that file
  if (expectations->prefixes.empty()) prefixes.fail("the prefixes file monitors no prefix");
  if (auto v = node.get("min_peers"))
    expectations->min_peers = static_cast<int>(v->as_int(1, 100000));
  c.expectations = std::move(expectations);
  if (auto v = node.get("as_rel")) {
    c.as_rel_file = config_relative(*v);
    try {
      c.relationships = std::make_shared<vantage::bgp::AsRelationships>(
          vantage::bgp::AsRelationships::load(c.as_rel_file));
    } catch (const std::runtime_error& e) {
      v->fail(e.what());
    }
  }
  if (auto v = node.get("vrp")) {
    c.vrp_file = config_relative(*v);
    try {
      c.vrps = std::make_shared<vantage::bgp::Vrps>(vantage::bgp::Vrps::load(c.vrp_file));
    } catch (const std::runtime_error& e) {
      v->fail(e.what());
    }
  }
  if (auto v = node.get("bmp")) {
    v->expect_keys({"listen", "allowed_routers"});
    const ConfigNode listen = v->require("listen");
    const std::string text = listen.as_nonempty_string();
    // "192.0.2.1:11019", "[2001:db8::1]:11019" or ":11019" (every IPv6 and IPv4 address).
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) listen.fail("expected address:port, e.g. 127.0.0.1:11019");
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    if (host.empty()) host = "::";
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    if (ec) listen.fail("\"" + host + "\" is not an IP address");
    int port = 0;
    try {
      std::size_t used = 0;
      port = std::stoi(text.substr(colon + 1), &used);
      if (used != text.size() - colon - 1) port = -1;
    } catch (const std::exception&) {
      port = -1;
    }
    if (port < 1 || port > 65535) listen.fail("the port must be 1-65535");
    BmpListen b;
    b.address = host;
    b.port = static_cast<std::uint16_t>(port);
    if (auto a = v->get("allowed_routers")) {
      for (const auto& item : a->items()) {
        asio::ip::make_address(item.as_nonempty_string(), ec);
        if (ec) item.fail("\"" + item.as_string() + "\" is not an IP address");
        b.allowed_routers.push_back(asio::ip::make_address(item.as_string()).to_string());
      }
    }
    c.bmp = std::move(b);
  }
  if (auto v = node.get("mrt_dir")) {
    c.mrt_dir = v->as_nonempty_string();
    if (fs::path(c.mrt_dir).is_relative()) {
      c.mrt_dir = (fs::path(node.file()).parent_path() / c.mrt_dir).lexically_normal().string();
    }
    if (!fs::is_directory(c.mrt_dir)) v->fail("\"" + c.mrt_dir + "\" is not a directory");
  }
  if (auto v = node.get("mrt_pattern")) {
    if (c.mrt_dir.empty()) v->fail("mrt_pattern needs mrt_dir");
    c.mrt_pattern = v->as_nonempty_string();
  }
  if (auto v = node.get("mrt_settle")) {
    if (c.mrt_dir.empty()) v->fail("mrt_settle needs mrt_dir");
    c.mrt_settle = v->as_duration(std::chrono::seconds(1), std::chrono::hours(24));
  }
  if (auto v = node.get("mrt_skip_existing")) {
    if (c.mrt_dir.empty()) v->fail("mrt_skip_existing needs mrt_dir");
    c.mrt_skip_existing = v->as_bool();
  }
  if (auto v = node.get("ris_live")) c.ris_live = parse_ris_live_config(*v, *c.expectations);
  if (auto v = node.get("route_events"))
    c.publish_route_events = v->as_enum({"monitored", "none"}) == "monitored";
  if (!c.bmp && c.mrt_dir.empty() && !c.ris_live) {
    node.fail("a bgp check needs bmp (a BMP listener), mrt_dir or ris_live (one or more)");
  }
  return c;
}

// Everything that lives between runs; owned by the check and by the coroutines using it, so a
// BMP session that is still open at shutdown cannot outlive what it writes to.
struct BgpCheck::Runtime : std::enable_shared_from_this<BgpCheck::Runtime> {
  Runtime(Services& s, const CheckCommon& common, const BgpConfig& c)
      : services(s),
        check_id(common.id),
        config(c),
        monitor(*c.expectations, c.relationships.get(), c.vrps.get()) {}

  static constexpr std::size_t kMaxSessions = 64;   // routers at once
  static constexpr std::size_t kApplyBatch = 1000;  // events per turn of the event loop
  // Stale routes of a peer whose router sent Peer Up but never End-of-RIB are withdrawn after:
  static constexpr std::chrono::minutes kRefreshTimeout{5};

  Services& services;
  std::string check_id;
  BgpConfig config;  // keeps the shared expectations, relationships and VRPs alive
  vantage::bgp::Monitor monitor;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<asio::steady_timer> accept_pause;
  std::set<std::shared_ptr<tcp::socket>> sessions;
  bool stopping = false;
  std::vector<Alert> alerts;  // scratch

  // Where the events being applied came from: a BMP router (live) or an MRT file, whose records
  // get ids derived from the file, so that reading it again (a restart) gives the same ids and
  // the collector drops the copies.
  struct Source {
    std::string router_name;  // BMP: the router's sysName, "" when not sent
    std::string id_seed;      // MRT: check, file, size, mtime
    std::uint64_t seq = 0;    // records published from this file so far
    std::string reason;       // why the probe made these events up (RIS Live gap expiry), or ""
  };

  // MRT directory: files read (by name), what the previous look saw, the worker and the events
  // it read, applied in order a batch at a time.
  struct Look {
    std::uintmax_t size;
    fs::file_time_type mtime;
  };
  struct FileEvents {
    std::string name;
    Source source;
    std::vector<RouteEvent> events;
    std::size_t next = 0;
  };
  std::set<std::string> mrt_done;
  std::map<std::string, Look> mrt_seen;
  std::chrono::steady_clock::time_point mrt_last_look{};
  std::thread mrt_worker;
  bool mrt_busy = false;     // a worker runs or its events are still being applied
  bool mrt_reading = false;  // the worker thread has not finished
  bool draining = false;     // a drain turn is queued on the event loop
  std::deque<FileEvents> mrt_ready;
  std::shared_ptr<std::atomic<bool>> mrt_cancel = std::make_shared<std::atomic<bool>>(false);

  // Feeds events to the monitor and publishes what is worth publishing. On the event loop.
  void apply(RouteEvent* begin, RouteEvent* end, Source& source) {
    const auto now_us = to_unix_nanos(services.clock.utc_now()) / 1000;
    for (RouteEvent* e = begin; e != end; ++e) {
      // A BMP stream is live: what it says happened when it arrives. Per-peer header timestamps
      // are router-specific (RFC 7854 §4.2 allows either the route's or the message's time; FRR
      // 8.4 stamps a replaced path with its predecessor's time, some routers send zero), so an
      // alert would otherwise open in the past. MRT records keep their own times.
      if (source.id_seed.empty() || e->time_us <= 0) e->time_us = now_us;
      const bool session =
          e->kind == RouteEvent::Kind::peer_down || e->kind == RouteEvent::Kind::peer_up;
      const vantage::bgp::MonitoredPrefix* m = session || e->kind == RouteEvent::Kind::end_of_rib
                                                   ? nullptr
                                                   : monitor.monitored(e->prefix);
      if (config.publish_route_events && ((m && !m->ignore) || session)) {
        nlohmann::json j = vantage::bgp::to_json(*e);
        if (m) j["monitored_prefix"] = m->prefix.to_string();
        if (!source.router_name.empty()) j["router_name"] = source.router_name;
        if (!source.reason.empty()) j["reason"] = source.reason;
        publish("route_event", std::move(j), e->time_us, source);
      }
      alerts.clear();
      monitor.observe(*e, alerts);
      publish_alerts(&source);
    }
  }

  void publish_alerts(Source* source) {
    for (const auto& a : alerts) {
      log::warn("bgp.alert", {{"check", check_id},
                              {"alert", a.kind_name()},
                              {"status", a.resolved ? "resolved" : "open"},
                              {"text", a.to_text()}});
      Source none;
      publish("bgp_alert", a.json(), a.time_us, source ? *source : none);
    }
  }

  void publish(std::string_view kind, nlohmann::json j, std::int64_t time_us, Source& source) {
    j["kind"] = kind;
    j["id"] = source.id_seed.empty()
                  ? services.ids.uuid_v7(from_unix_nanos(time_us * 1000))
                  : derived_id(source.id_seed + '\0' + std::to_string(source.seq++));
    j["check"] = check_id;
    if (services.publish_record) services.publish_record(kind, j);
  }

  // A UUID (version 8, RFC 9562 §5.8) from the first 128 bits of SHA-256(`seed`).
  static std::string derived_id(const std::string& seed) {
    unsigned char b[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(seed.data(), seed.size(), b, &len, EVP_sha256(), nullptr);
    b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x80);
    b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < 16; ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
      out += kHex[b[i] >> 4];
      out += kHex[b[i] & 15];
    }
    return out;
  }

  void start_bmp() {
    const BmpListen& b = *config.bmp;
    const tcp::endpoint ep(asio::ip::make_address(b.address), b.port);
    acceptor = std::make_unique<tcp::acceptor>(services.io);
    accept_pause = std::make_unique<asio::steady_timer>(services.io);
    boost::system::error_code ec;
    acceptor->open(ep.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && ep.address().is_v6()) acceptor->set_option(asio::ip::v6_only(false), ec);
    if (!ec) acceptor->bind(ep, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      throw std::runtime_error("BMP listener on " + b.address + " port " + std::to_string(b.port) +
                               ": " + ec.message());
    }
    log::info("bgp.bmp_listening", {{"check", check_id}, {"address", b.address}, {"port", b.port}});
    if (b.allowed_routers.empty() && !ep.address().is_loopback()) {
      log::warn("bgp.bmp_open_to_any_router",
                {{"check", check_id},
                 {"detail",
                  "bmp.allowed_routers is empty: anyone who reaches this port can send routes"}});
    }
    asio::co_spawn(services.io, accept_loop(shared_from_this()),
                   log::LogException{"bgp.bmp_accept_loop_failed"});
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<Runtime> self) {
    while (!self->stopping) {
      auto [ec, socket] =
          co_await self->acceptor->async_accept(asio::as_tuple(asio::use_awaitable));
      if (self->stopping || ec == asio::error::operation_aborted) co_return;
      if (ec) {
        // EMFILE and friends fail at once: pause instead of spinning.
        log::warn("bgp.bmp_accept_failed", {{"check", self->check_id}, {"error", ec.message()}});
        self->accept_pause->expires_after(std::chrono::seconds(1));
        co_await self->accept_pause->async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      boost::system::error_code rec;
      const auto remote = socket.remote_endpoint(rec);
      std::string router = rec ? "unknown" : remote.address().to_string();
      if (!rec && remote.address().is_v6() && remote.address().to_v6().is_v4_mapped()) {
        router =
            asio::ip::make_address_v4(asio::ip::v4_mapped, remote.address().to_v6()).to_string();
      }
      const auto& allowed = self->config.bmp->allowed_routers;
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), router) == allowed.end()) {
        log::warn(
            "bgp.bmp_refused",
            {{"check", self->check_id}, {"router", router}, {"reason", "not in allowed_routers"}});
        socket.close(rec);
        continue;
      }
      if (self->sessions.size() >= kMaxSessions) {
        log::warn("bgp.bmp_refused",
                  {{"check", self->check_id}, {"router", router}, {"reason", "too many sessions"}});
        socket.close(rec);
        continue;
      }
      // BMP has no keepalive of its own: let TCP find routers that vanished.
      socket.set_option(asio::socket_base::keep_alive(true), rec);
      auto s = std::make_shared<tcp::socket>(std::move(socket));
      self->sessions.insert(s);
      asio::co_spawn(self->services.io, session(self, s, router),
                     log::LogException{"bgp.bmp_session_failed"});
    }
  }

  // One router's BMP stream. The router is named by its address (sysName only for display).
  // When the stream ends, the routes it reported are kept: after reconnecting, the router sends
  // Peer Up and the peer's table again; what it does not re-send before End-of-RIB (or within
  // kRefreshTimeout) is withdrawn then. A Peer Down withdraws the peer's routes at once.
  static asio::awaitable<void> session(std::shared_ptr<Runtime> self,
                                       std::shared_ptr<tcp::socket> s, std::string router) {
    struct Close {
      std::shared_ptr<Runtime> self;
      std::shared_ptr<tcp::socket> s;
      ~Close() {
        boost::system::error_code ignored;
        s->close(ignored);
        self->sessions.erase(s);
      }
    } close{self, s};
    log::info("bgp.bmp_session_up", {{"check", self->check_id}, {"router", router}});
    std::string reason = "probe stopping";
    std::uint64_t bytes = 0;
    try {
      vantage::bgp::BmpDecoder decoder(router, /*name_from_sys_name=*/false);
      std::vector<std::uint8_t> buf(64 * 1024);
      std::vector<RouteEvent> events;
      Source source;
      for (;;) {
        auto [ec, n] =
            co_await s->async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
        if (self->stopping) break;
        if (ec) {
          reason = ec.message();
          break;
        }
        bytes += n;
        events.clear();
        decoder.feed(buf.data(), n, events);
        for (const auto& w : decoder.warnings()) {
          log::warn("bgp.bmp_warning",
                    {{"check", self->check_id}, {"router", router}, {"warning", w}});
        }
        decoder.warnings().clear();
        source.router_name = decoder.router_name();
        self->apply(events.data(), events.data() + events.size(), source);
        if (decoder.failed()) {
          // The next message boundary cannot be found: the router must reconnect.
          reason = "unreadable BMP stream";
          log::warn("bgp.bmp_session_closed",
                    {{"check", self->check_id}, {"router", router}, {"reason", reason}});
          break;
        }
      }
    } catch (const std::exception& e) {
      reason = std::string("internal error: ") + e.what();
      log::error("bgp.bmp_session_failed",
                 {{"check", self->check_id}, {"router", router}, {"error", e.what()}});
    }
    log::info(
        "bgp.bmp_session_down",
        {{"check", self->check_id}, {"router", router}, {"bytes", bytes}, {"reason", reason}});
  }

  // Routers that sent Peer Up but never End-of-RIB: their unrefreshed routes go after a while.
  // Alerts no peer carried for the resolve hold resolve now, even without a new event.
  void sweep() {
    alerts.clear();
    const std::int64_t now_us = to_unix_nanos(services.clock.utc_now()) / 1000;
    monitor.sweep_stale(
        now_us, std::chrono::duration_cast<std::chrono::microseconds>(kRefreshTimeout).count(),
        alerts);
    monitor.tick(now_us, alerts);
    publish_alerts(nullptr);
  }

  // Starts reading the MRT files that are complete, in name order, on a worker thread. A file is
  // complete when it looked the same at the previous look (at least a second earlier) and either
  // a later file matching the pattern exists (the writer rotated) or it has not been written to
  // for `mrt_settle`.
  void poll_mrt(bool first) {
    if (mrt_busy || stopping) return;
    const auto now = std::chrono::steady_clock::now();
    const bool spaced = now - mrt_last_look >= std::chrono::seconds(1);
    if (!first && !spaced) return;
    mrt_last_look = now;
    std::error_code ec;
    std::map<std::string, Look> seen;
    for (fs::directory_iterator it(config.mrt_dir, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code fec;
      if (!it->is_regular_file(fec)) continue;
      const std::string name = it->path().filename().string();
      // FNM_PERIOD: hidden files (rsync's temporaries) never match.
      if (mrt_done.count(name) ||
          fnmatch(config.mrt_pattern.c_str(), name.c_str(), FNM_PERIOD) != 0)
        continue;
      const auto size = it->file_size(fec);
      const auto mtime = it->last_write_time(fec);
      if (fec) continue;
      if (first && config.mrt_skip_existing) {
        mrt_done.insert(name);
        continue;
      }
      seen[name] = {size, mtime};
    }
    if (ec)
      log::warn("bgp.mrt_dir_unreadable",
                {{"check", check_id}, {"dir", config.mrt_dir}, {"error", ec.message()}});
    std::vector<std::pair<std::string, Look>> ready;
    for (auto it = seen.begin(); it != seen.end(); ++it) {
      const auto prev = mrt_seen.find(it->first);
      const bool unchanged = prev != mrt_seen.end() && prev->second.size == it->second.size &&
                             prev->second.mtime == it->second.mtime;
      const bool rotated = std::next(it) != seen.end();  // a later file exists
      const bool settled = fs::file_time_type::clock::now() - it->second.mtime >= config.mrt_settle;
      if (unchanged && (rotated || settled)) {
        ready.emplace_back(*it);
      } else {
        break;  // keep name order: nothing after a file that is not complete yet
      }
    }
    mrt_seen = std::move(seen);
    if (ready.empty()) return;
    if (mrt_worker.joinable()) mrt_worker.join();
    mrt_busy = mrt_reading = true;
    try {
      // The worker only reads the immutable expectations (monitored()), never the monitor's state.
      mrt_worker = std::thread([self = shared_from_this(), ready, cancel = mrt_cancel] {
        self->read_mrt(ready, *cancel);
      });
    } catch (const std::system_error& e) {
      mrt_busy = mrt_reading = false;
      log::error("bgp.mrt_worker_failed", {{"check", check_id}, {"error", e.what()}});
      return;  // the files stay unread: the next look tries again
    }
    for (const auto& [name, look] : ready) {
      mrt_done.insert(name);
      mrt_seen.erase(name);
    }
  }

  // On the worker thread: decodes each file and hands its events (monitored prefixes and
  // session changes only) to the event loop.
  void read_mrt(const std::vector<std::pair<std::string, Look>>& files,
                const std::atomic<bool>& cancel) {
    auto self = shared_from_this();
    for (const auto& [name, look] : files) {
      if (cancel) break;
      FileEvents file;
      file.name = name;
      file.source.id_seed = check_id + '\0' + name + '\0' + std::to_string(look.size) + '\0' +
                            std::to_string(look.mtime.time_since_epoch().count());
      std::vector<std::string> warnings;
      std::uint64_t records = 0;
      try {
        vantage::bgp::MrtReader reader((fs::path(config.mrt_dir) / name).string());
        // The directory is one collector's series: its peers are the same from file to file.
        vantage::bgp::RouteEventDecoder decoder(config.mrt_dir);
        vantage::bgp::MrtRecord record;
        std::vector<RouteEvent> all;
        while (!cancel && reader.next(record)) {
          ++records;
          all.clear();
          decoder.decode(record, all);
          for (auto& e : all) {
            if (e.kind == RouteEvent::Kind::peer_down || monitor.monitored(e.prefix))
              file.events.push_back(std::move(e));
          }
        }
        warnings = decoder.warnings();
        warnings.insert(warnings.end(), reader.warnings().begin(), reader.warnings().end());
      } catch (const std::exception& e) {
        warnings.push_back(e.what());
      }
      auto shared = std::make_shared<FileEvents>(std::move(file));
      asio::post(services.io, [self, shared, warnings = std::move(warnings), records] {
        for (const auto& w : warnings) {
          log::warn("bgp.mrt_warning",
                    {{"check", self->check_id}, {"file", shared->name}, {"warning", w}});
        }
        log::info("bgp.mrt_file_read",
                  {{"check", self->check_id},
                   {"file", shared->name},
                   {"records", records},
                   {"events", static_cast<std::uint64_t>(shared->events.size())}});
        self->mrt_ready.push_back(std::move(*shared));
        self->drain();
      });
    }
    asio::post(services.io, [self] {
      self->mrt_reading = false;
      self->drain();
    });
  }

  // Applies the read files' events in order, kApplyBatch at a time, so that a large file does
  // not hold the event loop (and the other checks' timings) for long.
  void drain() {
    if (draining) return;
    if (stopping) {
      mrt_ready.clear();
      return;
    }
    if (mrt_ready.empty()) {
      if (!mrt_reading) mrt_busy = false;
      return;
    }
    FileEvents& f = mrt_ready.front();
    const std::size_t n = std::min(kApplyBatch, f.events.size() - f.next);
    apply(f.events.data() + f.next, f.events.data() + f.next + n, f.source);
    f.next += n;
    if (f.next == f.events.size()) mrt_ready.pop_front();
    draining = true;
    asio::post(services.io, [self = shared_from_this()] {
      self->draining = false;
      self->drain();
    });
  }

  // RIS Live: events go through apply() like a BMP router's; RisLiveRoutes remembers them for
  // gaps, and a timer withdraws what a gap left unconfirmed (ris_live.hpp).
  std::unique_ptr<RisLiveClient> ris_live;
  std::unique_ptr<RisLiveRoutes> ris_routes;
  std::unique_ptr<asio::steady_timer> ris_expiry;
  Source ris_source;

  void start_ris_live() {
    ris_routes = std::make_unique<RisLiveRoutes>(*config.expectations, config.relationships.get(),
                                                 config.vrps.get());
    ris_expiry = std::make_unique<asio::steady_timer>(services.io);
    std::weak_ptr<Runtime> weak = weak_from_this();
    ris_live = std::make_unique<RisLiveClient>(
        services, check_id, *config.ris_live,
        [weak](std::vector<RouteEvent>& events) {
          if (auto self = weak.lock(); self && !self->stopping) {
            self->apply(events.data(), events.data() + events.size(), self->ris_source);
            for (auto& e : events) self->ris_routes->seen(std::move(e));
          }
        },
        [weak](std::chrono::nanoseconds) {
          if (auto self = weak.lock(); self && !self->stopping) {
            const auto expiry = std::chrono::duration_cast<std::chrono::microseconds>(
                self->config.ris_live->gap_expiry);
            self->ris_routes->gap(to_unix_nanos(self->services.clock.utc_now()) / 1000,
                                  expiry.count());
            self->arm_ris_expiry();
          }
        });
    ris_live->start();
    log::info("bgp.ris_live_starting",
              {{"check", check_id},
               {"url", config.ris_live->url},
               {"prefixes", static_cast<std::int64_t>(config.ris_live->prefixes.size())}});
  }

  void arm_ris_expiry() {
    const auto next = ris_routes->next_expiry();
    if (!next || !ris_expiry) return;
    const std::int64_t now_us = to_unix_nanos(services.clock.utc_now()) / 1000;
    ris_expiry->expires_after(std::chrono::microseconds(std::max<std::int64_t>(0, *next - now_us)));
    ris_expiry->async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (ec || !self || self->stopping) return;
      self->expire_ris_routes();
    });
  }

  void expire_ris_routes() {
    const std::int64_t now_us = to_unix_nanos(services.clock.utc_now()) / 1000;
    std::vector<RouteEvent> gone = ris_routes->expire(now_us);
    if (!gone.empty()) {
      log::warn("bgp.ris_live_gap_expired",
                {{"check", check_id},
                 {"routes", static_cast<std::int64_t>(gone.size())},
                 {"detail", "routes with an issue not confirmed since a RIS Live gap: withdrawn"}});
      Source source;
      source.reason = "not confirmed since a RIS Live gap";
      apply(gone.data(), gone.data() + gone.size(), source);
    }
    arm_ris_expiry();
  }

  void stop() {
    stopping = true;
    *mrt_cancel = true;
    if (ris_live) ris_live->stop();
    if (ris_expiry) ris_expiry->cancel();
    boost::system::error_code ignored;
    if (acceptor) acceptor->close(ignored);
    if (accept_pause) accept_pause->cancel();
    for (const auto& s : sessions) s->close(ignored);
    if (mrt_worker.joinable()) mrt_worker.join();
  }
};

BgpCheck::BgpCheck(CheckCommon common, BgpConfig config)
    : Check(std::move(common)), config_(std::move(config)) {}

BgpCheck::~BgpCheck() {
  if (runtime_) runtime_->stop();
}

std::string BgpCheck::describe() const {
  std::string s = "bgp " + std::to_string(config_.expectations->prefixes.size()) + " prefixes";
  if (config_.bmp)
    s += ", BMP on " + config_.bmp->address + ":" + std::to_string(config_.bmp->port);
  if (!config_.mrt_dir.empty()) s += ", MRT from " + config_.mrt_dir;
  if (config_.ris_live) s += ", RIS Live from " + config_.ris_live->url;
  return s;
}

namespace {

// /metrics: routes under monitored prefixes that the monitors ignored (docs/bgp.md#origins), by
// reason, summed over the bgp checks of the process. Read at scrape time on the event loop, where
// the monitors are fed; a check that went away (reload, shutdown) drops out.
struct IgnoredRoutes {
  std::mutex mutex;
  std::set<sinks::MetricsSink*> sinks;
  std::vector<std::weak_ptr<const vantage::bgp::Monitor>> monitors;

  static IgnoredRoutes& registry() {
    static IgnoredRoutes r;
    return r;
  }

  void add(sinks::MetricsSink* sink, std::weak_ptr<const vantage::bgp::Monitor> monitor) {
    {
      std::lock_guard lock(mutex);
      std::erase_if(monitors, [](const auto& m) { return m.expired(); });
      monitors.push_back(std::move(monitor));
      if (!sink || !sinks.insert(sink).second) return;
    }
    sink->add_labelled_counter(
        "vantage_bgp_ignored_routes_total",
        "Routes under monitored prefixes that raised nothing because of what they are, by reason "
        "(bogon_prefix, private_path: no public AS in the path)",
        "reason", [] {
          auto& r = registry();
          std::lock_guard lock(r.mutex);
          std::map<std::string, double> out{{"bogon_prefix", 0}, {"private_path", 0}};
          for (const auto& weak : r.monitors) {
            if (auto m = weak.lock()) {
              for (const auto& [reason, n] : m->ignored_by_reason())
                out[reason] += static_cast<double>(n);
            }
          }
          return out;
        });
  }
};

}  // namespace

void BgpCheck::start(Services& services) {
  if (runtime_) return;
  runtime_ = std::make_shared<Runtime>(services, common(), config_);
  IgnoredRoutes::registry().add(
      services.metrics, std::shared_ptr<const vantage::bgp::Monitor>(runtime_, &runtime_->monitor));
  if (config_.bmp) runtime_->start_bmp();
  if (config_.ris_live) runtime_->start_ris_live();
  if (!config_.mrt_dir.empty()) runtime_->poll_mrt(true);
}

asio::awaitable<std::vector<CheckResult>> BgpCheck::run(RunContext& ctx) {
  if (!runtime_) start(ctx.services);
  runtime_->sweep();
  if (!config_.mrt_dir.empty()) runtime_->poll_mrt(false);
  co_return std::vector<CheckResult>{};
}

void BgpCheck::shutdown() {
  if (!runtime_) return;
  runtime_->stop();
  // The acceptor and timer belong to the event loop that is about to go: release them here.
  // Sessions still referenced by their coroutines die with the loop.
  runtime_->acceptor.reset();
  runtime_->accept_pause.reset();
  if (runtime_->ris_live) runtime_->ris_live->release();
  runtime_->ris_expiry.reset();
  runtime_.reset();
}

CheckPtr make_bgp_check(CheckCommon common, const ConfigNode& node) {
  return std::make_unique<BgpCheck>(std::move(common), parse_bgp_config(node));
}

}  // namespace vantage::probe::checks::bgp
