// std::error_category for each C library status the probe handles, so fallible calls can return
// std::error_code (or boost::system::error_code, which wraps it) without losing the library's
// own code and message.
#pragma once

#include <system_error>

namespace vantage::probe::net {

// CURLcode (easy interface). Message: curl_easy_strerror().
const std::error_category& curl_category() noexcept;
// CURLMcode (multi interface). Message: curl_multi_strerror().
const std::error_category& curl_multi_category() noexcept;
// c-ares status (ARES_SUCCESS, ARES_ENOTFOUND, …). Message: ares_strerror().
const std::error_category& ares_category() noexcept;

inline std::error_code make_curl_error(int code) noexcept { return {code, curl_category()}; }
inline std::error_code make_curl_multi_error(int code) noexcept {
  return {code, curl_multi_category()};
}
inline std::error_code make_ares_error(int status) noexcept { return {status, ares_category()}; }

}  // namespace vantage::probe::net
