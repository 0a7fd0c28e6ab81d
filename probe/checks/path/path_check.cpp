#include "probe/checks/path/path_check.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "common/config_node.hpp"
#include "common/ids.hpp"
#include "common/log.hpp"
#include "probe/checks/common_config.hpp"

namespace vantage::probe::checks::path {

namespace asio = boost::asio;
namespace trace = net::trace;

std::uint16_t PathConfig::effective_port() const {
  if (port != 0) return port;
  return protocol == trace::Protocol::tcp ? 443 : 33434;
}

PathConfig parse_path_config(const ConfigNode& node) {
  expect_check_keys(node,
                    {"host", "protocol", "port", "ip_family", "resolvers", "first_ttl", "max_hops",
                     "probes_per_hop", "parallel_hops", "max_silent_hops", "hop_timeout"});
  PathConfig c;
  c.host = node.require("host").as_nonempty_string();
  if (auto v = node.get("protocol")) {
    const std::string p = v->as_enum({"udp", "icmp", "tcp"});
    c.protocol = p == "icmp"  ? trace::Protocol::icmp
                 : p == "tcp" ? trace::Protocol::tcp
                              : trace::Protocol::udp;
  }
  if (auto v = node.get("port")) {
    if (c.protocol == trace::Protocol::icmp) v->fail("icmp probes have no port");
    c.port = static_cast<std::uint16_t>(v->as_int(1, 65535));
  }
  if (auto v = node.get("ip_family")) c.ip_family = parse_ip_family(*v);
  if (auto v = node.get("resolvers")) c.resolvers = parse_resolvers(*v, true);
  if (auto v = node.get("first_ttl")) c.first_ttl = static_cast<int>(v->as_int(1, 255));
  if (auto v = node.get("max_hops")) c.max_hops = static_cast<int>(v->as_int(1, 255));
  if (auto v = node.get("probes_per_hop")) c.probes_per_hop = static_cast<int>(v->as_int(1, 10));
  if (auto v = node.get("parallel_hops")) c.parallel_hops = static_cast<int>(v->as_int(1, 32));
  if (auto v = node.get("max_silent_hops")) {
    c.max_silent_hops = static_cast<int>(v->as_int(1, 255));
  }
  if (auto v = node.get("hop_timeout")) {
    c.hop_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
        v->as_duration(std::chrono::milliseconds(10), std::chrono::seconds(60)));
  }
  if (c.first_ttl > c.max_hops) {
    node.require("first_ttl")
        .fail("must not be above max_hops (" + std::to_string(c.max_hops) + ")");
  }
  return c;
}

namespace {

nlohmann::json reply_json(const trace::Reply& r) {
  nlohmann::json j = {{"from", trace::to_string(r.from)}, {"reply", trace::to_string(r.kind)}};
  const bool icmp = r.kind == trace::ReplyKind::time_exceeded ||
                    r.kind == trace::ReplyKind::unreachable ||
                    r.kind == trace::ReplyKind::echo_reply;
  if (icmp) {
    j["icmp_type"] = r.icmp_type;
    j["icmp_code"] = r.icmp_code;
    j["icmp_name"] = trace::icmp_name(r.from.v6, r.icmp_type, r.icmp_code);
  }
  return j;
}

double round3(double ms) {
  return static_cast<double>(static_cast<long long>(ms * 1000 + 0.5)) / 1000;
}

FailureType failure_of(trace::StopReason stop) {
  switch (stop) {
    case trace::StopReason::reached:
      return FailureType::ok;
    case trace::StopReason::unreachable:
      return FailureType::tcp_address_unreachable;
    case trace::StopReason::no_reply:
    case trace::StopReason::max_hops:
      return FailureType::tcp_timed_out;
    case trace::StopReason::loop:
      return FailureType::tcp_failed;
    case trace::StopReason::deadline:
      return FailureType::timeout;
    case trace::StopReason::not_permitted:
    case trace::StopReason::error:
      return FailureType::unknown;
  }
  return FailureType::unknown;
}

// CAP_NET_RAW is tested once per process; the path checks that start without it are named in
// one log line, written once the event loop runs (after every check's start()).
struct Capability {
  bool tested = false;
  std::error_code missing;
  std::vector<std::string> pending_ids;
};
Capability& capability() {
  static Capability c;
  return c;
}

}  // namespace

