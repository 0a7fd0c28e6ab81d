// The handler's Request from a request header Boost.Beast parsed: for http/server.cpp and the
// http_request fuzz target, so both hand the handler exactly the same thing. Include it only in a
// translation unit that parses with Beast already (it drags Beast in).
#pragma once

#include <boost/beast/http.hpp>
#include <string>

#include "beacon-collector/http/handler.hpp"

namespace vantage::collector {

// `peer`: the TCP peer's address. Header fields absent from the request are "" (handler.hpp).
inline Request to_request(
    const boost::beast::http::request_parser<boost::beast::http::string_body>& parser,
    const enrich::IpAddress& peer) {
  namespace http = boost::beast::http;
  const auto& m = parser.get();
  auto header = [&m](auto field) {
    auto it = m.find(field);
    return it == m.end() ? std::string() : std::string(it->value());
  };
  Request r;
  r.method = std::string(m.method_string());
  r.target = std::string(m.target());
  r.version = m.version();
  r.host_count = static_cast<int>(m.count(http::field::host));
  r.host = header(http::field::host);
  r.content_encoding = header(http::field::content_encoding);
  r.origin = header(http::field::origin);
  r.content_type = header(http::field::content_type);
  r.authorization = header(http::field::authorization);
  r.x_forwarded_for = header("X-Forwarded-For");
  r.forwarded = header(http::field::forwarded);
  r.user_agent = header(http::field::user_agent);
  r.if_none_match = header(http::field::if_none_match);
  if (auto len = parser.content_length()) r.content_length = *len;
  r.peer = peer;
  return r;
}

}  // namespace vantage::collector
