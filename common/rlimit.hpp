// The process's open-file limit (RLIMIT_NOFILE, getrlimit(2)). Servers raise the soft limit to
// the hard one at start: the common service default soft limit of 1024 is far below what the
// kernel allows (systemd sets the hard limit to 524288), and every connection costs a descriptor.
#pragma once

#include <cstdint>

namespace vantage {

struct OpenFileLimit {
  std::uint64_t soft_before = 0;  // the soft limit the process started with (descriptors)
  std::uint64_t soft = 0;         // the soft limit now
  std::uint64_t hard = 0;         // the hard limit (RLIM_INFINITY reported as UINT64_MAX)
};

// Raises the soft RLIMIT_NOFILE to the hard limit (capped at /proc/sys/fs/nr_open when the hard
// limit is unlimited) and returns the limits before and after. Never fails: when getrlimit or
// setrlimit fails, the limits are returned as they are.
OpenFileLimit raise_open_file_limit() noexcept;

}  // namespace vantage
