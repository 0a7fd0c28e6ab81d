# Writes common/version.cpp from common/version.cpp.in with the project version and the git
# revision. Run in script mode (cmake -P) before every build by the vantage_version target, and
# once at configure time. configure_file() rewrites the output only when its text changes, so a
# build after a new commit recompiles this one file and nothing else; a build with the same
# revision recompiles nothing.
#
# Input variables: VANTAGE_SOURCE_DIR, VANTAGE_VERSION, VANTAGE_VERSION_IN, VANTAGE_VERSION_OUT.
set(VANTAGE_REVISION "unknown")
find_package(Git QUIET)
if(GIT_FOUND)
  # --no-optional-locks: `describe --dirty` refreshes the index and would otherwise take
  # .git/index.lock while someone else commits.
  execute_process(
    COMMAND "${GIT_EXECUTABLE}" --no-optional-locks describe --always --dirty
    WORKING_DIRECTORY "${VANTAGE_SOURCE_DIR}"
    OUTPUT_VARIABLE _describe
    ERROR_QUIET
    RESULT_VARIABLE _rc
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(_rc EQUAL 0 AND NOT _describe STREQUAL "")
    set(VANTAGE_REVISION "${_describe}")
  endif()
endif()
configure_file("${VANTAGE_VERSION_IN}" "${VANTAGE_VERSION_OUT}" @ONLY)
