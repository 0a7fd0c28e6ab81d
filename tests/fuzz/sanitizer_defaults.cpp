// Sanitizer defaults linked into every fuzz target; ASAN_OPTIONS / UBSAN_OPTIONS in the
// environment still override them (e.g. malloc_context_size=30 for longer allocation stacks
// when studying a crash, or UBSAN_OPTIONS=halt_on_error=0 to fuzz on past a known finding).
//
// Memory (each target's RSS, the limits in scripts/test): with ASan's defaults a do-nothing
// libFuzzer target reached 540 MB and check_result 855 MB in 60 s, and the YAML targets kept
// growing. Two settings make the difference:
//   quarantine_size_mb=16   freed memory ASan holds back to catch use-after-free (default 256);
//                           16 MB still covers the last tens of thousands of frees, which is
//                           where a parser's use-after-free lies;
//   malloc_context_size=10  frames kept per allocation and free (default 30): the stack depot
//                           stores every distinct one and never shrinks, and recursive parsers
//                           (yaml-cpp, nlohmann) make new ones for as long as the run lasts.
//                           The crash's own stack is not shortened.
extern "C" const char* __asan_default_options() {
  return "quarantine_size_mb=16:malloc_context_size=10";
}

// UBSan findings end the run (by default UBSan prints and goes on, unseen by libFuzzer).
extern "C" const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }
