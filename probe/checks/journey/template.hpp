// `${name}` templates in journey requests (URL, header values, bodies).
//
//   ${name}       a variable: from `variables:`, or extracted by an earlier step
//   ${env:NAME}   an environment variable, read once at load; its value is a secret (never
//                 logged, redacted from results)
//   ${uuid} ${now_unix} ${now_unix_ms} ${random_int} ${random_hex}   built-ins, each evaluated
//                 once per run (so one run's ${uuid} is the same in every step)
//   $${           a literal "${"
//
// Parsed at config load (errors are ConfigErrors with the node's position); rendering never throws.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace vantage {
class ConfigNode;
}

namespace vantage::probe::checks::journey {

using Variables = std::map<std::string, std::string>;

// The built-in variable names.
const std::vector<std::string_view>& builtin_variables();
bool is_builtin(std::string_view name);

class Template {
 public:
  Template() = default;
  // Parses `text`; ${env:NAME} is resolved now (a missing variable is an error) and its value
  // added to `secrets`. On error returns nullopt and sets `error`.
  static std::optional<Template> parse(std::string_view text, std::set<std::string>& secrets,
                                       std::string& error);
  // Parses a scalar config node; throws ConfigError at the node.
  static Template from_node(const ConfigNode& node, std::set<std::string>& secrets);
  static Template literal(std::string text);

  // Substitutes variables. If a referenced variable is not in `vars`, returns nullopt and sets
  // `missing` to its name.
  std::optional<std::string> render(const Variables& vars, std::string& missing) const;

  // Variable names referenced (built-ins included, env references excluded).
  const std::vector<std::string>& references() const noexcept { return references_; }
  bool constant() const noexcept { return references_.empty(); }

 private:
  struct Segment {
    bool variable = false;
    std::string text;  // literal text, or the variable's name
  };
  std::vector<Segment> segments_;
  std::vector<std::string> references_;
};

// Replaces every occurrence of each secret in `text` with "[redacted]".
std::string redact(std::string text, const std::set<std::string>& secrets);

}  // namespace vantage::probe::checks::journey
