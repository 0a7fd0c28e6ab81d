// vantage: the analysis CLI. Today: `vantage bgp dump FILE...` (bgpdump -m compatible lines
// from MRT files, see docs/bgp.md). Detectors, incidents and reports follow (DESIGN §6).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "probe/bgp/bgpdump_format.hpp"
#include "probe/bgp/mrt_reader.hpp"

namespace {

// Streams every record of every file through the bgpdump formatter to stdout. Warnings go to
// stderr prefixed with the file name; progress too, when stderr is a terminal.
int bgp_dump(const std::vector<std::string>& files) {
  const bool progress = ::isatty(STDERR_FILENO) == 1;
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
    std::error_code ec;
    const auto size = std::filesystem::file_size(file, ec);
    vantage::bgp::BgpdumpFormatter formatter;
    vantage::bgp::MrtRecord record;
    auto last = std::chrono::steady_clock::now();
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
      if (progress && size && (record.offset & 0xFFF) < 64) {
        const auto now = std::chrono::steady_clock::now();
        if (now - last > std::chrono::milliseconds(500)) {
          last = now;
          std::fprintf(stderr, "\r%s: %3.0f%%", file.c_str(),
                       100.0 * static_cast<double>(reader->compressed_bytes_read()) / static_cast<double>(size));
        }
      }
    }
    if (progress && size) std::fprintf(stderr, "\r%s: done      \n", file.c_str());
    for (const auto& w : reader->warnings()) {
      std::fprintf(stderr, "vantage bgp dump: %s: %s\n", file.c_str(), w.c_str());
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (dump->parsed()) return bgp_dump(files);
  return 2;
}
