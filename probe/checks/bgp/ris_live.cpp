#include "probe/checks/bgp/ris_live.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cmath>
#include <deque>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_set>
#include <variant>

#include "common/config_node.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "common/observation.hpp"
#include "common/time.hpp"
#include "probe/bgp/bmp.hpp"
#include "probe/check.hpp"
#include "probe/net/tls_inspect.hpp"
#include "probe/resolver_pool.hpp"
#include "probe/sinks/metrics_sink.hpp"

namespace vantage::probe::checks::bgp {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
namespace fs = std::filesystem;
using asio::ip::tcp;
using vantage::bgp::Prefix;
using vantage::bgp::RouteEvent;

namespace {

// Every step of a connection (resolve, connect, TLS, websocket handshake) gets this long.
constexpr std::chrono::seconds kStepTimeout{10};
// RIS Live messages without `raw` are a few hundred bytes; an UPDATE with thousands of prefixes
// stays far below this.
constexpr std::size_t kMaxMessageBytes = 4 * 1024 * 1024;
// Message ids remembered to recognise a repeat (a replaying server).
constexpr std::size_t kRecentIds = 65536;

bool url_safe(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
  });
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// Splits ws[s]://host[:port]/path?query into `c`; fails `node` with what is wrong.
void parse_url(const ConfigNode& node, RisLiveConfig& c) {
  const std::string url = node.as_nonempty_string();
  const auto scheme_end = url.find("://");
  std::string scheme = scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char ch) { return std::tolower(ch); });
  if (scheme != "ws" && scheme != "wss") {
    node.fail(scheme_end == std::string::npos
                  ? "expected a URL such as wss://ris-live.ripe.net/v1/ws/"
                  : "unsupported scheme \"" + scheme + "\" (use ws or wss)");
  }
  if (url.find('#') != std::string::npos) node.fail("a websocket URL has no fragment (#)");
  c.url = url;
  c.tls = scheme == "wss";
  const std::size_t start = scheme_end + 3;
  const std::size_t end = std::min(url.find('/', start), url.find('?', start));
  const std::string authority =
      url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (authority.find('@') != std::string::npos)
    node.fail("user information in the URL is not supported");
  std::string port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string::npos) node.fail("unterminated IPv6 address in the URL");
    c.host = authority.substr(1, close - 1);
    if (!is_ip_literal(c.host) || c.host.find(':') == std::string::npos) {
      node.fail("\"" + c.host + "\" in brackets is not an IPv6 address");
    }
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') node.fail("expected :port after the IPv6 address");
      port_text = authority.substr(close + 2);
    }
  } else {
    const auto colon = authority.find(':');
    c.host = authority.substr(0, colon);
    if (colon != std::string::npos) port_text = authority.substr(colon + 1);
  }
  if (c.host.empty()) node.fail("the URL names no host");
  c.port = c.tls ? 443 : 80;
  if (!port_text.empty()) {
    if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port_text) < 1 || std::stoi(port_text) > 65535) {
      node.fail("the port must be 1-65535");
    }
    c.port = static_cast<std::uint16_t>(std::stoi(port_text));
  }
  c.target = end == std::string::npos ? "/" : url.substr(end);
  if (c.target.front() == '?') c.target = "/" + c.target;
  const auto q = c.target.find('?');
  if (q != std::string::npos) {
    const std::string query = c.target.substr(q + 1);
    std::size_t pos = 0;
    while (pos <= query.size()) {
      const auto amp = std::min(query.find('&', pos), query.size());
      if (query.compare(pos, 7, "client=") == 0) c.client_in_url = true;
      pos = amp + 1;
    }
  }
}

std::string config_relative_file(const ConfigNode& node) {
  fs::path file = node.as_nonempty_string();
  if (file.is_relative()) file = (fs::path(node.file()).parent_path() / file).lexically_normal();
  if (!fs::is_regular_file(file)) node.fail("cannot read file \"" + file.string() + "\"");
  return file.string();
}

