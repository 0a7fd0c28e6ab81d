#include "probe/net/errors.hpp"

#include <ares.h>
#include <curl/curl.h>

#include <string>

namespace vantage::probe::net {
namespace {

class CurlCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "curl"; }
  std::string message(int code) const override {
    return curl_easy_strerror(static_cast<CURLcode>(code));
  }
};

class CurlMultiCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "curl-multi"; }
  std::string message(int code) const override {
    return curl_multi_strerror(static_cast<CURLMcode>(code));
  }
};

class AresCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "c-ares"; }
  std::string message(int code) const override { return ares_strerror(code); }
};

}  // namespace

const std::error_category& curl_category() noexcept {
  static const CurlCategory c;
  return c;
}
const std::error_category& curl_multi_category() noexcept {
  static const CurlMultiCategory c;
  return c;
}
const std::error_category& ares_category() noexcept {
  static const AresCategory c;
  return c;
}

}  // namespace vantage::probe::net