nlohmann::json path_record(const std::string& id, const std::string& check_id, UtcTime started,
                           const std::string& trace_id, const PathConfig& config,
                           const std::string& server_ip, const trace::TraceResult& t) {
  nlohmann::json hops = nlohmann::json::array();
  std::vector<std::string> addresses;  // the data plane's path: answering addresses in order
  for (const auto& h : t.hops) {
    nlohmann::json hop = {{"ttl", h.ttl},
                          {"sent", h.sent()},
                          {"received", h.received()},
                          {"loss_percent", round3(h.loss_percent())}};
    nlohmann::json rtts = nlohmann::json::array();
    for (const auto& p : h.probes) {
      if (p.rtt_ms) {
        rtts.push_back(round3(*p.rtt_ms));
      } else {
        rtts.push_back(nullptr);
      }
    }
    hop["rtts_ms"] = std::move(rtts);
    if (const auto a = h.address()) {
      hop["address"] = trace::to_string(*a);
      const auto all = h.addresses();
      if (all.size() > 1) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& x : all) list.push_back(trace::to_string(x));
        hop["addresses"] = std::move(list);
      }
      // The first answer's ICMP type/code and label stack stand for the hop.
      for (const auto& p : h.probes) {
        if (!p.reply) continue;
        const auto j = reply_json(*p.reply);
        hop["reply"] = j["reply"];
        if (j.contains("icmp_type")) {
          hop["icmp_type"] = j["icmp_type"];
          hop["icmp_code"] = j["icmp_code"];
          hop["icmp_name"] = j["icmp_name"];
        }
        if (!p.reply->mpls.empty()) {
          nlohmann::json labels = nlohmann::json::array();
          for (const auto& l : p.reply->mpls) {
            labels.push_back({{"label", l.label},
                              {"traffic_class", l.traffic_class},
                              {"bottom_of_stack", l.bottom_of_stack},
                              {"ttl", l.ttl}});
          }
          hop["mpls"] = std::move(labels);
        }
        break;
      }
      addresses.push_back(trace::to_string(*a));
    } else {
      addresses.push_back("*");
    }
    hops.push_back(std::move(hop));
  }
  nlohmann::json stop = {{"reason", trace::to_string(t.stop)}, {"ttl", t.stop_ttl}};
  if (!t.detail.empty()) stop["detail"] = t.detail;
  if (t.stop_reply) stop.update(reply_json(*t.stop_reply));
  nlohmann::json j = {
      {"kind", "path_result"},
      {"id", id},
      {"check", check_id},
      {"time", format_rfc3339(started)},
      {"target",
       {{"host", config.host}, {"server_ip", server_ip}, {"port", config.effective_port()}}},
      {"protocol", trace::to_string(config.protocol)},
      {"stop", std::move(stop)},
      {"hops", std::move(hops)},
      {"duration_ms", round3(t.duration_ms)},
  };
  if (config.protocol == trace::Protocol::icmp) j["target"].erase("port");
  if (!trace_id.empty()) j["trace_id"] = trace_id;
  if (!t.hops.empty() || t.stop == trace::StopReason::reached) {
    j["source_ip"] = trace::to_string(t.flow.source);
    if (config.protocol != trace::Protocol::icmp) j["source_port"] = t.flow.source_port;
  }
  return j;
}

PathCheck::PathCheck(CheckCommon common, PathConfig config)
    : Check(std::move(common)), config_(std::move(config)) {}

