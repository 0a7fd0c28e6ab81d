// The `vantage bgp dump|scan|generate` commands (MRT, BMP and RIS Live files, see docs/bgp.md):
// one function per command, taking its parsed options. Output goes to stdout, damage warnings
// and errors to stderr ("vantage bgp dump: FILE: offset 9284: …"); each returns the process exit
// status.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vantage::analysis::cli {

// Exit statuses of `bgp dump` and `bgp scan` (documented in docs/bgp.md and --help): 1 wins over
// 3, since a file not read at all is the larger loss. 2 (usage or configuration) is CLI11's and
// scan's when its prefixes, AS relationships or VRP file cannot be loaded.
inline constexpr int kExitUnreadable = 1;  // a file could not be opened
inline constexpr int kExitUsage = 2;       // a usage or configuration error
inline constexpr int kExitDamaged =
    3;  // damage reported on stderr: records skipped or read in part

// The --help footer of `bgp dump` and `bgp scan`, saying the above.
inline constexpr const char* kBgpExitStatuses =
    "Damage (a cut or corrupt file, a damaged record) is reported on stderr with its\n"
    "position and a summary per file; everything readable is still output.\n"
    "Exit status: 0 every record read; 1 a file could not be opened; 2 a usage or\n"
    "configuration error; 3 damage reported (records skipped or read in part, a cut or\n"
    "corrupt stream).";

struct BgpDumpOptions {
  std::vector<std::string> files;  // MRT files (gzip, bzip2 or plain), in order
};

// Prints every route entry of the files as `bgpdump -m` does. Returns 0, kExitUnreadable or
// kExitDamaged.
int bgp_dump(const BgpDumpOptions& options);

struct BgpScanOptions {
  std::vector<std::string> files;  // MRT files, captured BMP streams or RIS Live JSON lines
  std::string prefixes_file;       // expectations (BGPalerter-like YAML), required
  std::string as_rel_file;         // CAIDA AS relationships, optional (empty: none)
  std::string vrp_file;            // RPKI VRPs (rpki-client/Routinator JSON), optional
  bool json = false;               // one JSON object per alert, then a scan_summary object
  int min_peers = 0;               // > 0 overrides the prefixes file's options.min_peers
};

// Replays the files through the monitor and prints its alerts. Returns 0, kExitUnreadable,
// kExitUsage (a prefixes, AS relationships or VRP file that does not load) or kExitDamaged.
int bgp_scan(const BgpScanOptions& options);

struct BgpGenerateOptions {
  std::vector<std::string> files;  // MRT files (RIB dumps)
  std::uint32_t origin = 0;        // the origin AS whose prefixes are proposed
};

// Prints a proposed prefixes file (YAML) for what `origin` announces in the files. Damage is
// reported on stderr; returns kExitUnreadable when a file could not be opened, else 0.
int bgp_generate(const BgpGenerateOptions& options);

}  // namespace vantage::analysis::cli
