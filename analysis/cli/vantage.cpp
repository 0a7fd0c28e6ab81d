// vantage: the analysis CLI. `vantage bgp dump|scan|generate` (MRT, BMP and RIS Live files, see
// docs/bgp.md); `vantage incidents` (detectors and incidents over a collector store) and
// `vantage generate` (scenario streams for them), see docs/analysis.md. Reports follow (DESIGN §6).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "analysis/detect/analyzer.hpp"
#include "analysis/generate/generator.hpp"
#include "analysis/notify/notifier.hpp"
#include "analysis/report/isp_report.hpp"
#include "analysis/store/event_store.hpp"
#include "common/config_node.hpp"
#include "common/time.hpp"
#include "probe/bgp/bgpdump_format.hpp"
#include "probe/bgp/bmp.hpp"
#include "probe/bgp/monitor.hpp"
#include "probe/bgp/mrt_reader.hpp"
#include "probe/bgp/route_event.hpp"

namespace {

// "FILE: 42%" on stderr, twice a second at most, only when stderr is a terminal.
class Progress {
 public:
  explicit Progress(const std::string& file) : file_(file), enabled_(::isatty(STDERR_FILENO) == 1) {
    std::error_code ec;
    size_ = std::filesystem::file_size(file, ec);
    if (ec) size_ = 0;
  }
  void update(std::uint64_t compressed_position) {
    if (!enabled_ || !size_ || ++calls_ % 1024) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(500)) return;
    last_ = now;
    std::fprintf(stderr, "\r%s: %3.0f%%", file_.c_str(),
                 100.0 * static_cast<double>(compressed_position) / static_cast<double>(size_));
  }
  ~Progress() {
    if (enabled_ && size_) std::fprintf(stderr, "\r%s: done      \n", file_.c_str());
  }

 private:
  std::string file_;
  bool enabled_;
  std::uint64_t size_ = 0;
  std::uint64_t calls_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

// Exit statuses of `bgp dump` and `bgp scan` (documented in docs/bgp.md and --help): 1 wins over
// 3, since a file not read at all is the larger loss.
constexpr int kExitUnreadable = 1;  // a file could not be opened
constexpr int kExitDamaged = 3;     // damage reported on stderr: records skipped or read in part

constexpr const char* kBgpExitStatuses =
    "Damage (a cut or corrupt file, a damaged record) is reported on stderr with its\n"
    "position and a summary per file; everything readable is still output.\n"
    "Exit status: 0 every record read; 1 a file could not be opened; 2 a usage or\n"
    "configuration error; 3 damage reported (records skipped or read in part, a cut or\n"
    "corrupt stream).";

std::string records(std::uint64_t n) {
  return std::to_string(n) + (n == 1 ? " record" : " records");
}

// The damage of one input file: each warning goes to stderr as it is found ("vantage bgp dump:
// FILE: offset 9284: …"), the damaged records are counted, and a summary line follows the
// file's warnings when there were any.
class DamageLog {
 public:
  DamageLog(const char* command, const std::string& file) : command_(command), file_(file) {}

  void warn(const std::string& warning) {
    std::fprintf(stderr, "vantage bgp %s: %s: %s\n", command_, file_.c_str(), warning.c_str());
    ++warnings_;
  }
  // One damaged record and what is wrong with it.
  void record(const std::string& warning) {
    warn(warning);
    ++records_;
  }
  // One damaged record, with its warnings (cleared once printed).
  void record(std::vector<std::string>& warnings) {
    for (const auto& w : warnings) warn(w);
    warnings.clear();
    ++records_;
  }
  // The reader's warnings not printed yet.
  void reader(const vantage::bgp::MrtReader& reader) {
    for (; reported_ < reader.warnings().size(); ++reported_) warn(reader.warnings()[reported_]);
  }
  // After the file: "FILE: 3 damaged records skipped or read in part (1536 bytes of the stream
  // skipped); the compressed stream is damaged". Nothing when there was no damage. `reader` is
  // null for BMP and RIS Live inputs.
  void summary(const vantage::bgp::MrtReader* reader) {
    damaged_records_ = records_ + (reader ? reader->damaged_records() : 0);
    skipped_bytes_ = reader ? reader->skipped_bytes() : 0;
    if (warnings_ == 0) return;
    std::string text;
    auto part = [&](const std::string& p) { text += (text.empty() ? "" : "; ") + p; };
    if (damaged_records_) {
      std::string counted = std::to_string(damaged_records_) +
                            (damaged_records_ == 1 ? " damaged record" : " damaged records") +
                            " skipped or read in part";
      if (skipped_bytes_) {
        counted += " (" + std::to_string(skipped_bytes_) + " bytes of the stream skipped)";
      }
      part(counted);
    }
    if (reader && reader->stream_damaged()) part("the compressed stream is damaged");
    if (unsupported_) part(records(unsupported_) + " of a type not read skipped");
    std::fprintf(stderr, "vantage bgp %s: %s: %s\n", command_, file_.c_str(), text.c_str());
  }
  // Records that are sound but of a kind this command does not read.
  void unsupported(std::uint64_t count, const std::string& warning) {
    warn(warning);
    unsupported_ += count;
  }
  bool damaged() const noexcept { return warnings_ > 0; }
  std::uint64_t damaged_records() const noexcept { return damaged_records_; }
  std::uint64_t skipped_bytes() const noexcept { return skipped_bytes_; }
  std::uint64_t unsupported_records() const noexcept { return unsupported_; }