// The value of the first `"key": "value"` in `text` ("" when there is none). A sniff, not a
// parser: it lets the hot path skip a second JSON parse (the top-level type of RIS Live
// messages comes first, `id` appears once in `data`); whatever it cannot tell goes the slow way.
std::string_view sniff_string(std::string_view text, std::string_view quoted_key) {
  const auto k = text.find(quoted_key);
  if (k == std::string_view::npos) return {};
  std::size_t i = k + quoted_key.size();
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  if (i >= text.size() || text[i] != ':') return {};
  ++i;
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  if (i >= text.size() || text[i] != '"') return {};
  const auto close = text.find('"', i + 1);
  if (close == std::string_view::npos) return {};
  const std::string_view value = text.substr(i + 1, close - i - 1);
  if (value.find('\\') != std::string_view::npos) return {};
  return value;
}

// A bounded set of recently seen message ids, as 64-bit hashes: a new id is taken for a repeat
// only if its hash equals one of the last kRecentIds, a chance of about 4e-15 per message.
class RecentIds {
 public:
  // False when `id` was seen already.
  bool insert(std::string_view id) {
    const std::uint64_t h = std::hash<std::string_view>{}(id);
    if (!seen_.insert(h).second) return false;
    order_.push_back(h);
    if (order_.size() > kRecentIds) {
      seen_.erase(order_.front());
      order_.pop_front();
    }
    return true;
  }

 private:
  std::unordered_set<std::uint64_t> seen_;
  std::deque<std::uint64_t> order_;
};

// /metrics: one set of families for every RIS Live client of the process, labelled by check.
// MetricsSink keeps what it is given for its lifetime, so each sink gets the families once.
struct MetricsRegistry {
  std::mutex mutex;
  std::map<sinks::MetricsSink*, int> sinks;  // clients registered with it
  std::vector<std::pair<std::string, std::weak_ptr<const RisLiveStats>>> clients;

  template <typename F>
  std::map<std::string, double> per_check(F value) {
    std::lock_guard lock(mutex);
    std::map<std::string, double> out;
    for (const auto& [check, weak] : clients) {
      if (auto s = weak.lock()) out[check] += value(*s);
    }
    return out;
  }

  void add(sinks::MetricsSink* sink, const std::string& check,
           std::weak_ptr<const RisLiveStats> stats) {
    {
      std::lock_guard lock(mutex);
      clients.emplace_back(check, std::move(stats));
      if (!sink || sinks[sink]++ > 0) return;
    }
    auto counter = [sink](const char* name, const char* help, auto value) {
      sink->add_labelled_counter(name, help, "check",
                                 [value] { return registry().per_check(value); });
    };
    counter("vantage_bgp_ris_live_messages_total",
            "RIS Live ris_message received (repeats included)",
            [](const RisLiveStats& s) { return static_cast<double>(s.messages); });
    counter("vantage_bgp_ris_live_duplicates_total",
            "RIS Live messages dropped because their id was seen already (a replaying server)",
            [](const RisLiveStats& s) { return static_cast<double>(s.duplicates); });
    counter("vantage_bgp_ris_live_invalid_messages_total",
            "RIS Live messages that could not be read (not JSON, not RIS Live, binary)",
            [](const RisLiveStats& s) { return static_cast<double>(s.invalid); });
    counter("vantage_bgp_ris_live_server_errors_total",
            "ris_error messages received from the RIS Live server",
            [](const RisLiveStats& s) { return static_cast<double>(s.server_errors); });
    counter("vantage_bgp_ris_live_reconnects_total",
            "RIS Live connection attempts after the first (each follows a failure or a lost "
            "connection)",
            [](const RisLiveStats& s) { return static_cast<double>(s.reconnects); });
    counter("vantage_bgp_ris_live_gaps_total",
            "RIS Live gaps: a connection the server had spoken on was lost and a new one is up "
            "(what was sent in "
            "between is missed)",
            [](const RisLiveStats& s) { return static_cast<double>(s.gaps); });
    counter("vantage_bgp_ris_live_gap_seconds_total", "Total length of those gaps",
            [](const RisLiveStats& s) { return s.gap_seconds; });
    sink->add_gauge("vantage_bgp_ris_live_connected",
                    "bgp checks whose RIS Live websocket is connected and subscribed now",
                    [] { return total_connected(); });
  }

  static double total_connected() {
    double n = 0;
    for (const auto& [check, v] :
         registry().per_check([](const RisLiveStats& s) { return s.connected ? 1.0 : 0.0; })) {
      n += v;
    }
    return n;
  }

