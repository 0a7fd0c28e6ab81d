#include "common/config_node.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "common/time.hpp"

namespace vantage {
namespace {

std::string make_message(const std::string& file, int line, int column, const std::string& key,
                         const std::string& message) {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

std::string join_choices(const auto& choices) {
  std::string out;
  for (std::string_view c : choices) {
    if (!out.empty()) out += ", ";
    out += c;
  }
  return out;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace

ConfigError::ConfigError(std::string file, int line, int column, std::string key,
                         std::string message)
    : std::runtime_error(make_message(file, line, column, key, message)),
      file_(std::move(file)),
      line_(line),
      column_(column),
      key_(std::move(key)),
      reason_(std::move(message)) {}

ConfigNode::ConfigNode(std::unique_ptr<YAML::Node> node, std::shared_ptr<const std::string> file,
                       std::string path)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {}

ConfigNode::ConfigNode(const ConfigNode& o)
    : node_(std::make_unique<YAML::Node>(*o.node_)), file_(o.file_), path_(o.path_) {}
ConfigNode& ConfigNode::operator=(const ConfigNode& o) {
  if (this != &o) {
    node_ = std::make_unique<YAML::Node>(*o.node_);
    file_ = o.file_;
    path_ = o.path_;
  }
  return *this;
}
ConfigNode::ConfigNode(ConfigNode&&) noexcept = default;
ConfigNode& ConfigNode::operator=(ConfigNode&&) noexcept = default;
ConfigNode::~ConfigNode() = default;

ConfigNode ConfigNode::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, 0, 0, "", "cannot read the file");
  std::stringstream ss;
  ss << in.rdbuf();
  return load_string(ss.str(), path);
}

ConfigNode ConfigNode::load_string(std::string_view text, const std::string& name) {
  try {
    auto node = std::make_unique<YAML::Node>(YAML::Load(std::string(text)));
    return ConfigNode(std::move(node), std::make_shared<const std::string>(name), "");
  } catch (const YAML::Exception& e) {
    throw ConfigError(name, e.mark.line + 1, e.mark.column + 1, "", "invalid YAML: " + e.msg);
  }
}

ConfigNode ConfigNode::child(const YAML::Node& node, std::string path) const {
  return ConfigNode(std::make_unique<YAML::Node>(node), file_, std::move(path));
}

bool ConfigNode::is_map() const { return node_->IsMap(); }
bool ConfigNode::is_sequence() const { return node_->IsSequence(); }
bool ConfigNode::is_scalar() const { return node_->IsScalar(); }
bool ConfigNode::is_null() const { return !node_->IsDefined() || node_->IsNull(); }
bool ConfigNode::is_quoted() const { return node_->IsScalar() && node_->Tag() == "!"; }

int ConfigNode::line() const { return node_->Mark().line + 1; }
int ConfigNode::column() const { return node_->Mark().column + 1; }

std::string ConfigNode::text() const { return node_->IsScalar() ? node_->Scalar() : ""; }

void ConfigNode::fail(const std::string& message) const {
  const auto mark = node_->Mark();
  const bool known = !mark.is_null();
  throw ConfigError(*file_, known ? mark.line + 1 : 0, known ? mark.column + 1 : 0, path_, message);
}

std::string ConfigNode::describe() const {
  if (is_null()) return "nothing";
  if (node_->IsMap()) return "a mapping";
  if (node_->IsSequence()) return "a list";
  return quote(node_->Scalar());
}

void ConfigNode::expect_map() const {
  if (!node_->IsMap()) fail("expected a mapping, got " + describe());
}

void ConfigNode::expect_keys(std::initializer_list<std::string_view> allowed) const {
  expect_keys(std::vector<std::string_view>(allowed));
}

void ConfigNode::expect_keys(const std::vector<std::string_view>& allowed) const {
  expect_map();
  std::set<std::string> seen;
  for (auto it = node_->begin(); it != node_->end(); ++it) {
    const YAML::Node key = it->first;  // a copy: `it->first` lives in a temporary proxy
    const std::string name = key.IsScalar() ? key.Scalar() : std::string();
    const std::string key_path = path_.empty() ? name : path_ + "." + name;
    if (!key.IsScalar()) {
      child(key, path_).fail("a key must be a plain string");
    }
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      child(key, key_path).fail("unknown key (allowed: " + join_choices(allowed) + ")");
    }
    if (!seen.insert(name).second) {
      child(key, key_path).fail("key given more than once");
    }
  }
}

bool ConfigNode::has(std::string_view key) const {
  if (!node_->IsMap()) return false;
  const YAML::Node v = static_cast<const YAML::Node&>(*node_)[std::string(key)];
  return v.IsDefined() && !v.IsNull();
}

std::optional<ConfigNode> ConfigNode::get(std::string_view key) const {
  expect_map();
  const YAML::Node v = static_cast<const YAML::Node&>(*node_)[std::string(key)];
  if (!v.IsDefined() || v.IsNull()) return std::nullopt;
  return child(v, path_.empty() ? std::string(key) : path_ + "." + std::string(key));
}

ConfigNode ConfigNode::require(std::string_view key) const {
  auto v = get(key);
  if (!v) fail("missing required key \"" + std::string(key) + "\"");
  return *v;
}

std::string ConfigNode::as_string() const {
  if (!node_->IsScalar()) fail("expected a string, got " + describe());
  return node_->Scalar();
}

std::string ConfigNode::as_nonempty_string() const {
  std::string s = as_string();
  if (s.empty()) fail("expected a non-empty string");
  return s;
}

bool ConfigNode::as_bool() const {
  if (node_->IsScalar()) {
    const std::string& s = node_->Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  fail("expected true or false, got " + describe());
}

std::int64_t ConfigNode::as_int(std::int64_t min, std::int64_t max) const {
  if (node_->IsScalar()) {
    const std::string& s = node_->Scalar();
    std::size_t used = 0;
    try {
      const long long v = std::stoll(s, &used, 10);
      if (used == s.size() && !s.empty()) {
        if (v < min || v > max) {
          fail("expected an integer from " + std::to_string(min) + " to " + std::to_string(max) +
               ", got " + s);
        }
        return v;
      }
    } catch (const std::logic_error&) {
    }
  }
  fail("expected an integer, got " + describe());
}

double ConfigNode::as_double(double min, double max) const {
  if (node_->IsScalar()) {
    const std::string& s = node_->Scalar();
    std::size_t used = 0;
    try {
      const double v = std::stod(s, &used);
      if (used == s.size() && std::isfinite(v)) {
        if (v < min || v > max) {
          std::ostringstream m;
          m << "expected a number from " << min << " to " << max << ", got " << s;
          fail(m.str());
        }
        return v;
      }
    } catch (const std::logic_error&) {
    }
  }
  fail("expected a number, got " + describe());
}

std::chrono::nanoseconds ConfigNode::as_duration(std::chrono::nanoseconds min,
                                                 std::chrono::nanoseconds max) const {
  std::optional<std::chrono::nanoseconds> d;
  if (node_->IsScalar()) d = parse_duration(node_->Scalar());
  if (!d) fail("expected a duration such as 500ms, 10s or 1m30s, got " + describe());
  if (*d < min || *d > max) {
    fail("expected a duration from " + format_duration(min) + " to " + format_duration(max) +
         ", got " + node_->Scalar());
  }
  return *d;
}

std::uint64_t ConfigNode::as_bytes(std::uint64_t min, std::uint64_t max) const {
  if (node_->IsScalar()) {
    const std::string& s = node_->Scalar();
    std::size_t i = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    const std::string unit = s.substr(i);
    std::uint64_t scale = 0;
    if (unit.empty() || unit == "B")
      scale = 1;
    else if (unit == "KiB")
      scale = 1ULL << 10;
    else if (unit == "MiB")
      scale = 1ULL << 20;
    else if (unit == "GiB")
      scale = 1ULL << 30;
    else if (unit == "KB")
      scale = 1000ULL;
    else if (unit == "MB")
      scale = 1000ULL * 1000;
    else if (unit == "GB")
      scale = 1000ULL * 1000 * 1000;
    if (i > 0 && i <= 12 && scale) {
      const std::uint64_t v = std::stoull(s.substr(0, i)) * scale;
      if (v < min || v > max) {
        fail("expected a size from " + std::to_string(min) + " to " + std::to_string(max) +
             " bytes, got " + s);
      }
      return v;
    }
  }
  fail("expected a size such as 1048576, 64KiB or 256MiB, got " + describe());
}

std::string ConfigNode::as_enum(std::initializer_list<std::string_view> choices) const {
  if (node_->IsScalar()) {
    const std::string& s = node_->Scalar();
    for (std::string_view c : choices) {
      if (c == s) return s;
    }
  }
  fail("expected one of " + join_choices(choices) + ", got " + describe());
}

std::vector<ConfigNode> ConfigNode::items() const {
  if (!node_->IsSequence()) fail("expected a list, got " + describe());
  std::vector<ConfigNode> out;
  std::size_t i = 0;
  for (const YAML::Node& item : *node_) {
    out.push_back(child(item, path_ + "[" + std::to_string(i++) + "]"));
  }
  return out;
}

std::vector<std::string> ConfigNode::as_string_list(bool allow_scalar) const {
  if (allow_scalar && node_->IsScalar()) return {node_->Scalar()};
  std::vector<std::string> out;
  for (const ConfigNode& item : items()) out.push_back(item.as_string());
  return out;
}

std::vector<std::pair<std::string, ConfigNode>> ConfigNode::entries() const {
  expect_map();
  std::vector<std::pair<std::string, ConfigNode>> out;
  std::set<std::string> seen;
  for (auto it = node_->begin(); it != node_->end(); ++it) {
    const YAML::Node key = it->first;  // a copy: `it->first` lives in a temporary proxy
    if (!key.IsScalar()) child(key, path_).fail("a key must be a plain string");
    const std::string name = key.Scalar();
    const std::string key_path = path_.empty() ? name : path_ + "." + name;
    if (!seen.insert(name).second) child(key, key_path).fail("key given more than once");
    out.emplace_back(name, child(it->second, key_path));
  }
  return out;
}

std::string read_secret(const ConfigNode& parent, std::string_view file_key,
                        std::string_view env_key, std::string_view what) {
  const bool has_file = parent.has(file_key);
  const bool has_env = parent.has(env_key);
  if (has_file == has_env) {
    parent.fail("give exactly one of " + std::string(file_key) + ", " + std::string(env_key));
  }
  std::string secret;
  if (has_file) {
    const ConfigNode f = parent.require(file_key);
    std::ifstream in(f.as_nonempty_string());
    if (!in) f.fail("cannot read the " + std::string(what) + " file \"" + f.as_string() + "\"");
    // The first line, at most 4 KiB of it: `token_file: /dev/zero` (or a huge file by mistake)
    // must not read without end (found by the collector_config fuzzer).
    constexpr std::size_t kMaxSecretBytes = 4096;
    char c = 0;
    while (secret.size() <= kMaxSecretBytes && in.get(c) && c != '\n') secret.push_back(c);
    if (secret.size() > kMaxSecretBytes) {
      f.fail("the " + std::string(what) + " file's first line is longer than 4096 bytes");
    }
    while (!secret.empty() && (secret.back() == '\r' || secret.back() == ' ')) secret.pop_back();
    if (secret.empty()) f.fail("the " + std::string(what) + " file is empty");
  } else {
    const ConfigNode e = parent.require(env_key);
    const char* v = std::getenv(e.as_nonempty_string().c_str());
    if (!v || !*v) e.fail("environment variable " + e.as_string() + " is not set");
    secret = v;
  }
  for (unsigned char c : secret) {
    if (c < 0x21 || c > 0x7E) {
      parent.fail("the " + std::string(what) + " must be printable ASCII without spaces");
    }
  }
  return secret;
}

}  // namespace vantage