 private:
  const char* command_;
  std::string file_;
  std::uint64_t warnings_ = 0;
  std::uint64_t records_ = 0;  // records the decoders found damaged
  std::uint64_t unsupported_ = 0;
  std::size_t reported_ = 0;                               // of the reader's warnings
  std::uint64_t damaged_records_ = 0, skipped_bytes_ = 0;  // the summary's, for the caller
};

// Streams every record of every file through the bgpdump formatter to stdout. Damage goes to
// stderr prefixed with the file name (DamageLog); progress too, when stderr is a terminal.
// Exit status 0, kExitUnreadable or kExitDamaged.
int bgp_dump(const std::vector<std::string>& files) {
  std::string out;
  out.reserve(1 << 20);
  int status = 0;
  for (const auto& file : files) {
    std::unique_ptr<vantage::bgp::MrtReader> reader;
    try {
      reader = std::make_unique<vantage::bgp::MrtReader>(file);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "vantage bgp dump: %s\n", e.what());
      status = kExitUnreadable;
      continue;
    }
    vantage::bgp::BgpdumpFormatter formatter;
    vantage::bgp::MrtRecord record;
    Progress progress(file);
    DamageLog damage("dump", file);
    while (reader->next(record)) {
      damage.reader(*reader);
      formatter.format(record, out);
      if (out.size() > (1u << 20) - 65536) {
        std::fwrite(out.data(), 1, out.size(), stdout);
        out.clear();
      }
      if (!formatter.warnings().empty()) damage.record(formatter.warnings());
      progress.update(reader->compressed_bytes_read());
    }
    damage.reader(*reader);
    damage.summary(reader.get());
    if (damage.damaged() && status == 0) status = kExitDamaged;
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  return status;
}

enum class InputKind { mrt, bmp, ris_live };
constexpr const char* kMrtCollector = "mrt";

// MRT, a captured BMP stream (first byte: version 3, then a plausible length and type) or RIS
// Live JSON lines, by content. Compressed files are MRT.
InputKind input_kind(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char h[6] = {0, 0, 0, 0, 0, 0};
  in.read(reinterpret_cast<char*>(h), 6);
  if (h[0] == '{' || h[0] == '[') return InputKind::ris_live;
  const std::uint32_t len =
      (std::uint32_t{h[1]} << 24) | (std::uint32_t{h[2]} << 16) | (std::uint32_t{h[3]} << 8) | h[4];
  if (h[0] == 3 && len >= 6 && len < (1u << 24) && h[5] <= 6) return InputKind::bmp;
  return InputKind::mrt;
}

// What reading the inputs of scan (or generate) came to.
struct ReadSummary {
  int status = 0;  // 0, kExitUnreadable or kExitDamaged
  std::uint64_t events = 0;
  std::uint64_t damaged_records = 0;
  std::uint64_t skipped_bytes = 0;
  std::uint64_t unread_records = 0;  // sound records of a type the command does not read
  std::vector<std::string> damaged_files, unreadable_files;
};

// Calls `fn` with the route events of every file in order. Damage goes to stderr (DamageLog).
// MRT records also go through the bgpdump formatter, output discarded: it is the judge of
// damage for both commands, so that scan reports what dump reports, in the same words. The
// route-event decoder's own warnings are shown for records the formatter found nothing wrong
// with (it checks some things differently, e.g. prefix lengths bgpdump lets through).
template <typename Fn>
ReadSummary for_each_event(const std::vector<std::string>& files, const char* what, Fn&& fn) {
  ReadSummary summary;
  std::vector<vantage::bgp::RouteEvent> events;
  auto finish = [&](DamageLog& damage, const std::string& file,
                    const vantage::bgp::MrtReader* reader) {
    damage.summary(reader);
    if (!damage.damaged()) return;
    summary.damaged_files.push_back(file);
    summary.damaged_records += damage.damaged_records();
    summary.skipped_bytes += damage.skipped_bytes();
    summary.unread_records += damage.unsupported_records();
    if (summary.status == 0) summary.status = kExitDamaged;
  };
  auto emit = [&] {
    for (const auto& e : events) fn(e);
    summary.events += events.size();
  };
  for (const auto& file : files) {
    const std::string name = std::filesystem::path(file).filename().string();
    const InputKind kind = input_kind(file);
    DamageLog damage(what, file);
    if (kind == InputKind::ris_live) {
      std::ifstream in(file);
      std::string line;
      for (int no = 1; std::getline(in, line); ++no) {
        if (line.empty()) continue;
        events.clear();
        std::string warning;
        vantage::bgp::parse_ris_live_line(line, events, warning);
        if (!warning.empty()) damage.record("line " + std::to_string(no) + ": " + warning);
        emit();
      }
      finish(damage, file, nullptr);
      continue;
    }
    if (kind == InputKind::bmp) {
      std::ifstream in(file, std::ios::binary);
      vantage::bgp::BmpDecoder decoder(name);
      std::vector<char> chunk(64 * 1024);
      while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
        events.clear();
        decoder.feed(reinterpret_cast<const std::uint8_t*>(chunk.data()),
                     static_cast<std::size_t>(in.gcount()), events);
        emit();
      }
      for (const auto& w : decoder.warnings()) damage.record(w);  // each about one message
      finish(damage, file, nullptr);
      continue;
    }
    std::unique_ptr<vantage::bgp::MrtReader> reader;
    try {
      reader = std::make_unique<vantage::bgp::MrtReader>(file);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "vantage bgp %s: %s\n", what, e.what());
      summary.status = kExitUnreadable;
      summary.unreadable_files.push_back(file);
      continue;
    }
    // One collector name for every MRT file: the files are one collector's series (a RIB dump,
    // then its update files), so a peer in one file is the same peer in the next.
    vantage::bgp::RouteEventDecoder decoder(kMrtCollector);
    vantage::bgp::BgpdumpFormatter judge;
    std::string discarded;
    std::uint64_t deprecated_bgp = 0;
    vantage::bgp::MrtRecord record;
    Progress progress(file);
    while (reader->next(record)) {
      damage.reader(*reader);
      events.clear();
      discarded.clear();
      judge.format(record, discarded);
      decoder.decode(record, events);
      if (!judge.warnings().empty()) {
        damage.record(judge.warnings());
        decoder.warnings().clear();
      } else if (!decoder.warnings().empty()) {
        damage.record(decoder.warnings());
      }
      // The route-event decoder does not read the deprecated BGP type (1999-2001 RIS files):
      // counted and said, not dropped in silence.
      if (record.type == vantage::bgp::kMrtBgp) ++deprecated_bgp;
      emit();
      progress.update(reader->compressed_bytes_read());
    }
    damage.reader(*reader);
    if (deprecated_bgp > 0) {
      damage.unsupported(deprecated_bgp, records(deprecated_bgp) +
                                             " of the deprecated MRT type 5 (BGP) skipped: " +
                                             what + " reads TABLE_DUMP, TABLE_DUMP_V2 and BGP4MP");
    }
    finish(damage, file, reader.get());
  }
  return summary;
}