  void remove(sinks::MetricsSink* sink, const RisLiveStats* stats) {
    std::lock_guard lock(mutex);
    std::erase_if(clients, [&](const auto& c) {
      auto s = c.second.lock();
      return !s || s.get() == stats;
    });
    if (sink && --sinks[sink] <= 0) sinks.erase(sink);
  }

  static MetricsRegistry& registry() {
    static MetricsRegistry r;
    return r;
  }
};

std::string subscribe_message(const nlohmann::json& data) {
  nlohmann::json j{{"type", "ris_subscribe"}, {"data", data}};
  j["data"]["socketOptions"] = {{"includeRaw", false}, {"acknowledge", true}};
  return j.dump();
}

}  // namespace

RisLiveConfig parse_ris_live_config(const ConfigNode& node,
                                    const vantage::bgp::Expectations& expectations) {
  node.expect_keys({"url", "client", "prefixes", "peer_state", "ca_file", "reconnect",
                    "ping_interval", "gap_expiry"});
  RisLiveConfig c;
  parse_url(node.require("url"), c);
  if (auto v = node.get("client")) {
    c.client = v->as_nonempty_string();
    if (!url_safe(c.client)) v->fail("use letters, digits, '-', '.', '_' and '~' only");
    if (c.client_in_url) v->fail("the url names a client already (?client=): give it in one place");
  }
  auto covering = [&](const Prefix& p) {
    return std::any_of(
        expectations.prefixes.begin(), expectations.prefixes.end(),
        [&](const vantage::bgp::MonitoredPrefix& m) { return m.prefix.contains(p); });
  };
  if (auto v = node.get("prefixes")) {
    const auto items = v->items();
    if (items.empty())
      v->fail("an empty list subscribes to nothing (leave prefixes out for the prefixes file's)");
    for (const auto& item : items) {
      const std::string text = item.as_nonempty_string();
      auto p = Prefix::parse(text);
      if (!p)
        item.fail("\"" + text +
                  "\" is not a prefix like 192.0.2.0/24 or 2001:db8::/32 (host bits must be zero)");
      if (!covering(*p))
        item.fail(text + " is neither a monitored prefix nor a more-specific of one");
      if (std::find(c.prefixes.begin(), c.prefixes.end(), *p) != c.prefixes.end())
        item.fail(text + " is listed twice");
      c.prefixes.push_back(*p);
    }
  } else {
    // The prefixes file's, without those a less specific one of it covers already (moreSpecific
    // brings them) and without those it ignores.
    for (const auto& m : expectations.prefixes) {
      if (m.ignore) continue;
      const bool covered = std::any_of(
          expectations.prefixes.begin(), expectations.prefixes.end(), [&](const auto& o) {
            return !o.ignore && !(o.prefix == m.prefix) && o.prefix.contains(m.prefix);
          });
      if (!covered) c.prefixes.push_back(m.prefix);
    }
    if (c.prefixes.empty())
      node.fail("every prefix of the prefixes file has ignore: true: nothing to subscribe to");
  }
  if (auto v = node.get("peer_state")) c.peer_state = v->as_bool();
  if (auto v = node.get("ca_file")) {
    if (!c.tls) v->fail("ca_file needs a wss:// url");
    c.ca_file = config_relative_file(*v);
    std::string error;
    if (!net::check_ca_file(c.ca_file, error)) v->fail(error);
  }
  if (auto r = node.get("reconnect")) {
    r->expect_keys({"initial", "max"});
    if (auto v = r->get("initial"))
      c.reconnect_initial = v->as_duration(std::chrono::milliseconds(10), std::chrono::hours(1));
    if (auto v = r->get("max"))
      c.reconnect_max = v->as_duration(std::chrono::milliseconds(10), std::chrono::hours(1));
    if (c.reconnect_max < c.reconnect_initial) {
      (r->get("max") ? *r->get("max") : *r)
          .fail("max " + format_duration(c.reconnect_max) + " is shorter than initial " +
                format_duration(c.reconnect_initial));
    }
  }
  if (auto v = node.get("ping_interval"))
    c.ping_interval = v->as_duration(std::chrono::seconds(1), std::chrono::minutes(10));
  if (auto v = node.get("gap_expiry"))
    c.gap_expiry = v->as_duration(std::chrono::seconds(1), std::chrono::hours(24 * 7));
  return c;
}

