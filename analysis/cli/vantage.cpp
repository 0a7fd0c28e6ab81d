// vantage: the analysis CLI. Today: `vantage bgp dump FILE...` (bgpdump -m compatible lines
// from MRT files, see docs/bgp.md). Detectors, incidents and reports follow (DESIGN §6).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <map>
#include <set>

#include "common/config_node.hpp"
#include <fstream>

#include "probe/bgp/bgpdump_format.hpp"
#include "probe/bgp/bmp.hpp"
#include "probe/bgp/monitor.hpp"
#include "probe/bgp/mrt_reader.hpp"
#include "probe/bgp/route_event.hpp"

namespace {

// "FILE: 42%" on stderr, twice a second at most, only when stderr is a terminal.
class Progress {
 public:
  explicit Progress(const std::string& file)
      : file_(file), enabled_(::isatty(STDERR_FILENO) == 1) {
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

// Streams every record of every file through the bgpdump formatter to stdout. Warnings go to
// stderr prefixed with the file name; progress too, when stderr is a terminal.
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
      status = 1;
      continue;
    }
    vantage::bgp::BgpdumpFormatter formatter;
    vantage::bgp::MrtRecord record;
    Progress progress(file);
    std::size_t reported = 0;
    while (reader->next(record)) {
      formatter.format(record, out);
      if (out.size() > (1u << 20) - 65536) {
        std::fwrite(out.data(), 1, out.size(), stdout);
        out.clear();
      }
      for (; reported < formatter.warnings().size(); ++reported) {
        std::fprintf(stderr, "vantage bgp dump: %s: %s\n", file.c_str(),
                     formatter.warnings()[reported].c_str());
      }
      progress.update(reader->compressed_bytes_read());
    }
    for (const auto& w : reader->warnings()) {
      std::fprintf(stderr, "vantage bgp dump: %s: %s\n", file.c_str(), w.c_str());
    }
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
  const std::uint32_t len = (std::uint32_t{h[1]} << 24) | (std::uint32_t{h[2]} << 16) | (std::uint32_t{h[3]} << 8) | h[4];
  if (h[0] == 3 && len >= 6 && len < (1u << 24) && h[5] <= 6) return InputKind::bmp;
  return InputKind::mrt;
}

// Calls `fn` with the route events of every file in order; warnings go to stderr.
template <typename Fn>
int for_each_event(const std::vector<std::string>& files, const char* what, Fn&& fn) {
  int status = 0;
  std::vector<vantage::bgp::RouteEvent> events;
  auto report = [&](const std::string& file, const std::vector<std::string>& warnings) {
    for (const auto& w : warnings) std::fprintf(stderr, "vantage bgp %s: %s: %s\n", what, file.c_str(), w.c_str());
  };
  for (const auto& file : files) {
    const std::string name = std::filesystem::path(file).filename().string();
    const InputKind kind = input_kind(file);
    if (kind == InputKind::ris_live) {
      std::ifstream in(file);
      std::string line;
      std::vector<std::string> warnings;
      for (int no = 1; std::getline(in, line); ++no) {
        if (line.empty()) continue;
        events.clear();
        std::string warning;
        vantage::bgp::parse_ris_live_line(line, events, warning);
        if (!warning.empty()) warnings.push_back("line " + std::to_string(no) + ": " + warning);
        for (const auto& e : events) fn(e);
      }
      report(file, warnings);
      continue;
    }
    if (kind == InputKind::bmp) {
      std::ifstream in(file, std::ios::binary);
      vantage::bgp::BmpDecoder decoder(name);
      std::vector<char> chunk(64 * 1024);
      while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
        events.clear();
        decoder.feed(reinterpret_cast<const std::uint8_t*>(chunk.data()), static_cast<std::size_t>(in.gcount()), events);
        for (const auto& e : events) fn(e);
      }
      report(file, decoder.warnings());
      continue;
    }
    std::unique_ptr<vantage::bgp::MrtReader> reader;
    try {
      reader = std::make_unique<vantage::bgp::MrtReader>(file);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "vantage bgp %s: %s\n", what, e.what());
      status = 1;
      continue;
    }
    // One collector name for every MRT file: the files are one collector's series (a RIB dump,
    // then its update files), so a peer in one file is the same peer in the next.
    vantage::bgp::RouteEventDecoder decoder(kMrtCollector);
    vantage::bgp::MrtRecord record;
    Progress progress(file);
    while (reader->next(record)) {
      events.clear();
      decoder.decode(record, events);
      for (const auto& e : events) fn(e);
      progress.update(reader->compressed_bytes_read());
    }
    report(file, decoder.warnings());
    report(file, reader->warnings());
  }
  return status;
}