std::string PathCheck::describe() const {
  std::string out = "path " + std::string(trace::to_string(config_.protocol)) + " " + config_.host;
  if (config_.protocol != trace::Protocol::icmp) {
    out += ":" + std::to_string(config_.effective_port());
  }
  return out;
}

CheckPtr make_path_check(CheckCommon common, const ConfigNode& node) {
  return std::make_unique<PathCheck>(std::move(common), parse_path_config(node));
}

void PathCheck::start(Services& services) {
  Capability& cap = capability();
  if (!cap.tested) {
    cap.tested = true;
    cap.missing = trace::raw_socket_permission();
  }
  if (!cap.missing) return;
  cap.pending_ids.push_back(id());
  if (cap.pending_ids.size() > 1) return;  // the line is already posted
  asio::post(services.io, [] {
    Capability& c = capability();
    std::string ids;
    for (const auto& i : c.pending_ids) ids += (ids.empty() ? "" : ",") + i;
    log::warn("path.no_cap_net_raw",
              {{"capability", "CAP_NET_RAW"},
               {"checks", ids},
               {"error", c.missing.message()},
               {"message",
                "path checks need raw sockets: they report failure type unknown until the probe "
                "runs with CAP_NET_RAW (setcap cap_net_raw+ep, or AmbientCapabilities= in the "
                "systemd unit); other checks are not affected"}});
    c.pending_ids.clear();
  });
}

asio::awaitable<std::vector<CheckResult>> PathCheck::run(RunContext& ctx) {
  const SteadyTime start = ctx.services.clock.steady_now();
  CheckResult r;
  r.target.host = config_.host;
  if (config_.protocol != trace::Protocol::icmp) r.target.port = config_.effective_port();
  r.trace_id = ctx.trace_id;

  const Resolution res = co_await ctx.services.resolvers.resolve(config_.host, config_.ip_family,
                                                                 config_.resolvers, ctx.deadline);
  r.target.resolver = res.resolver;
  r.phases.dns = res.dns_ms;
  std::optional<trace::Address> destination;
  for (const auto& a : res.addresses) {
    if ((destination = trace::parse_address(a))) break;
  }
  if (res.failure || !destination) {
    r.outcome.type = res.failure ? res.failure->type : FailureType::dns_name_not_resolved;
    r.outcome.failed_at = Phase::dns;
    r.outcome.detail = res.failure ? res.failure->detail : "no address to trace";
    r.phases.total = to_ms(ctx.services.clock.steady_now() - start);
    co_return std::vector<CheckResult>{std::move(r)};
  }
  r.target.server_ip = trace::to_string(*destination);

  trace::TraceOptions options;
  options.protocol = config_.protocol;
  options.destination = *destination;
  options.port = config_.effective_port();
  options.first_ttl = config_.first_ttl;
  options.max_ttl = config_.max_hops;
  options.probes_per_hop = config_.probes_per_hop;
  options.parallel_hops = config_.parallel_hops;
  options.max_silent_hops = config_.max_silent_hops;
  options.hop_timeout = config_.hop_timeout;
  const trace::TraceResult t =
      co_await trace::run_trace(ctx.services.io, ctx.services.clock, options, ctx.deadline);

  r.outcome.type = failure_of(t.stop);
  if (!r.outcome.ok()) {
    r.outcome.failed_at = Phase::connect;
    r.outcome.detail = std::string(trace::to_string(t.stop)) + ": " + t.detail;
  }
  r.phases.total = to_ms(ctx.services.clock.steady_now() - start);

  if (ctx.services.publish_record) {
    nlohmann::json record = path_record(ctx.services.ids.uuid_v7(ctx.started), id(), ctx.started,
                                        ctx.trace_id, config_, r.target.server_ip, t);
    ctx.services.publish_record("path_result", record);
  }
  co_return std::vector<CheckResult>{std::move(r)};
}

}  // namespace vantage::probe::checks::path
