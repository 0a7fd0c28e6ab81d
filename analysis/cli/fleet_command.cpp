#include "analysis/cli/fleet_command.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "analysis/app/time_arg.hpp"
#include "analysis/detect/window.hpp"

namespace vantage::analysis::cli {
namespace {

std::string utc(std::int64_t ns) {
  return format_rfc3339(from_unix_nanos(ns)).substr(0, 19) + "Z";  // to the second
}

// "12s", "3m20s", "2d1h" (to the second; 0 -> "0s").
std::string age(std::int64_t ns) {
  return format_duration(std::chrono::seconds(std::max<std::int64_t>(0, ns) / 1'000'000'000));
}

std::string bytes(std::int64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

// "sha256:0123456789ab…" -> "0123456789ab"
std::string short_hash(const std::string& h) {
  const auto colon = h.find(':');
  return h.substr(colon == std::string::npos ? 0 : colon + 1, 12);
}

std::int64_t silent_after(const VantagePointRow& r) {
  const std::int64_t interval =
      r.heartbeat_interval_ns > 0 ? r.heartbeat_interval_ns : kDefaultHeartbeatInterval;
  return kSilentIntervals * interval;
}

}  // namespace

Fleet build_fleet(std::vector<VantagePointRow> rows, std::int64_t now_ns) {
  Fleet f;
  f.now_ns = now_ns;
  std::map<std::string, int> versions;
  for (const auto& r : rows) {
    if (!r.version.empty()) ++versions[r.version];
  }
  int best = 0;
  for (const auto& [v, n] : versions) {  // ascending: a tie goes to the highest version text
    if (n >= best) {
      best = n;
      f.common_version = v;
    }
  }
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.probe_id < b.probe_id; });
  for (auto& r : rows) {
    FleetEntry e;
    e.config_drift = r.config_source == "collector" && r.config_hash != r.served_config_hash;
    e.version_drift = !r.version.empty() && r.version != f.common_version;
    if (r.last_heartbeat_ns <= 0) {
      e.state = "unknown";
    } else {
      e.state = now_ns - r.last_heartbeat_ns >= silent_after(r) ? "silent" : "ok";
    }
    e.row = std::move(r);
    f.entries.push_back(std::move(e));
  }
  return f;
}

std::string render_fleet_text(const Fleet& f) {
  std::size_t silent = 0, drifted = 0;
  for (const auto& e : f.entries) {
    silent += e.state == "silent";
    drifted += e.config_drift || e.version_drift;
  }
  std::string out = std::to_string(f.entries.size()) + " vantage point" +
                    (f.entries.size() == 1 ? "" : "s") + " at " + utc(f.now_ns) + ": " +
                    std::to_string(silent) + " silent, " + std::to_string(drifted) + " drifted" +
                    (f.common_version.empty() ? "" : "; most common version " + f.common_version) +
                    "\n";
  if (f.entries.empty()) return out;
  std::vector<std::vector<std::string>> table{
      {"PROBE", "REGION", "NETWORK", "LAST SEEN", "VERSION", "CONFIG", "DRIFT", "SPOOL", "STATE"}};
  for (const auto& e : f.entries) {
    const VantagePointRow& r = e.row;
    std::string network = r.asn ? "AS" + std::to_string(r.asn) : "";
    if (!r.isp.empty()) network += (network.empty() ? "" : " ") + r.isp;
    const std::int64_t seen = std::max(r.last_seen_ns, r.last_heartbeat_ns);
    std::string version = r.version.empty() ? "-" : r.version;
    if (!r.revision.empty()) version += " (" + r.revision + ")";
    std::string config = r.config_source.empty() ? "-" : r.config_source;
    if (!r.config_hash.empty()) config += " " + short_hash(r.config_hash);
    std::string drift;
    if (e.config_drift) {
      drift = r.served_config_hash.empty()
                  ? "config (nothing served)"
                  : "config (served " + short_hash(r.served_config_hash) + ")";
    }
    if (e.version_drift) drift += (drift.empty() ? "" : ", ") + std::string("version");
    std::string spool = std::to_string(r.spool_results);
    if (r.spool_bytes > 0) spool += " (" + bytes(r.spool_bytes) + ")";
    std::string state = e.state;
    if (e.state == "silent") state += " " + age(f.now_ns - r.last_heartbeat_ns);
    table.push_back({r.probe_id, r.region.empty() ? "-" : r.region, network.empty() ? "-" : network,
                     seen > 0 ? age(f.now_ns - seen) + " ago" : "never", version, config,
                     drift.empty() ? "-" : drift, spool, state});
  }
  // Columns padded by characters (UTF-8 sequences count once), two spaces apart.
  auto width = [](const std::string& s) {
    std::size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  };
  std::vector<std::size_t> widths(table.front().size(), 0);
  for (const auto& row : table) {
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], width(row[c]));
  }
  for (const auto& row : table) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - width(row[c]) + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string render_fleet_json(const Fleet& f) {
  nlohmann::json list = nlohmann::json::array();
  auto time_or_null = [](std::int64_t ns) -> nlohmann::json {
    if (ns <= 0) return nullptr;
    return format_rfc3339(from_unix_nanos(ns));
  };
  auto or_null = [](const std::string& s) -> nlohmann::json {
    if (s.empty()) return nullptr;
    return s;
  };
  for (const auto& e : f.entries) {
    const VantagePointRow& r = e.row;
    const std::int64_t seen = std::max(r.last_seen_ns, r.last_heartbeat_ns);
    list.push_back(
        {{"probe_id", r.probe_id},
         {"region", or_null(r.region)},
         {"country", or_null(r.country)},
         {"asn", r.asn ? nlohmann::json(r.asn) : nlohmann::json(nullptr)},
         {"isp", or_null(r.isp)},
         {"version", or_null(r.version)},
         {"revision", or_null(r.revision)},
         {"config_source", or_null(r.config_source)},
         {"config_hash", or_null(r.config_hash)},
         {"served_config_hash", or_null(r.served_config_hash)},
         {"config_drift", e.config_drift},
         {"version_drift", e.version_drift},
         {"checks", r.checks},
         {"spool_results", r.spool_results},
         {"spool_bytes", r.spool_bytes},
         {"heartbeat_interval_s", static_cast<double>(r.heartbeat_interval_ns) / 1e9},
         {"started", time_or_null(r.started_ns)},
         {"first_seen", time_or_null(r.first_seen_ns)},
         {"last_seen", time_or_null(seen)},
         {"last_heartbeat", time_or_null(r.last_heartbeat_ns)},
         {"last_seen_age_s", seen > 0 ? nlohmann::json(static_cast<double>(f.now_ns - seen) / 1e9)
                                      : nlohmann::json(nullptr)},
         {"state", e.state}});
  }
  nlohmann::json j{{"time", format_rfc3339(from_unix_nanos(f.now_ns))},
                   {"common_version", or_null(f.common_version)},
                   {"vantage_points", std::move(list)}};
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

int fleet(const std::string& db, const std::string& format, const std::string& now_text,
          const Clock& clock, std::FILE* out) {
  std::int64_t now = to_unix_nanos(clock.utc_now());
  try {
    if (!now_text.empty()) now = parse_time_arg(now_text, now, "--now");
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "vantage fleet: %s\n", e.what());
    return 2;
  }
  try {
    auto rows =
        read_vantage_points(db, now_text.empty() ? std::nullopt : std::optional<std::int64_t>(now));
    if (!rows) {
      std::fprintf(stderr,
                   "vantage fleet: %s has no vantage_points table (a collector store written "
                   "before heartbeats, or not a collector store)\n",
                   db.c_str());
      return 1;
    }
    const Fleet f = build_fleet(std::move(*rows), now);
    const std::string text = format == "json" ? render_fleet_json(f) : render_fleet_text(f);
    std::fwrite(text.data(), 1, text.size(), out);
    std::fflush(out);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vantage fleet: %s\n", e.what());
    return 1;
  }
}

}  // namespace vantage::analysis::cli
