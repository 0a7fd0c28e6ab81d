#include "probe/checks/common_config.hpp"

#include <unistd.h>

#include <algorithm>
#include <vector>

#include "common/config_node.hpp"
#include "probe/net/tls_inspect.hpp"

namespace vantage::probe::checks {

void expect_check_keys(const ConfigNode& node, std::initializer_list<std::string_view> kind_keys) {
  std::vector<std::string_view> allowed(std::begin(kCommonCheckKeys), std::end(kCommonCheckKeys));
  allowed.insert(allowed.end(), kind_keys.begin(), kind_keys.end());
  node.expect_keys(allowed);
}

namespace {

std::string readable_file(const ConfigNode& node) {
  const std::string path = node.as_nonempty_string();
  if (::access(path.c_str(), R_OK) != 0) node.fail("cannot read file \"" + path + "\"");
  return path;
}

}  // namespace

net::TlsClientOptions parse_tls_options(const ConfigNode& node) {
  node.expect_keys({"ca_file", "insecure_skip_verify", "min_version", "max_version", "client_cert",
                    "client_key"});
  net::TlsClientOptions o;
  if (auto v = node.get("ca_file")) {
    o.ca_file = readable_file(*v);
    std::string error;
    if (!net::check_ca_file(o.ca_file, error)) v->fail(error);
  }
  if (auto v = node.get("insecure_skip_verify")) o.insecure_skip_verify = v->as_bool();
  if (auto v = node.get("min_version")) o.min_version = v->as_enum({"1.0", "1.1", "1.2", "1.3"});
  if (auto v = node.get("max_version")) o.max_version = v->as_enum({"1.0", "1.1", "1.2", "1.3"});
  if (!o.min_version.empty() && !o.max_version.empty() && o.min_version > o.max_version) {
    node.require("max_version").fail("max_version is lower than min_version");
  }
  if (auto v = node.get("client_cert")) o.client_cert_file = readable_file(*v);
  if (auto v = node.get("client_key")) o.client_key_file = readable_file(*v);
  if (o.client_key_file.size() && o.client_cert_file.empty()) {
    node.fail("client_key needs client_cert");
  }
  return o;
}

IpFamily parse_ip_family(const ConfigNode& node) {
  const std::string v = node.as_enum({"auto", "ip4", "ip6"});
  return v == "ip4" ? IpFamily::ip4 : v == "ip6" ? IpFamily::ip6 : IpFamily::any;
}

std::vector<std::string> parse_resolvers(const ConfigNode& node, bool one_server_list) {
  std::vector<std::string> out;
  for (const ConfigNode& item : node.items()) {
    std::string entry = item.as_nonempty_string();
    const std::string error = validate_resolver(entry);
    if (!error.empty()) item.fail(error);
    if (std::find(out.begin(), out.end(), entry) != out.end()) item.fail("resolver listed twice");
    out.push_back(std::move(entry));
  }
  if (out.empty()) node.fail("expected at least one resolver (or leave resolvers out)");
  if (one_server_list && out.size() > 1 &&
      std::find(out.begin(), out.end(), "system") != out.end()) {
    node.fail(
        "\"system\" cannot be combined with resolver addresses here: list addresses only, "
        "or leave resolvers out to use the system's");
  }
  return out;
}

}  // namespace vantage::probe::checks