// ---------------------------------------------------------------------------------------------

struct RisLiveClient::Impl : std::enable_shared_from_this<RisLiveClient::Impl> {
  using PlainWs = websocket::stream<beast::tcp_stream>;
  using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

  Impl(Services& s, std::string id, RisLiveConfig c, EventsFn e, GapFn g)
      : services(s),
        check_id(std::move(id)),
        config(std::move(c)),
        on_events(std::move(e)),
        on_gap(std::move(g)) {}

  Services& services;
  std::string check_id;
  RisLiveConfig config;
  EventsFn on_events;
  GapFn on_gap;
  std::shared_ptr<RisLiveStats> stats = std::make_shared<RisLiveStats>();
  sinks::MetricsSink* metrics = nullptr;  // registered with (null: none)
  bool registered = false;
  std::vector<std::string> subscribe_messages;
  std::string target;       // path and query, with the client parameter
  std::string host_header;  // host[:port]
  std::unique_ptr<ssl::context> tls;
  std::unique_ptr<asio::steady_timer> pause;  // the back-off between connections
  beast::tcp_stream* current = nullptr;       // the TCP layer of the connection in progress
  bool stopping = false;
  // Gaps: a connection on which the server had spoken RIS Live was lost at `lost_at`; the gap
  // ends when the next connection does (its acknowledgements come before its messages).
  bool gap_pending = false;
  SteadyTime lost_at{};
  RecentIds recent;
  // At most one line per 10 s per kind of trouble, with the count of those left out.
  log::RateLimited connection_log{std::chrono::seconds(10)};
  log::RateLimited connected_log{std::chrono::seconds(10)};
  log::RateLimited gap_log{std::chrono::seconds(10)};
  log::RateLimited message_log{std::chrono::seconds(10)};
  log::RateLimited server_error_log{std::chrono::seconds(10)};
  std::string line;                // the message being decoded (parse_ris_live_line takes a string)
  std::vector<RouteEvent> events;  // its events

  void start() {
    const std::string client =
        config.client.empty()
            ? "vantage-" + (services.vantage ? services.vantage->probe_id : std::string("probe"))
            : config.client;
    target = config.target;
    if (!config.client_in_url)
      target += (target.find('?') == std::string::npos ? "?" : "&") + ("client=" + client);
    const bool v6 = config.host.find(':') != std::string::npos;
    host_header = v6 ? "[" + config.host + "]" : config.host;
    if (config.port != (config.tls ? 443 : 80)) host_header += ":" + std::to_string(config.port);
    for (const auto& p : config.prefixes) {
      subscribe_messages.push_back(subscribe_message({{"type", "UPDATE"},
                                                      {"prefix", p.to_string()},
                                                      {"moreSpecific", true},
                                                      {"lessSpecific", false}}));
    }
    // Peer sessions going down withdraw their routes; prefix filters do not match these.
    if (config.peer_state)
      subscribe_messages.push_back(subscribe_message({{"type", "RIS_PEER_STATE"}}));
    if (config.tls) {
      tls = std::make_unique<ssl::context>(ssl::context::tls_client);
      boost::system::error_code ec;
      if (config.ca_file.empty()) {
        tls->set_default_verify_paths(ec);
      } else {
        tls->load_verify_file(config.ca_file, ec);
      }
      if (ec) throw std::runtime_error("RIS Live TLS trust store: " + ec.message());
      tls->set_verify_mode(ssl::verify_peer);
    }
    pause = std::make_unique<asio::steady_timer>(services.io);
    metrics = services.metrics;
    MetricsRegistry::registry().add(metrics, check_id, stats);
    registered = true;
    spawn();
  }

