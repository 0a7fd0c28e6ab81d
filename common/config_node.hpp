// Strict YAML configuration reading (yaml-cpp underneath).
//
// Every error is a ConfigError whose message is `file:line:col: key.path: what was expected`,
// e.g. `regions/eu-west.yaml:14:7: checks[0].expect.status: expected an HTTP status code
// (100-599), got "OK"`. Unknown keys are errors; a key given twice is an error.
// Line and column are 1-based. Only used at start-up: errors are exceptions.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace YAML {
class Node;
}

namespace vantage {

class ConfigError : public std::runtime_error {
 public:
  // `line`/`column` 1-based, 0 when unknown (then omitted from the message).
  ConfigError(std::string file, int line, int column, std::string key, std::string message);
  const std::string& file() const noexcept { return file_; }
  int line() const noexcept { return line_; }
  int column() const noexcept { return column_; }
  const std::string& key() const noexcept { return key_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string file_;
  int line_;
  int column_;
  std::string key_;
  std::string reason_;
};

// A position in a configuration tree: the YAML node, the file it came from and its key path.
class ConfigNode {
 public:
  // Loads and parses a YAML file. Throws ConfigError on an unreadable file or a YAML syntax error
  // (with the parser's line and column).
  static ConfigNode load_file(const std::string& path);
  // Parses YAML text; `name` stands in for the file name in messages.
  static ConfigNode load_string(std::string_view text, const std::string& name);

  ConfigNode(const ConfigNode&);
  ConfigNode& operator=(const ConfigNode&);
  ConfigNode(ConfigNode&&) noexcept;
  ConfigNode& operator=(ConfigNode&&) noexcept;
  ~ConfigNode();

  bool is_map() const;
  bool is_sequence() const;
  bool is_scalar() const;
  bool is_null() const;
  // True for a quoted scalar ("200", '200'): YAML's way of saying "this is a string".
  bool is_quoted() const;

  // Requires a mapping whose keys are all in `allowed`; throws naming the first unknown key and
  // listing the allowed ones. Also rejects a key given twice.
  void expect_keys(std::initializer_list<std::string_view> allowed) const;
  void expect_keys(const std::vector<std::string_view>& allowed) const;
  // Requires a mapping (any keys); throws otherwise.
  void expect_map() const;

  bool has(std::string_view key) const;
  // The child at `key`, or nullopt when absent or `null`. Requires a mapping.
  std::optional<ConfigNode> get(std::string_view key) const;
  // The child at `key`; throws "missing required key" when absent.
  ConfigNode require(std::string_view key) const;

  // Scalars. Each throws a ConfigError naming this node when the value does not fit.
  std::string as_string() const;
  std::string as_nonempty_string() const;
  bool as_bool() const;
  std::int64_t as_int(std::int64_t min, std::int64_t max) const;
  double as_double(double min, double max) const;
  // A duration such as "500ms", "10s", "1m30s", "14d" (see parse_duration). Bounds inclusive.
  std::chrono::nanoseconds as_duration(std::chrono::nanoseconds min,
                                       std::chrono::nanoseconds max) const;
  // A size in bytes: an integer, or a number with a unit B, KiB, MiB, GiB, KB, MB, GB
  // ("64KiB", "256MiB"). Bounds inclusive.
  std::uint64_t as_bytes(std::uint64_t min, std::uint64_t max) const;
  // One of `choices` (exact match); throws listing the choices.
  std::string as_enum(std::initializer_list<std::string_view> choices) const;

  // A sequence's items; a scalar is NOT accepted as a one-item list (strictness).
  std::vector<ConfigNode> items() const;
  // A sequence of strings; if `allow_scalar`, a single scalar is taken as a one-item list.
  std::vector<std::string> as_string_list(bool allow_scalar = false) const;
  // A mapping's entries in file order.
  std::vector<std::pair<std::string, ConfigNode>> entries() const;

  // The key path, e.g. "checks[2].expect.status"; empty for the root.
  const std::string& path() const noexcept { return path_; }
  const std::string& file() const noexcept { return *file_; }
  int line() const;    // 1-based
  int column() const;  // 1-based
  // The raw scalar text (for messages).
  std::string text() const;

  // Throws a ConfigError at this node: "file:line:col: path: message".
  [[noreturn]] void fail(const std::string& message) const;

 private:
  ConfigNode(std::unique_ptr<YAML::Node> node, std::shared_ptr<const std::string> file,
             std::string path);
  ConfigNode child(const YAML::Node& node, std::string path) const;
  std::string describe() const;  // e.g. `"OK"`, `a mapping`, `a list`

  std::unique_ptr<YAML::Node> node_;
  std::shared_ptr<const std::string> file_;
  std::string path_;
};

// A secret (a bearer token) given either in a file (first line) or in an environment variable:
// exactly one of `parent.file_key`, `parent.env_key` must be present. `what` names it in messages
// ("token"). Printable ASCII without spaces; never logged. Throws ConfigError.
std::string read_secret(const ConfigNode& parent, std::string_view file_key,
                        std::string_view env_key, std::string_view what);

}  // namespace vantage
