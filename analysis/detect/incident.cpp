#include "analysis/detect/incident.hpp"

#include <array>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/time.hpp"

namespace vantage::analysis {
namespace {

constexpr std::array<std::pair<Kind, std::string_view>, 16> kKinds{{
    {Kind::outage, "outage"},
    {Kind::reachability_loss, "reachability_loss"},
    {Kind::dns_failure, "dns_failure"},
    {Kind::degraded, "degraded"},
    {Kind::http_error, "http_error"},
    {Kind::slo_burn, "slo_burn"},
    {Kind::vantage_point_silent, "vantage_point_silent"},
    {Kind::bgp_hijack, "bgp_hijack"},
    {Kind::bgp_sub_prefix_hijack, "bgp_sub_prefix_hijack"},
    {Kind::bgp_route_leak, "bgp_route_leak"},
    {Kind::bgp_visibility_loss, "bgp_visibility_loss"},
    {Kind::bgp_unexpected_upstream, "bgp_unexpected_upstream"},
    {Kind::bgp_rpki_invalid, "bgp_rpki_invalid"},
    {Kind::bgp_private_origin, "bgp_private_origin"},
    {Kind::bgp_moas, "bgp_moas"},
    {Kind::bgp_other, "bgp_alert"},
}};

}  // namespace

std::string_view kind_name(Kind kind) {
  for (const auto& [k, name] : kKinds) {
    if (k == kind) return name;
  }
  return "unknown";
}

Kind bgp_kind(std::string_view alert) {
  for (const auto& [k, name] : kKinds) {
    if (is_bgp(k) && name.substr(4) == alert) return k;
  }
  return Kind::bgp_other;
}

bool is_bgp(Kind kind) { return kind >= Kind::bgp_hijack; }

std::string_view severity_name(Severity severity) {
  switch (severity) {
    case Severity::log:
      return "log";
    case Severity::ticket:
      return "ticket";
    case Severity::page:
      return "page";
  }
  return "ticket";
}

std::optional<Severity> parse_severity(std::string_view text) {
  if (text == "log") return Severity::log;
  if (text == "ticket") return Severity::ticket;
  if (text == "page") return Severity::page;
  return std::nullopt;
}

std::string_view status_name(Status status) {
  switch (status) {
    case Status::open:
      return "open";
    case Status::ongoing:
      return "ongoing";
    case Status::resolved:
      return "resolved";
  }
  return "open";
}

std::string_view change_name(Change change) {
  switch (change) {
    case Change::opened:
      return "opened";
    case Change::escalated:
      return "escalated";
    case Change::resolved:
      return "resolved";
  }
  return "opened";
}

std::string IncidentKey::text() const {
  std::string out(kind_name(kind));
  if (!scope.empty()) out += ' ' + scope;
  return out;
}

std::string Incident::id() const {
  return key.text() + " @" + format_rfc3339(from_unix_nanos(opened_ns)).substr(0, 19) + "Z";
}

std::string Incident::runbook() const {
  return "docs/runbooks/" +
         (is_bgp(key.kind) ? std::string("bgp") : std::string(kind_name(key.kind))) + ".md";
}

std::string incident_json(const Incident& i) {
  nlohmann::json j{{"id", i.id()},
                   {"key", i.key.text()},
                   {"kind", kind_name(i.key.kind)},
                   {"severity", severity_name(i.severity)},
                   {"opened_severity", severity_name(i.opened_severity)},
                   {"status", status_name(i.status)},
                   {"title", i.title},
                   {"summary", i.summary},
                   {"runbook", i.runbook()},
                   {"opened", format_rfc3339(from_unix_nanos(i.opened_ns))},
                   {"scope",
                    {{"targets", i.targets},
                     {"checks", i.checks},
                     {"asns", i.asns},
                     {"isps", i.isps},
                     {"regions", i.regions},
                     {"countries", i.countries},
                     {"endpoints", i.endpoints},
                     {"prefixes", i.prefixes},
                     {"probes", i.probes}}},
                   {"evidence",
                    {{"failure_types", i.failure_types},
                     {"browser_reports", i.browser_reports},
                     {"failing_vantage_points", i.failing_vantage_points},
                     {"bgp_alerts", i.bgp_alerts},
                     {"vantage_points", i.vantage_points}}}};
  if (i.resolved_ns) j["resolved"] = format_rfc3339(from_unix_nanos(i.resolved_ns));
  auto& e = j["evidence"];
  switch (i.key.kind) {
    case Kind::http_error:
      e["statuses"] = i.statuses;
      if (i.baseline > 0 || i.value > 0) {
        e["share"] = i.value;
        e["baseline_share"] = i.baseline;
      }
      break;
    case Kind::slo_burn:
      e["burn_rate"] = i.value;
      e["p95_ms"] = i.p95_ms;
      e["p99_ms"] = i.p99_ms;
      break;
    case Kind::outage:
      e["networks"] = i.networks;
      e["failure_ratio"] = i.value;
      break;
    case Kind::reachability_loss:
    case Kind::dns_failure:
      e["failure_ratio"] = i.value;
      if (i.users > 0) {
        e["users_failure_share"] = i.value;
        e["users_baseline_share"] = i.baseline;
        e["users_reports"] = i.users;
      }
      break;
    case Kind::vantage_point_silent:
      e["last_heartbeat"] = format_rfc3339(from_unix_nanos(i.last_heartbeat_ns));
      e["heartbeat_interval_s"] = static_cast<double>(i.heartbeat_interval_ns) / 1e9;
      break;
    case Kind::degraded:
      e["bad_share"] = i.value;
      e["others_bad_share"] = i.baseline;
      e["p95_ms"] = i.p95_ms;
      break;
    default:
      break;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace vantage::analysis