  // The connection loop, restarted (after a pause) should it ever end by an exception.
  void spawn() {
    asio::co_spawn(
        services.io, run(shared_from_this()), [weak = weak_from_this()](std::exception_ptr e) {
          auto self = weak.lock();
          if (!self || !e || self->stopping) return;
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            log::error("bgp.ris_live_failed", {{"check", self->check_id}, {"error", x.what()}});
          }
          self->pause->expires_after(self->config.reconnect_max);
          self->pause->async_wait([weak](const boost::system::error_code& ec) {
            auto s = weak.lock();
            if (s && !ec && !s->stopping) s->spawn();
          });
        });
  }

  void stop() {
    stopping = true;
    if (current) current->close();
    if (pause) pause->cancel();
    stats->connected = false;
  }

  void release() {
    stop();
    pause.reset();
    if (registered) MetricsRegistry::registry().remove(metrics, stats.get());
    registered = false;
  }

  // Exponential back-off with jitter: after `failures` attempts in a row that got nothing
  // useful, initial * 2^failures capped at max, drawn uniformly from its upper half (so that
  // probes restarted together do not reconnect in step).
  std::chrono::nanoseconds backoff(int failures) {
    const double base = std::min(static_cast<double>(config.reconnect_max.count()),
                                 static_cast<double>(config.reconnect_initial.count()) *
                                     std::pow(2.0, std::min(failures, 40)));
    return std::chrono::nanoseconds(
        static_cast<std::int64_t>(base * (0.5 + 0.5 * services.ids.unit())));
  }

  static asio::awaitable<void> run(std::shared_ptr<Impl> self) {
    int failures = 0;
    for (bool first = true; !self->stopping; first = false) {
      if (!first) ++self->stats->reconnects;
      bool healthy = false;  // the server spoke RIS Live on this connection
      // (Not `tls ? co_await … : co_await …`: GCC 12 destroys the result of a co_await in a
      // conditional expression twice.)
      std::string reason;
      if (self->config.tls) {
        reason = co_await self->attempt<TlsWs>(healthy);
      } else {
        reason = co_await self->attempt<PlainWs>(healthy);
      }
      self->current = nullptr;
      self->stats->connected = false;
      if (self->stopping) break;
      failures = healthy ? 0 : failures + 1;
      const auto delay = self->backoff(healthy ? 0 : failures - 1);
      self->connection_log.write(
          log::Level::warn, "bgp.ris_live_disconnected",
          {{"check", self->check_id},
           {"url", self->config.url},
           {"reason", reason},
           {"retry_in_ms", std::chrono::duration_cast<std::chrono::milliseconds>(delay).count()}});
      self->pause->expires_after(delay);
      co_await self->pause->async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  template <class Ws>
  Ws make_stream() {
    if constexpr (std::is_same_v<Ws, TlsWs>) {
      return Ws(services.io, *tls);
    } else {
      return Ws(services.io);
    }
  }

  // One connection, from name resolution to its end; returns why it ended.
  template <class Ws>
  asio::awaitable<std::string> attempt(bool& healthy) {
    const Resolution resolved = co_await services.resolvers.resolve(
        config.host, IpFamily::any, {}, services.clock.steady_now() + kStepTimeout);
    if (stopping) co_return "stopping";
    if (resolved.failure)
      co_return "cannot resolve " + config.host + ": " + resolved.failure->detail;
    Ws ws = make_stream<Ws>();
    beast::tcp_stream& layer = beast::get_lowest_layer(ws);
    current = &layer;
    struct Forget {
      Impl* impl;
      ~Forget() { impl->current = nullptr; }
    } forget{this};

    std::string error = "no address";
    bool connected = false;
    for (const auto& a : resolved.addresses) {
      boost::system::error_code aec;
      const auto address = asio::ip::make_address(a, aec);
      if (aec) continue;
      layer.expires_after(kStepTimeout);
      auto [ec] = co_await layer.async_connect(tcp::endpoint(address, config.port),
                                               asio::as_tuple(asio::use_awaitable));
      if (stopping) co_return "stopping";
      if (!ec) {
        connected = true;
        break;
      }
      error = a + " port " + std::to_string(config.port) + ": " +
              (ec == beast::error::timeout ? "timed out" : ec.message());
      layer.socket().close(aec);
    }
    if (!connected) co_return "connect: " + error;
    boost::system::error_code ignored;
    layer.socket().set_option(tcp::no_delay(true), ignored);

    if constexpr (std::is_same_v<Ws, TlsWs>) {
      auto& stream = ws.next_layer();
      // SNI for names; the certificate must name the host (or its address, for a literal).
      // (SSL_set_tlsext_host_name is a macro with a C cast: its expansion, without the cast.)
      if (!is_ip_literal(config.host)) {
        SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(config.host.c_str()));
      }
      stream.set_verify_callback(ssl::host_name_verification(config.host));
      layer.expires_after(kStepTimeout);
      auto [ec] = co_await stream.async_handshake(ssl::stream_base::client,
                                                  asio::as_tuple(asio::use_awaitable));
      if (stopping) co_return "stopping";
      if (ec)
        co_return "TLS: " + (ec == beast::error::timeout ? std::string("timed out") : ec.message());
    }

    // From here the websocket's own timers take over: the handshake deadline, and an idle
    // limit with keep-alive pings (no data for ping_interval: a websocket ping; none for twice
    // that: the connection is given up).
    layer.expires_never();
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = kStepTimeout;
    // (Beast pings after half the idle timeout without data and gives up after all of it.)
    timeouts.idle_timeout = 2 * config.ping_interval;
    timeouts.keep_alive_pings = true;
    ws.set_option(timeouts);
    ws.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
      req.set(beast::http::field::user_agent, "vantage-probe");
    }));
    ws.read_message_max(kMaxMessageBytes);
    websocket::response_type response;
    {
      auto [ec] = co_await ws.async_handshake(response, host_header, target,
                                              asio::as_tuple(asio::use_awaitable));
      if (stopping) co_return "stopping";
      if (ec) {
        std::string why = "websocket handshake: " +
                          (ec == beast::error::timeout ? std::string("timed out") : ec.message());
        if (response.result_int() != 0)
          why += " (HTTP " + std::to_string(response.result_int()) + ")";
        co_return why;
      }
    }
    ++stats->connects;
    ws.text(true);
    for (const auto& m : subscribe_messages) {
      auto [ec, n] = co_await ws.async_write(asio::buffer(m), asio::as_tuple(asio::use_awaitable));
      if (stopping) co_return "stopping";
      if (ec) co_return "subscribe: " + ec.message();
    }
    stats->connected = true;
    connected_log.write(log::Level::info, "bgp.ris_live_subscribed",
                        {{"check", check_id},
                         {"url", config.url},
                         {"subscriptions", static_cast<std::int64_t>(subscribe_messages.size())}});

    using namespace asio::experimental::awaitable_operators;
    const auto ended = co_await (read_loop(ws, healthy) || ping_loop(ws));
    if (healthy) {
      gap_pending = true;
      lost_at = services.clock.steady_now();
    }
    stats->connected = false;
    co_return std::visit([](const std::string& s) { return s; }, ended);
  }

  template <class Ws>
  asio::awaitable<std::string> read_loop(Ws& ws, bool& healthy) {
    beast::flat_buffer buffer;
    std::string reason;
    for (;;) {
      auto [ec, n] = co_await ws.async_read(buffer, asio::as_tuple(asio::use_awaitable));
      if (stopping) {
        reason = "stopping";
        break;
      }
      if (ec) {
        if (ec == websocket::error::closed) {
          const auto& why = ws.reason();
          reason = "closed by the server (code " + std::to_string(static_cast<int>(why.code)) +
                   (why.reason.empty() ? "" : ": " + std::string(why.reason.c_str())) + ")";
        } else if (ec == beast::error::timeout) {
          reason =
              "nothing received for " +
              std::to_string(
                  2 *
                  std::chrono::duration_cast<std::chrono::seconds>(config.ping_interval).count()) +
              " s";
        } else {
          reason = ec.message();
        }
        break;
      }
      const auto data = buffer.cdata();
      const std::string_view text(static_cast<const char*>(data.data()), data.size());
      if (ws.got_text()) {
        handle(text, healthy);
      } else {
        invalid("a binary message", text);
      }
      buffer.consume(buffer.size());
    }
    // Ends the ping loop's write, if one is pending.
    beast::get_lowest_layer(ws).close();
    co_return reason;
  }

  template <class Ws>
  asio::awaitable<std::string> ping_loop(Ws& ws) {
    static const std::string kPing = R"({"type":"ping"})";
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
      timer.expires_after(config.ping_interval);
      auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (ec || stopping) co_return "stopping";
      auto [wec, n] =
          co_await ws.async_write(asio::buffer(kPing), asio::as_tuple(asio::use_awaitable));
      if (wec) {
        beast::get_lowest_layer(ws).close();
        co_return "ping: " + wec.message();
      }
    }
  }

  // The server spoke RIS Live on this connection for the first time: a gap before it ends now,
  // and the check hears of it before any of this connection's messages.
  void mark_healthy(bool& healthy) {
    if (healthy) return;
    healthy = true;
    if (!gap_pending) return;
    gap_pending = false;
    const auto gap = services.clock.steady_now() - lost_at;
    const double seconds = std::chrono::duration<double>(gap).count();
    ++stats->gaps;
    stats->gap_seconds += seconds;
    gap_log.write(log::Level::warn, "bgp.ris_live_gap",
                  {{"check", check_id},
                   {"seconds", seconds},
                   {"detail", "what was sent while disconnected is not replayed by RIS Live"}});
    if (on_gap) on_gap(gap);
  }

  void invalid(const std::string& why, std::string_view text) {
    ++stats->invalid;
    message_log.write(
        log::Level::warn, "bgp.ris_live_invalid_message",
        {{"check", check_id}, {"reason", why}, {"message", std::string(text.substr(0, 200))}});
  }

  // One websocket message from the server.
  void handle(std::string_view text, bool& healthy) {
    if (sniff_string(text, "\"type\"") == "ris_message") {
      ris_message(text, healthy);
      return;
    }
    // Everything else is rare (acknowledgements, pongs, errors): parse it properly.
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    const auto type = j.is_object() ? j.find("type") : j.end();
    if (j.is_discarded() || !j.is_object() || type == j.end() || !type->is_string()) {
      invalid(j.is_discarded() ? "not JSON" : "not a RIS Live message (no type)", text);
      return;
    }
    const std::string& t = type->get_ref<const std::string&>();
    if (t == "ris_message") {
      ris_message(text, healthy);
    } else if (t == "ris_subscribe_ok" || t == "pong") {
      mark_healthy(healthy);
    } else if (t == "ris_error") {
      ++stats->server_errors;
      std::string message = "(no message)";
      if (auto d = j.find("data"); d != j.end() && d->is_object()) {
        if (auto m = d->find("message"); m != d->end() && m->is_string())
          message = m->get<std::string>();
      }
      server_error_log.write(log::Level::warn, "bgp.ris_live_server_error",
                             {{"check", check_id}, {"message", message}});
    } else {
      invalid("unknown message type \"" + t + "\"", text);
    }
  }

  void ris_message(std::string_view text, bool& healthy) {
    ++stats->messages;
    const std::string_view id = sniff_string(text, "\"id\"");
    if (!id.empty() && !recent.insert(id)) {
      mark_healthy(healthy);
      ++stats->duplicates;
      return;
    }
    line.assign(text);
    events.clear();
    std::string warning;
    vantage::bgp::parse_ris_live_line(line, events, warning);
    if (!warning.empty()) {
      invalid(warning, text);
      return;
    }
    mark_healthy(healthy);
    if (!events.empty() && on_events) on_events(events);
  }
};

