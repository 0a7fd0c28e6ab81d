// Config pieces several check kinds share: the common check keys, TLS client options, IP family,
// resolver lists. All throw ConfigError with file:line:col (start-up only).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "probe/net/http_client.hpp"
#include "probe/resolver_pool.hpp"

namespace vantage {
class ConfigNode;
}

namespace vantage::probe::checks {

// Keys every `checks[]` entry may have, handled by probe/config.cpp.
inline constexpr std::string_view kCommonCheckKeys[] = {"id", "kind", "interval", "timeout",
                                                        "retries"};

// Rejects keys that are neither common nor in `kind_keys`.
void expect_check_keys(const ConfigNode& node, std::initializer_list<std::string_view> kind_keys);

// `tls: {ca_file, insecure_skip_verify, min_version, max_version, client_cert, client_key}`.
// Files must exist and be readable.
net::TlsClientOptions parse_tls_options(const ConfigNode& node);

// `ip_family: auto | ip4 | ip6`.
IpFamily parse_ip_family(const ConfigNode& node);

// `resolvers: [system, "192.0.2.53:53", "[2001:db8::53]:53"]`. Each entry once.
// With `one_server_list` (http, tcp, tls: the entries are one server list tried in turn), "system"
// cannot be combined with addresses.
std::vector<std::string> parse_resolvers(const ConfigNode& node, bool one_server_list);

}  // namespace vantage::probe::checks
