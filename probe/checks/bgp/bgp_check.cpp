#include "probe/checks/bgp/bgp_check.hpp"

#include <fnmatch.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/time.hpp"
#include "common/config_node.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "probe/bgp/bmp.hpp"
#include "probe/bgp/mrt_reader.hpp"
#include "probe/checks/common_config.hpp"

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
  expect_check_keys(node, {"prefixes", "as_rel", "vrp", "min_peers", "bmp", "mrt_dir",
                           "mrt_pattern", "mrt_skip_existing", "route_events"});
  BgpConfig c;
  const ConfigNode prefixes = node.require("prefixes");
  c.prefixes_file = config_relative(prefixes);
  auto expectations = std::make_shared<vantage::bgp::Expectations>(
      vantage::bgp::load_expectations(c.prefixes_file));  // ConfigError names that file
  if (expectations->prefixes.empty()) prefixes.fail("the prefixes file monitors no prefix");
  if (auto v = node.get("min_peers")) expectations->min_peers = static_cast<int>(v->as_int(1, 100000));
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
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
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
  if (auto v = node.get("mrt_skip_existing")) {
    if (c.mrt_dir.empty()) v->fail("mrt_skip_existing needs mrt_dir");
    c.mrt_skip_existing = v->as_bool();
  }
  if (auto v = node.get("route_events")) c.publish_route_events = v->as_enum({"monitored", "none"}) == "monitored";
  if (!c.bmp && c.mrt_dir.empty()) node.fail("a bgp check needs bmp (a BMP listener) or mrt_dir (or both)");
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

  Services& services;
  std::string check_id;
  BgpConfig config;  // keeps the shared expectations, relationships and VRPs alive
  vantage::bgp::Monitor monitor;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::set<std::shared_ptr<tcp::socket>> sessions;
  bool stopping = false;
  std::vector<Alert> alerts;  // scratch

  // MRT directory: files read (by name), sizes seen at the previous poll, the worker.
  std::set<std::string> mrt_done;
  std::map<std::string, std::pair<std::uintmax_t, fs::file_time_type>> mrt_seen;
  std::thread mrt_worker;
  bool mrt_busy = false;
  std::shared_ptr<std::atomic<bool>> mrt_cancel = std::make_shared<std::atomic<bool>>(false);

  // Feeds events to the monitor and publishes what is worth publishing. On the event loop.
  void apply(std::vector<RouteEvent>& events) {
    const auto now_us = to_unix_nanos(services.clock.utc_now()) / 1000;
    for (auto& e : events) {
      // Some routers leave the BMP per-peer timestamp at zero: then it happened now.
      if (e.time_us <= 0) e.time_us = now_us;
      const vantage::bgp::MonitoredPrefix* m =
          e.kind == RouteEvent::Kind::peer_down ? nullptr : monitor.monitored(e.prefix);
      if (config.publish_route_events && (m || e.kind == RouteEvent::Kind::peer_down)) {
        nlohmann::json j = vantage::bgp::to_json(e);
        if (m) j["monitored_prefix"] = m->prefix.to_string();
        publish("route_event", std::move(j), e.time_us);
      }
      alerts.clear();
      monitor.observe(e, alerts);
      for (const auto& a : alerts) {
        log::warn("bgp.alert", {{"check", check_id},
                                {"alert", a.kind_name()},
                                {"status", a.resolved ? "resolved" : "open"},
                                {"text", a.to_text()}});
        publish("bgp_alert", a.json(), a.time_us);
      }
    }
  }

  void publish(std::string_view kind, nlohmann::json j, std::int64_t time_us) {
    j["kind"] = kind;
    j["id"] = services.ids.uuid_v7(from_unix_nanos(time_us * 1000));
    j["check"] = check_id;
    if (services.publish_record) services.publish_record(kind, j);
  }

  void start_bmp() {
    const BmpListen& b = *config.bmp;
    const tcp::endpoint ep(asio::ip::make_address(b.address), b.port);
    acceptor = std::make_unique<tcp::acceptor>(services.io);
    acceptor->open(ep.protocol());
    acceptor->set_option(asio::socket_base::reuse_address(true));
    if (ep.address().is_v6()) acceptor->set_option(asio::ip::v6_only(false));
    acceptor->bind(ep);  // throws: reported by the scheduler as the check's internal error
    acceptor->listen();
    log::info("bgp.bmp_listening", {{"check", check_id}, {"address", b.address}, {"port", b.port}});
    asio::co_spawn(services.io, accept_loop(shared_from_this()), asio::detached);
  }

  static asio::awaitable<void> accept_loop(std::shared_ptr<Runtime> self) {
    while (!self->stopping) {
      auto [ec, socket] = co_await self->acceptor->async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (self->stopping || ec == asio::error::operation_aborted) co_return;
        log::warn("bgp.bmp_accept_failed", {{"check", self->check_id}, {"error", ec.message()}});
        continue;
      }
      boost::system::error_code rec;
      const auto remote = socket.remote_endpoint(rec);
      std::string router = rec ? "unknown" : remote.address().to_string();
      if (remote.address().is_v6() && remote.address().to_v6().is_v4_mapped()) {
        router = asio::ip::make_address_v4(asio::ip::v4_mapped, remote.address().to_v6()).to_string();
      }
      const auto& allowed = self->config.bmp->allowed_routers;
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), router) == allowed.end()) {
        log::warn("bgp.bmp_refused", {{"check", self->check_id}, {"router", router}});
        socket.close(rec);
        continue;
      }
      auto s = std::make_shared<tcp::socket>(std::move(socket));
      self->sessions.insert(s);
      asio::co_spawn(self->services.io, session(self, s, router), asio::detached);
    }
  }

  // One router's BMP stream. When it ends, the routes it reported are kept (the router sends
  // its whole table again when it reconnects, replacing them); a Peer Down message withdraws.
  static asio::awaitable<void> session(std::shared_ptr<Runtime> self, std::shared_ptr<tcp::socket> s,
                                       std::string router) {
    log::info("bgp.bmp_session_up", {{"check", self->check_id}, {"router", router}});
    vantage::bgp::BmpDecoder decoder(router);
    std::vector<std::uint8_t> buf(64 * 1024);
    std::vector<RouteEvent> events;
    std::size_t warned = 0;
    std::uint64_t bytes = 0;
    for (;;) {
      auto [ec, n] = co_await s->async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
      if (ec || self->stopping) {
        log::info("bgp.bmp_session_down",
                  {{"check", self->check_id}, {"router", router}, {"bytes", bytes},
                   {"reason", ec ? ec.message() : std::string("probe stopping")}});
        break;
      }
      bytes += n;
      events.clear();
      decoder.feed(buf.data(), n, events);
      for (; warned < decoder.warnings().size(); ++warned) {
        log::warn("bgp.bmp_warning", {{"check", self->check_id}, {"router", router},
                                      {"warning", decoder.warnings()[warned]}});
      }
      self->apply(events);
    }
    boost::system::error_code ignored;
    s->close(ignored);
    self->sessions.erase(s);
  }

  static constexpr std::chrono::seconds kSettle{2};

  // Starts reading the next MRT files that are complete (same size and mtime as at the previous
  // poll and two seconds old, or older than a minute). One worker thread at a time; events come back to the loop.
  void poll_mrt(bool first) {
    if (mrt_busy || stopping) return;
    std::vector<std::string> ready;
    std::error_code ec;
    std::map<std::string, std::pair<std::uintmax_t, fs::file_time_type>> seen;
    for (fs::directory_iterator it(config.mrt_dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      const std::string name = it->path().filename().string();
      if (mrt_done.count(name) || fnmatch(config.mrt_pattern.c_str(), name.c_str(), 0) != 0) continue;
      const auto size = it->file_size(ec);
      const auto mtime = it->last_write_time(ec);
      if (ec) continue;
      if (first && config.mrt_skip_existing) {
        mrt_done.insert(name);
        continue;
      }
      seen[name] = {size, mtime};
      const auto prev = mrt_seen.find(name);
      // Complete: unchanged since the previous poll and not written to for kSettle (a writer
      // that pauses between chunks), or not touched for a minute (there before the probe).
      const auto age = fs::file_time_type::clock::now() - mtime;
      const bool stable = prev != mrt_seen.end() && prev->second == seen[name] && age >= kSettle;
      if (stable || age > std::chrono::minutes(1)) ready.push_back(name);
    }
    if (ec) log::warn("bgp.mrt_dir_unreadable", {{"check", check_id}, {"dir", config.mrt_dir}, {"error", ec.message()}});
    mrt_seen = std::move(seen);
    if (ready.empty()) return;
    std::sort(ready.begin(), ready.end());  // collectors name files by time
    for (const auto& n : ready) {
      mrt_done.insert(n);
      mrt_seen.erase(n);
    }
    if (mrt_worker.joinable()) mrt_worker.join();
    mrt_busy = true;
    // The worker only reads the immutable expectations (monitored()), never the monitor's state.
    mrt_worker = std::thread([self = shared_from_this(), ready, cancel = mrt_cancel] {
      for (const auto& name : ready) {
        if (*cancel) break;
        auto events = std::make_shared<std::vector<RouteEvent>>();
        std::vector<std::string> warnings;
        const std::string path = (fs::path(self->config.mrt_dir) / name).string();
        std::uint64_t records = 0;
        try {
          vantage::bgp::MrtReader reader(path);
          // The directory is one collector's series: its peers are the same from file to file.
          vantage::bgp::RouteEventDecoder decoder(self->config.mrt_dir);
          vantage::bgp::MrtRecord record;
          std::vector<RouteEvent> all;
          while (!*cancel && reader.next(record)) {
            ++records;
            all.clear();
            decoder.decode(record, all);
            for (auto& e : all) {
              if (e.kind == RouteEvent::Kind::peer_down || self->monitor.monitored(e.prefix)) {
                events->push_back(std::move(e));
              }
            }
          }
          warnings = decoder.warnings();
          warnings.insert(warnings.end(), reader.warnings().begin(), reader.warnings().end());
        } catch (const std::exception& e) {
          warnings.push_back(e.what());
        }
        asio::post(self->services.io, [self, events, warnings, name, records] {
          for (const auto& w : warnings) {
            log::warn("bgp.mrt_warning", {{"check", self->check_id}, {"file", name}, {"warning", w}});
          }
          log::info("bgp.mrt_file_read", {{"check", self->check_id},
                                          {"file", name},
                                          {"records", records},
                                          {"events", static_cast<std::uint64_t>(events->size())}});
          if (!self->stopping) self->apply(*events);
        });
      }
      asio::post(self->services.io, [self] { self->mrt_busy = false; });
    });
  }

  void stop() {
    stopping = true;
    *mrt_cancel = true;
    boost::system::error_code ignored;
    if (acceptor) acceptor->close(ignored);
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
  if (config_.bmp) s += ", BMP on " + config_.bmp->address + ":" + std::to_string(config_.bmp->port);
  if (!config_.mrt_dir.empty()) s += ", MRT from " + config_.mrt_dir;
  return s;
}

void BgpCheck::start(Services& services) {
  if (runtime_) return;
  runtime_ = std::make_shared<Runtime>(services, common(), config_);
  if (config_.bmp) runtime_->start_bmp();
  if (!config_.mrt_dir.empty()) runtime_->poll_mrt(true);
}

asio::awaitable<std::vector<CheckResult>> BgpCheck::run(RunContext& ctx) {
  if (!runtime_) start(ctx.services);
  if (!config_.mrt_dir.empty()) runtime_->poll_mrt(false);
  co_return std::vector<CheckResult>{};
}

void BgpCheck::shutdown() {
  if (!runtime_) return;
  runtime_->stop();
  // The acceptor belongs to the event loop that is about to go: release it here. Sessions still
  // referenced by their coroutines die with the loop.
  runtime_->acceptor.reset();
  runtime_.reset();
}

CheckPtr make_bgp_check(CheckCommon common, const ConfigNode& node) {
  return std::make_unique<BgpCheck>(std::move(common), parse_bgp_config(node));
}

}  // namespace vantage::probe::checks::bgp