RisLiveClient::RisLiveClient(Services& services, std::string check_id, RisLiveConfig config,
                             EventsFn on_events, GapFn on_gap)
    : impl_(std::make_shared<Impl>(services, std::move(check_id), std::move(config),
                                   std::move(on_events), std::move(on_gap))) {}

RisLiveClient::~RisLiveClient() {
  if (impl_) impl_->release();
}

void RisLiveClient::start() { impl_->start(); }
void RisLiveClient::stop() { impl_->stop(); }
void RisLiveClient::release() { impl_->release(); }
const RisLiveStats& RisLiveClient::stats() const noexcept { return *impl_->stats; }
std::vector<std::string> RisLiveClient::subscriptions() const { return impl_->subscribe_messages; }

// ---------------------------------------------------------------------------------------------

namespace {

vantage::bgp::Expectations judging(vantage::bgp::Expectations e) {
  e.min_peers = 1;
  e.resolve_hold_us = 0;
  return e;
}

}  // namespace

RisLiveRoutes::RisLiveRoutes(const vantage::bgp::Expectations& expectations,
                             const vantage::bgp::AsRelationships* relationships,
                             const vantage::bgp::Vrps* vrps)
    : judge_(judging(expectations), relationships, vrps) {}

std::size_t RisLiveRoutes::KeyHash::operator()(const Key& k) const noexcept {
  // FNV-1a over the fields.
  std::uint64_t h = 14695981039346656037ull;
  auto mix = [&h](const void* data, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  mix(k.collector.data(), k.collector.size());
  mix(k.peer.bytes.data(), k.peer.bytes.size());
  mix(&k.peer_asn, sizeof k.peer_asn);
  mix(k.prefix.addr.bytes.data(), k.prefix.addr.bytes.size());
  const unsigned char tail[3] = {k.peer.v6, k.prefix.addr.v6, k.prefix.length};
  mix(tail, sizeof tail);
  return static_cast<std::size_t>(h);
}

RisLiveRoutes::Key RisLiveRoutes::key_of(const RouteEvent& e) {
  return Key{e.collector, e.peer_ip, e.peer_asn, e.prefix};
}

void RisLiveRoutes::seen(RouteEvent&& e) {
  switch (e.kind) {
    case RouteEvent::Kind::announce: {
      const vantage::bgp::MonitoredPrefix* m = judge_.monitored(e.prefix);
      if (!m || m->ignore) break;
      Key key = key_of(e);
      routes_.insert_or_assign(std::move(key), Route{std::move(e), epoch_, std::nullopt});
      break;
    }
    case RouteEvent::Kind::withdraw:
      routes_.erase(key_of(e));
      break;
    case RouteEvent::Kind::peer_down:
      std::erase_if(routes_, [&](const auto& r) {
        return r.first.collector == e.collector && r.first.peer == e.peer_ip &&
               r.first.peer_asn == e.peer_asn;
      });
      break;
    default:
      break;
  }
}

void RisLiveRoutes::gap(std::int64_t now_us, std::int64_t expiry_us) {
  ++epoch_;
  auto& e = expiries_[now_us + expiry_us];
  e = std::max(e, epoch_);
}

std::optional<std::int64_t> RisLiveRoutes::next_expiry() const {
  if (expiries_.empty()) return std::nullopt;
  return expiries_.begin()->first;
}

bool RisLiveRoutes::carries_issue(const RouteEvent& announcement) {
  // The route alone in judge_: whatever it opens (but visibility) is its issue, by the same
  // rules as the check's monitor. Withdrawn at once, it leaves judge_ empty again (no resolve
  // hold): the next route is judged alone too.
  std::vector<vantage::bgp::Alert> alerts;
  judge_.observe(announcement, alerts);
  const bool issue = std::any_of(alerts.begin(), alerts.end(), [](const vantage::bgp::Alert& a) {
    return !a.resolved && a.kind != vantage::bgp::Alert::Kind::visibility_loss;
  });
  RouteEvent withdrawal = announcement;
  withdrawal.kind = RouteEvent::Kind::withdraw;
  judge_.observe(withdrawal, alerts);
  return issue;
}

std::vector<RouteEvent> RisLiveRoutes::expire(std::int64_t now_us) {
  std::vector<RouteEvent> out;
  std::uint64_t before = 0;  // routes last confirmed before this epoch are due
  while (!expiries_.empty() && expiries_.begin()->first <= now_us) {
    before = std::max(before, expiries_.begin()->second);
    expiries_.erase(expiries_.begin());
  }
  if (before == 0) return out;
  for (auto it = routes_.begin(); it != routes_.end();) {
    Route& r = it->second;
    if (r.epoch < before && !r.issue) r.issue = carries_issue(r.announcement);
    if (r.epoch < before && *r.issue) {
      RouteEvent w = r.announcement;
      w.kind = RouteEvent::Kind::withdraw;
      w.time_us = now_us;
      w.path.clear();
      w.origin.reset();
      w.origin_set.clear();
      w.communities.clear();
      w.large_communities.clear();
      w.only_to_customer.reset();
      out.push_back(std::move(w));
      it = routes_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

}  // namespace vantage::probe::checks::bgp
