// The `vantage bgp` commands (see bgp_commands.hpp and docs/bgp.md).
#include "analysis/cli/bgp_commands.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "probe/bgp/bgpdump_format.hpp"
#include "probe/bgp/bmp.hpp"
#include "probe/bgp/monitor.hpp"
#include "probe/bgp/mrt_reader.hpp"
#include "probe/bgp/route_event.hpp"

namespace vantage::analysis::cli {
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
}  // namespace

int bgp_dump(const BgpDumpOptions& options) {
  const auto& files = options.files;
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

namespace {

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
// The route-event decoder reports an MRT record's damage as `bgp dump` does, in the same words
// (bgpdump's judgement first, then what only route monitoring rejects, e.g. prefix lengths
// bgpdump lets through): one pass over the records.
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
    std::uint64_t deprecated_bgp = 0;
    vantage::bgp::MrtRecord record;
    Progress progress(file);
    while (reader->next(record)) {
      damage.reader(*reader);
      events.clear();
      decoder.decode(record, events);
      if (!decoder.warnings().empty()) damage.record(decoder.warnings());
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

}  // namespace

int bgp_scan(const BgpScanOptions& options) {
  const auto& files = options.files;
  const bool json = options.json;
  vantage::bgp::Expectations expectations;
  std::optional<vantage::bgp::AsRelationships> rels;
  std::optional<vantage::bgp::Vrps> vrps;
  try {
    expectations = vantage::bgp::load_expectations(options.prefixes_file);
    if (!options.as_rel_file.empty())
      rels = vantage::bgp::AsRelationships::load(options.as_rel_file);
    if (!options.vrp_file.empty()) vrps = vantage::bgp::Vrps::load(options.vrp_file);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vantage bgp scan: %s\n", e.what());
    return kExitUsage;
  }
  if (options.min_peers > 0) expectations.min_peers = options.min_peers;
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
int bgp_generate(const BgpGenerateOptions& options) {
  const auto& files = options.files;
  const std::uint32_t origin = options.origin;
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

}  // namespace vantage::analysis::cli