int bgp_scan(const std::vector<std::string>& files, const std::string& prefixes_file,
             const std::string& as_rel_file, const std::string& vrp_file, bool json,
             int min_peers) {
  vantage::bgp::Expectations expectations;
  std::optional<vantage::bgp::AsRelationships> rels;
  std::optional<vantage::bgp::Vrps> vrps;
  try {
    expectations = vantage::bgp::load_expectations(prefixes_file);
    if (!as_rel_file.empty()) rels = vantage::bgp::AsRelationships::load(as_rel_file);
    if (!vrp_file.empty()) vrps = vantage::bgp::Vrps::load(vrp_file);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vantage bgp scan: %s\n", e.what());
    return 2;
  }
  if (min_peers > 0) expectations.min_peers = min_peers;
  vantage::bgp::Monitor monitor(std::move(expectations), rels ? &*rels : nullptr,
                                vrps ? &*vrps : nullptr);
  std::vector<vantage::bgp::Alert> alerts;
  std::uint64_t printed = 0;
  const ReadSummary read = for_each_event(files, "scan", [&](const vantage::bgp::RouteEvent& e) {
    alerts.clear();
    monitor.observe(e, alerts);
    for (const auto& a : alerts)
      std::printf("%s\n", json ? a.to_json().c_str() : a.to_text().c_str());
    printed += alerts.size();
  });
  // The input is finished: what no peer carries any more resolves now (stamped when it went).
  alerts.clear();
  monitor.flush(alerts);
  for (const auto& a : alerts)
    std::printf("%s\n", json ? a.to_json().c_str() : a.to_text().c_str());
  printed += alerts.size();
  // --json ends with a summary object, so that a consumer can tell a complete scan of sound
  // input from one that skipped damage (the text output says it on stderr only).
  if (json) {
    const nlohmann::json summary{{"kind", "scan_summary"},
                                 {"files", files.size()},
                                 {"events", read.events},
                                 {"alerts", printed},
                                 {"damaged_records", read.damaged_records},
                                 {"skipped_bytes", read.skipped_bytes},
                                 {"unread_records", read.unread_records},
                                 {"damaged_files", read.damaged_files},
                                 {"unreadable_files", read.unreadable_files},
                                 {"exit_status", read.status}};
    std::printf("%s\n", summary.dump().c_str());
  }
  std::fflush(stdout);
  if (monitor.ignored() > 0) {
    std::string reasons;
    for (const auto& [reason, n] : monitor.ignored_by_reason()) {
      reasons += (reasons.empty() ? "" : ", ") + reason + " " + std::to_string(n);
    }
    std::fprintf(stderr, "vantage bgp scan: %llu routes under monitored prefixes ignored (%s)\n",
                 static_cast<unsigned long long>(monitor.ignored()), reasons.c_str());
  }
  return read.status;
}