int bgp_scan(const std::vector<std::string>& files, const std::string& prefixes_file,
             const std::string& as_rel_file, const std::string& vrp_file, bool json, int min_peers) {
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
  vantage::bgp::Monitor monitor(std::move(expectations), rels ? &*rels : nullptr, vrps ? &*vrps : nullptr);
  std::vector<vantage::bgp::Alert> alerts;
  const int status = for_each_event(files, "scan", [&](const vantage::bgp::RouteEvent& e) {
    alerts.clear();
    monitor.observe(e, alerts);
    for (const auto& a : alerts) std::printf("%s\n", json ? a.to_json().c_str() : a.to_text().c_str());
  });
  std::fflush(stdout);
  return status;
}

// Proposes a prefixes file from what `origin` announces in the given MRT files.
int bgp_generate(const std::vector<std::string>& files, std::uint32_t origin) {
  std::map<std::string, std::map<std::uint32_t, std::set<std::string>>> seen;  // prefix -> upstream -> peers
  std::map<std::string, vantage::bgp::Prefix> prefixes;
  const int status = for_each_event(files, "generate", [&](const vantage::bgp::RouteEvent& e) {
    if (e.kind != vantage::bgp::RouteEvent::Kind::announce || !e.origin || *e.origin != origin) return;
    if (vantage::bgp::is_bogon(e.prefix)) return;
    const auto path = vantage::bgp::flatten_path(e.path);
    const std::string p = e.prefix.to_string();
    prefixes[p] = e.prefix;
    auto& ups = seen[p];
    ups[path.size() >= 2 ? path[path.size() - 2] : 0].insert(e.peer_ip.to_string());
  });
  std::printf("# Proposed by `vantage bgp generate --origin %u` from %zu file(s): review before use.\n",
              origin, files.size());
  for (const auto& [p, ups] : seen) {
    std::printf("%s:\n  description: announced by AS%u\n  asn: [%u]\n  ignoreMorespecifics: false\n", p.c_str(),
                origin, origin);
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vantage: analysis of what Vantage's probes, browsers and BGP feeds saw"};
  app.require_subcommand(1);
  auto* bgp = app.add_subcommand("bgp", "BGP: MRT files")->require_subcommand(1);
  std::vector<std::string> files;
  auto* dump = bgp->add_subcommand(
      "dump", "Print every route entry of MRT files as `bgpdump -m` does (gzip, bzip2 or plain)");
  dump->add_option("files", files, "MRT files")->required()->check(CLI::ExistingFile);
  std::string prefixes_file, as_rel_file, vrp_file;
  bool json = false;
  int min_peers = 0;
  auto* scan = bgp->add_subcommand(
      "scan", "Replay MRT files through the monitor and print hijack, leak, upstream, visibility and RPKI alerts");
  scan->add_option("files", files, "MRT files, captured BMP streams or RIS Live JSON lines, in time order")
      ->required()->check(CLI::ExistingFile);
  scan->add_option("--prefixes", prefixes_file, "Expectations (BGPalerter-like prefixes file, YAML)")
      ->required()->check(CLI::ExistingFile);
  scan->add_option("--as-rel", as_rel_file, "CAIDA AS relationships (a|b|-1, a|b|0) for route leaks")
      ->check(CLI::ExistingFile);
  scan->add_option("--vrp", vrp_file, "RPKI VRPs (rpki-client/Routinator JSON) for origin validation")
      ->check(CLI::ExistingFile);
  scan->add_flag("--json", json, "One JSON object per alert");
  scan->add_option("--min-peers", min_peers, "Override options.min_peers")->check(CLI::Range(1, 100000));
  std::uint32_t origin = 0;
  auto* generate = bgp->add_subcommand("generate", "Propose a prefixes file for an origin AS from MRT files");
  generate->add_option("files", files, "MRT files (RIB dumps)")->required()->check(CLI::ExistingFile);
  generate->add_option("--origin", origin, "The origin AS")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (dump->parsed()) return bgp_dump(files);
  if (scan->parsed()) return bgp_scan(files, prefixes_file, as_rel_file, vrp_file, json, min_peers);
  if (generate->parsed()) return bgp_generate(files, origin);
  return 2;
}
