#include "common/rlimit.hpp"

#include <sys/resource.h>

#include <cstdio>
#include <limits>

namespace vantage {

OpenFileLimit raise_open_file_limit() noexcept {
  OpenFileLimit out;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return out;
  auto value = [](rlim_t v) {
    return v == RLIM_INFINITY ? std::numeric_limits<std::uint64_t>::max()
                              : static_cast<std::uint64_t>(v);
  };
  out.soft_before = out.soft = value(lim.rlim_cur);
  out.hard = value(lim.rlim_max);
  if (lim.rlim_cur == lim.rlim_max) return out;
  rlim_t target = lim.rlim_max;
  if (target == RLIM_INFINITY) {
    // setrlimit(RLIMIT_NOFILE) above fs.nr_open fails with EPERM.
    target = 1024 * 1024;
    if (FILE* f = std::fopen("/proc/sys/fs/nr_open", "r")) {
      unsigned long long n = 0;
      if (std::fscanf(f, "%llu", &n) == 1 && n > 0) target = static_cast<rlim_t>(n);
      std::fclose(f);
    }
  }
  rlimit raised{target, lim.rlim_max};
  if (setrlimit(RLIMIT_NOFILE, &raised) == 0) out.soft = value(target);
  return out;
}

}  // namespace vantage