// Proposes a prefixes file from what `origin` announces in the given MRT files.
int bgp_generate(const std::vector<std::string>& files, std::uint32_t origin) {
  std::map<std::string, std::map<std::uint32_t, std::set<std::string>>>
      seen;  // prefix -> upstream -> peers
  std::map<std::string, vantage::bgp::Prefix> prefixes;
  // Damage is reported on stderr; the exit status stays 1 for an unreadable file only.
  const int status =
      for_each_event(
          files, "generate",
          [&](const vantage::bgp::RouteEvent& e) {
            if (e.kind != vantage::bgp::RouteEvent::Kind::announce || !e.origin ||
                *e.origin != origin)
              return;
            if (vantage::bgp::is_bogon(e.prefix)) return;
            const auto path = vantage::bgp::flatten_path(e.path);
            const std::string p = e.prefix.to_string();
            prefixes[p] = e.prefix;
            auto& ups = seen[p];
            ups[path.size() >= 2 ? path[path.size() - 2] : 0].insert(e.peer_ip.to_string());
          }).status == kExitUnreadable
          ? kExitUnreadable
          : 0;
  std::printf(
      "# Proposed by `vantage bgp generate --origin %u` from %zu file(s): review before use.\n",
      origin, files.size());
  for (const auto& [p, ups] : seen) {
    std::printf(
        "%s:\n  description: announced by AS%u\n  asn: [%u]\n  ignoreMorespecifics: false\n",
        p.c_str(), origin, origin);
    std::string list;
    for (const auto& [asn, peers] : ups) {
      if (asn == 0) continue;
      if (!list.empty()) list += ", ";
      list += std::to_string(asn);
    }
    if (!list.empty()) std::printf("  upstreams: [%s]\n", list.c_str());
  }
  std::printf("options:\n  min_peers: 1\n  visibility_threshold: 0.5\n");
  return status;
}

std::string utc(std::int64_t ns) {
  const std::string s = vantage::format_rfc3339(vantage::from_unix_nanos(ns));
  return s.substr(0, 19) + "Z";  // to the second
}

int generate_events(const std::string& db, const vantage::analysis::GeneratorOptions& o) {
  try {
    const auto sum = vantage::analysis::generate(db, o);
    std::printf(
        "%s: scenario %s, seed %llu: %llu probe results, %llu browser reports, %s to %s\n",
        db.c_str(), o.scenario.c_str(), static_cast<unsigned long long>(o.seed),
        static_cast<unsigned long long>(sum.results), static_cast<unsigned long long>(sum.reports),
        utc(o.start_ns).c_str(),
        utc(o.start_ns + static_cast<std::int64_t>(o.hours * 3600) * 1'000'000'000).c_str());
    if (!sum.fault.empty()) {
      std::printf("fault %s to %s: %s\n", utc(sum.fault_from_ns).c_str(),
                  utc(sum.fault_to_ns).c_str(), sum.fault.c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vantage generate: %s\n", e.what());
    return e.what() == std::string("unknown scenario \"") + o.scenario + "\"" ? 2 : 1;
  }
}

// The range [from, to) of a replay: the given RFC 3339 times, or the store's first and last event.
// Throws std::invalid_argument for a bad time; nullopt when the store is empty.
std::optional<std::pair<std::int64_t, std::int64_t>> replay_range(
    vantage::analysis::EventStore& store, const std::string& from, const std::string& to) {
  auto span = store.time_span();
  if (!span) return std::nullopt;
  auto parse = [&](const std::string& text, std::int64_t fallback) {
    if (text.empty()) return fallback;
    auto t = vantage::parse_rfc3339(text);
    if (!t)
      throw std::invalid_argument("\"" + text +
                                  "\" is not an RFC 3339 time (2026-11-22T01:00:00Z)");
    return vantage::to_unix_nanos(*t);
  };
  // Clamped to what the store holds: a far --from would mean replaying years of empty minutes.
  const std::int64_t f = std::max(parse(from, span->first), span->first);
  const std::int64_t t = std::min(parse(to, span->second + 1), span->second + 1);
  if (t <= f)
    throw std::invalid_argument("the range holds no data (the store spans " + utc(span->first) +
                                " to " + utc(span->second) + ")");
  return std::pair{f, t};
}

int report_isp(const std::string& db, const std::string& from, const std::string& to,
               const std::string& format, const std::string& output,
               const vantage::analysis::AnalyzerOptions& options) {
  try {
    auto store = vantage::analysis::open_sqlite_store(db);
    const auto range = replay_range(*store, from, to);
    if (!range) {
      std::fprintf(stderr, "vantage report isp: %s holds no results or reports\n", db.c_str());
      return 1;
    }
    const auto report =
        vantage::analysis::build_isp_report(*store, range->first, range->second, options);
    const std::string text = format == "json"   ? vantage::analysis::render_isp_json(report)
                             : format == "html" ? vantage::analysis::render_isp_html(report)
                                                : vantage::analysis::render_isp_text(report);
    if (output.empty() || output == "-") {
      std::fwrite(text.data(), 1, text.size(), stdout);
    } else {
      std::ofstream out(output, std::ios::binary);
      out << text;
      if (!out.flush()) throw std::runtime_error("cannot write " + output);
      std::fprintf(stderr, "vantage report isp: wrote %s (%zu bytes)\n", output.c_str(),
                   text.size());
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vantage report isp: %s\n", e.what());
    return 1;
  }
}

struct NotifyOptions {
  std::vector<std::string> alertmanagers, webhooks;
  std::string runbook_base;
  bool save = true;
};

std::vector<std::unique_ptr<vantage::analysis::Notifier>> make_notifiers(const NotifyOptions& n,
                                                                         int firing_for_s) {
  std::vector<std::unique_ptr<vantage::analysis::Notifier>> out;
  for (const auto& u : n.alertmanagers)
    out.push_back(vantage::analysis::make_alertmanager_notifier(u, n.runbook_base, firing_for_s));
  for (const auto& u : n.webhooks) out.push_back(vantage::analysis::make_webhook_notifier(u));
  return out;
}

// Sends one change to every notifier; returns false when one of them failed (reported).
bool deliver(const std::vector<std::unique_ptr<vantage::analysis::Notifier>>& notifiers,
             const vantage::analysis::IncidentEvent& e, bool refresh_only = false) {
  bool ok = true;
  for (const auto& n : notifiers) {
    if (refresh_only && !n->wants_refresh()) continue;
    std::string error;
    if (!n->notify(e, error)) {
      std::fprintf(stderr, "vantage: %s: %s %s: %s\n", n->describe().c_str(), e.change.c_str(),
                   e.incident.id.c_str(), error.c_str());
      ok = false;
    }
  }
  return ok;
}

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

// Continuous analysis: every `interval`, replays the last `lookback` (on a grid aligned to the
// step, so an incident keeps its id from one cycle to the next), prints and notifies what opened
// or resolved, re-sends open incidents to Alertmanager, and stores the incidents.
int watch(const std::string& db, const vantage::analysis::AnalyzerOptions& options,
          const NotifyOptions& notify, std::chrono::nanoseconds interval,
          std::chrono::nanoseconds lookback, std::int64_t settle_ns) {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const int firing_for_s =
      static_cast<int>(std::max<std::int64_t>(60, 3 * interval.count() / 1'000'000'000));
  const auto notifiers = make_notifiers(notify, firing_for_s);
  // Unresolved incidents as first notified, by key (kind + scope, the id without "@opened"): an
  // incident older than the lookback re-opens later in each replay, but it is the same incident.
  std::map<std::string, vantage::analysis::Incident> open;
  auto key_of = [](const vantage::analysis::Incident& i) {
    return i.id.substr(0, i.id.find(" @"));
  };
  std::fprintf(stderr, "vantage watch: %s every %s over the last %s\n", db.c_str(),
               vantage::format_duration(interval).c_str(),
               vantage::format_duration(lookback).c_str());
  int status = 0;
  while (!g_stop) {
    try {
      auto store = vantage::analysis::open_sqlite_store(db);
      const std::int64_t now = vantage::to_unix_nanos(vantage::SystemClock::instance().utc_now());
      // Settling: late browser reports (received − age) and probe results on their way still
      // arrive for the last moments.
      const std::int64_t to = now - settle_ns;
      const std::int64_t from = (to - lookback.count()) / options.step_ns * options.step_ns;
      const auto result = vantage::analysis::analyze(*store, from, to, options);
      store.reset();
      std::set<std::string> seen;
      std::vector<vantage::analysis::Incident> changed;  // to store
      for (const auto& replayed : result.incidents) {
        const std::string key = key_of(replayed);
        auto it = open.find(key);
        vantage::analysis::Incident i = replayed;
        if (it != open.end()) {  // keep the identity it was notified with
          i.id = it->second.id;
          i.opened_ns = it->second.opened_ns;
          i.opened_severity = it->second.opened_severity;
        }
        if (i.status != "resolved") {
          seen.insert(key);
          if (it == open.end()) {
            std::printf("%s OPENED   %-6s %-18s %s\n", utc(i.opened_ns).c_str(), i.severity.c_str(),
                        i.kind.c_str(), i.title.c_str());
            // Not delivered everywhere: tried again next cycle.
            if (deliver(notifiers, {now, "opened", i})) open[key] = i;
          } else {
            deliver(notifiers, {now, "opened", i}, /*refresh_only=*/true);
          }
          changed.push_back(i);
        } else if (it != open.end() && replayed.resolved_ns > it->second.opened_ns) {
          seen.insert(key);
          std::printf("%s RESOLVED %-6s %-18s %s\n", utc(i.resolved_ns).c_str(), i.severity.c_str(),
                      i.kind.c_str(), i.title.c_str());
          if (deliver(notifiers, {i.resolved_ns, "resolved", i})) open.erase(it);
          changed.push_back(i);
        }
      }
      // An open incident that the replay no longer finds (it fell out of the lookback): resolved
      // now.
      for (auto it = open.begin(); it != open.end();) {
        if (seen.count(it->first)) {
          ++it;
          continue;
        }
        vantage::analysis::Incident i = it->second;
        i.status = "resolved";
        i.resolved_ns = to;
        std::printf("%s RESOLVED %-6s %-18s %s\n", utc(to).c_str(), i.severity.c_str(),
                    i.kind.c_str(), i.title.c_str());
        changed.push_back(i);
        it = deliver(notifiers, {to, "resolved", i}) ? open.erase(it) : std::next(it);
      }
      std::fflush(stdout);
      if (notify.save && !changed.empty()) vantage::analysis::save_incidents(db, changed);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "vantage watch: %s\n", e.what());
      status = 1;
    }
    for (auto slept = std::chrono::nanoseconds(0); slept < interval && !g_stop;
         slept += std::chrono::milliseconds(100)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return status;
}

int incidents(const std::string& db, const std::string& from, const std::string& to, bool json,
              const vantage::analysis::AnalyzerOptions& options, const NotifyOptions& notify) {
  try {
    auto store = vantage::analysis::open_sqlite_store(db);
    const auto range = replay_range(*store, from, to);
    if (!range) {
      std::fprintf(stderr, "vantage incidents: %s holds no results or reports\n", db.c_str());
      return json ? (std::printf("[]\n"), 0) : 0;
    }
    // On a grid of whole steps, so that every replay of the same data gives the same incident ids.
    const std::int64_t from_ns = range->first / options.step_ns * options.step_ns;
    const std::int64_t to_ns = range->second;
    const auto result = vantage::analysis::analyze(*store, from_ns, to_ns, options);
    store.reset();
    // Print first; then store and notify (a failure there still exits 1, after the output).
    int status = 0;
    auto side_effects = [&] {
      try {
        if (notify.save) vantage::analysis::save_incidents(db, result.incidents);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "vantage incidents: %s\n", e.what());
        status = 1;
      }
      const auto notifiers = make_notifiers(notify, 600);
      for (const auto& e : result.events) {
        if (!deliver(notifiers, e)) status = 1;
      }
    };
    if (json) {
      std::printf("[");
      for (std::size_t i = 0; i < result.incidents.size(); ++i) {
        std::printf("%s%s", i ? ",\n " : "",
                    vantage::analysis::incident_json(result.incidents[i]).c_str());
      }
      std::printf("]\n");
      std::fflush(stdout);
      side_effects();
      return status;
    }
    std::printf("%s to %s: %llu probe results, %llu browser reports\n\n", utc(from_ns).c_str(),
                utc(to_ns).c_str(), static_cast<unsigned long long>(result.results),
                static_cast<unsigned long long>(result.reports));
    for (const auto& e : result.events) {
      std::printf("%s %-8s %-6s %-18s %s\n", utc(e.time_ns).c_str(),
                  e.change == "opened" ? "OPENED" : "RESOLVED", e.incident.severity.c_str(),
                  e.incident.kind.c_str(), e.incident.title.c_str());
      if (e.change == "opened") std::printf("%30s runbook: %s\n", "", e.incident.runbook.c_str());
    }
    std::printf("\n%zu incident%s", result.incidents.size(),
                result.incidents.size() == 1 ? "" : "s");
    std::size_t open = 0;
    for (const auto& i : result.incidents) open += i.status != "resolved";
    std::printf(" (%zu still open)\n", open);
    std::fflush(stdout);
    side_effects();
    return status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vantage incidents: %s\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vantage: analysis of what Vantage's probes, browsers and BGP feeds saw"};
  app.require_subcommand(1);
  auto* bgp = app.add_subcommand("bgp", "BGP: MRT files")->require_subcommand(1);
  std::vector<std::string> files;
  auto* dump = bgp->add_subcommand(
      "dump", "Print every route entry of MRT files as `bgpdump -m` does (gzip, bzip2 or plain)");
  dump->add_option("files", files, "MRT files")->required()->check(CLI::ExistingFile);
  dump->footer(kBgpExitStatuses);
  std::string prefixes_file, as_rel_file, vrp_file;
  bool json = false;
  int min_peers = 0;
  auto* scan = bgp->add_subcommand("scan",
                                   "Replay MRT files through the monitor and print hijack, leak, "
                                   "upstream, visibility and RPKI alerts");
  scan->add_option("files", files,
                   "MRT files, captured BMP streams or RIS Live JSON lines, in time order")
      ->required()
      ->check(CLI::ExistingFile);
  scan->add_option("--prefixes", prefixes_file,
                   "Expectations (BGPalerter-like prefixes file, YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  scan->add_option("--as-rel", as_rel_file,
                   "CAIDA AS relationships (a|b|-1, a|b|0) for route leaks")
      ->check(CLI::ExistingFile);
  scan->add_option("--vrp", vrp_file,
                   "RPKI VRPs (rpki-client/Routinator JSON) for origin validation")
      ->check(CLI::ExistingFile);
  scan->add_flag("--json", json, "One JSON object per alert, then a scan_summary object");
  scan->add_option("--min-peers", min_peers, "Override options.min_peers")
      ->check(CLI::Range(1, 100000));
  scan->footer(kBgpExitStatuses);
  std::uint32_t origin = 0;
  auto* generate =
      bgp->add_subcommand("generate", "Propose a prefixes file for an origin AS from MRT files");
  generate->add_option("files", files, "MRT files (RIB dumps)")
      ->required()
      ->check(CLI::ExistingFile);
  generate->add_option("--origin", origin, "The origin AS")->required();
  std::string db, from, to;
  vantage::analysis::GeneratorOptions gen;
  auto* gen_cmd = app.add_subcommand(
      "generate", "Write a seeded scenario stream (probe results and NEL reports) into a store");
  gen_cmd->add_option("--db", db, "The SQLite store (created when missing)")->required();
  gen_cmd
      ->add_option("--scenario", gen.scenario,
                   "baseline, isp-blackhole, http-4xx-spike, dns-nxdomain, slow-checkout")
      ->check(CLI::IsMember(vantage::analysis::generator_scenarios()));
  gen_cmd->add_option("--seed", gen.seed, "Random seed");
  gen_cmd->add_option("--hours", gen.hours, "Length of the stream")
      ->check(CLI::Range(1.5, 24.0 * 30));
  gen_cmd
      ->add_option("--users-per-minute", gen.users_per_minute,
                   "NEL reports per network per minute (daily mean)")
      ->check(CLI::Range(1.0, 100000.0));
  vantage::analysis::AnalyzerOptions aopts;
  auto* inc_cmd = app.add_subcommand(
      "incidents", "Replay a store through the detectors and print the incidents");
  inc_cmd->add_option("--db", db, "The collector's SQLite store")
      ->required()
      ->check(CLI::ExistingFile);
  inc_cmd->add_option("--from", from, "Start (RFC 3339 UTC); default: the first event");
  inc_cmd->add_option("--to", to, "End (RFC 3339 UTC); default: the last event");
  inc_cmd->add_flag("--json", json, "A JSON array of the incidents");

  NotifyOptions nopts;
  std::string step = "60s", window = "5m", interval = "60s", lookback = "6h", settle;
  std::string baseline = "1h", bgp_hold, slo_page = "1h,5m", slo_ticket = "6h,30m";
  auto analysis_flags = [&](CLI::App* cmd) {
    cmd->add_option("--alertmanager", nopts.alertmanagers,
                    "Alertmanager base URL (API v2), e.g. http://127.0.0.1:9093");
    cmd->add_option("--webhook", nopts.webhooks, "POST each change as JSON to this URL");
    cmd->add_option("--runbook-base", nopts.runbook_base,
                    "Prefix for runbook links, e.g. https://git.example.com/vantage/blob/main/");
    cmd->add_flag("!--no-save", nopts.save,
                  "Do not store the incidents in the store's incidents table");
  };
  auto slo_flags = [&](CLI::App* cmd) {
    cmd->add_option("--open-after", aopts.open_after,
                    "Evaluations with a finding before an incident opens")
        ->check(CLI::Range(1, 1000));
    cmd->add_option("--resolve-after", aopts.resolve_after,
                    "Clean evaluations before an incident resolves")
        ->check(CLI::Range(1, 1000));
    cmd->add_option("--slo-objective", aopts.slo_objective,
                    "SLO objective for journeys and http checks")
        ->check(CLI::Range(0.5, 0.99999));
    cmd->add_option("--latency-ms", aopts.latency_ms,
                    "A run slower than this counts against the SLO (ms)");
    cmd->add_option("--step", step, "Evaluation step (default 60s)");
    cmd->add_option("--window", window,
                    "What each evaluation looks at (default 5m; a whole number of steps)");
    cmd->add_option(
        "--baseline", baseline,
        "http_error_spike: the period a key's error share is compared with (default 1h)");
    cmd->add_option("--min-results", aopts.min_results,
                    "reachability/DNS: results a vantage point needs in the window to count as "
                    "failing (default 3)")
        ->check(CLI::Range(1, 100000));
    cmd->add_option("--slo-page-windows", slo_page,
                    "Burn-rate windows LONG,SHORT of the page alert (default 1h,5m)");
    cmd->add_option("--slo-ticket-windows", slo_ticket,
                    "Burn-rate windows LONG,SHORT of the ticket alert (default 6h,30m)");
    cmd->add_option("--slo-min-runs", aopts.slo_min_runs,
                    "Runs a burn-rate window needs to count (default 10)")
        ->check(CLI::Range(1, 1000000));
    cmd->add_option("--bgp-hold", bgp_hold,
                    "How long a BGP alert no reachability loss carries waits before it is an "
                    "incident (default: --window)");
  };
  analysis_flags(inc_cmd);
  slo_flags(inc_cmd);
  auto* watch_cmd = app.add_subcommand(
      "watch", "Analyse continuously; print, store and notify incidents as they open and resolve");
  watch_cmd->add_option("--db", db, "The collector's SQLite store")
      ->required()
      ->check(CLI::ExistingFile);
  watch_cmd->add_option("--interval", interval, "How often (default 60s)");
  watch_cmd->add_option("--lookback", lookback,
                        "How much history each cycle replays (default 6h, the longest SLO window)");
  watch_cmd->add_option(
      "--settle", settle,
      "How far behind now each cycle stops, for uploads still on their way (default: one --step)");
  analysis_flags(watch_cmd);
  slo_flags(watch_cmd);
  std::string format = "text", output;
  auto* report_cmd =
      app.add_subcommand("report", "Reports over a collector store")->require_subcommand(1);
  auto* isp_cmd = report_cmd->add_subcommand("isp",
                                             "Per ISP: availability, latency per target, top "
                                             "failure types, incidents (text, JSON or HTML)");
  isp_cmd->add_option("--db", db, "The collector's SQLite store")
      ->required()
      ->check(CLI::ExistingFile);
  isp_cmd->add_option("--from", from, "Start (RFC 3339 UTC); default: the first event");
  isp_cmd->add_option("--to", to, "End (RFC 3339 UTC); default: the last event");
  isp_cmd->add_option("--format", format, "text, json or html")
      ->check(CLI::IsMember({"text", "json", "html"}));
  isp_cmd->add_option("--output,-o", output, "Write to this file instead of stdout");
  slo_flags(isp_cmd);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (dump->parsed()) return bgp_dump(files);
  if (scan->parsed()) return bgp_scan(files, prefixes_file, as_rel_file, vrp_file, json, min_peers);
  if (generate->parsed()) return bgp_generate(files, origin);
  if (gen_cmd->parsed()) return generate_events(db, gen);
  auto duration = [](const std::string& text, const char* what) {
    const auto d = vantage::parse_duration(text);
    if (!d || d->count() <= 0) {
      std::fprintf(stderr, "vantage: %s: \"%s\" is not a duration like 10s, 5m, 6h\n", what,
                   text.c_str());
      std::exit(2);
    }
    return *d;
  };
  aopts.step_ns = duration(step, "--step").count();
  aopts.window_ns = duration(window, "--window").count();
  if (aopts.window_ns < aopts.step_ns || aopts.window_ns % aopts.step_ns != 0 ||
      aopts.step_ns > 300'000'000'000) {
    std::fprintf(
        stderr,
        "vantage: --window must be a whole number of steps, and --step at most 5m (the SLO's "
        "shortest window)\n");
    return 2;
  }
  aopts.baseline_ns = duration(baseline, "--baseline").count();
  if (!bgp_hold.empty()) aopts.bgp_hold_ns = duration(bgp_hold, "--bgp-hold").count();
  auto windows = [&](const std::string& text, const char* what, std::int64_t& long_ns,
                     std::int64_t& short_ns) {
    const auto comma = text.find(',');
    if (comma == std::string::npos) {
      std::fprintf(stderr, "vantage: %s: \"%s\" is not LONG,SHORT like 1h,5m\n", what,
                   text.c_str());
      std::exit(2);
    }
    long_ns = duration(text.substr(0, comma), what).count();
    short_ns = duration(text.substr(comma + 1), what).count();
    if (short_ns > long_ns) {
      std::fprintf(stderr, "vantage: %s: the short window is longer than the long one\n", what);
      std::exit(2);
    }
  };
  windows(slo_page, "--slo-page-windows", aopts.slo_page_long_ns, aopts.slo_page_short_ns);
  windows(slo_ticket, "--slo-ticket-windows", aopts.slo_ticket_long_ns, aopts.slo_ticket_short_ns);
  if (watch_cmd->parsed()) {
    const std::int64_t settle_ns =
        settle.empty() ? aopts.step_ns : duration(settle, "--settle").count();
    return watch(db, aopts, nopts, duration(interval, "--interval"),
                 duration(lookback, "--lookback"), settle_ns);
  }
  if (inc_cmd->parsed()) return incidents(db, from, to, json, aopts, nopts);
  if (isp_cmd->parsed()) return report_isp(db, from, to, format, output, aopts);
  return 2;
}
