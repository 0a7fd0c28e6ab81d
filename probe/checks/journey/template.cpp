#include "probe/checks/journey/template.hpp"

#include <algorithm>
#include <cstdlib>

#include "common/config_node.hpp"

namespace vantage::probe::checks::journey {

const std::vector<std::string_view>& builtin_variables() {
  static const std::vector<std::string_view> names{"uuid", "now_unix", "now_unix_ms", "random_int",
                                                   "random_hex"};
  return names;
}

bool is_builtin(std::string_view name) {
  const auto& b = builtin_variables();
  return std::find(b.begin(), b.end(), name) != b.end();
}

namespace {

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (unsigned char c : n) {
    if (!std::isalnum(c) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

}  // namespace

std::optional<Template> Template::parse(std::string_view text, std::set<std::string>& secrets,
                                        std::string& error) {
  Template t;
  std::string literal;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      literal += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      literal += text[i++];
      continue;
    }
    const auto close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      error = "unterminated ${ at offset " + std::to_string(i) + " (write $${ for a literal ${)";
      return std::nullopt;
    }
    const std::string name(text.substr(i + 2, close - i - 2));
    i = close + 1;
    if (name.rfind("env:", 0) == 0) {
      const std::string var = name.substr(4);
      const char* value = var.empty() ? nullptr : std::getenv(var.c_str());
      if (!value) {
        error = "environment variable " + var + " is not set (referenced as ${" + name + "})";
        return std::nullopt;
      }
      if (*value) secrets.insert(value);
      literal += value;
      continue;
    }
    if (!valid_name(name)) {
      error = "invalid variable name \"" + name + "\" (letters, digits, '_', '-', '.')";
      return std::nullopt;
    }
    if (!literal.empty()) t.segments_.push_back({false, std::move(literal)});
    literal.clear();
    t.segments_.push_back({true, name});
    if (std::find(t.references_.begin(), t.references_.end(), name) == t.references_.end()) {
      t.references_.push_back(name);
    }
  }
  if (!literal.empty()) t.segments_.push_back({false, std::move(literal)});
  return t;
}

Template Template::from_node(const ConfigNode& node, std::set<std::string>& secrets) {
  std::string error;
  auto t = parse(node.as_string(), secrets, error);
  if (!t) node.fail(error);
  return *t;
}

Template Template::literal(std::string text) {
  Template t;
  if (!text.empty()) t.segments_.push_back({false, std::move(text)});
  return t;
}

std::optional<std::string> Template::render(const Variables& vars, std::string& missing) const {
  std::string out;
  for (const auto& s : segments_) {
    if (!s.variable) {
      out += s.text;
      continue;
    }
    const auto it = vars.find(s.text);
    if (it == vars.end()) {
      missing = s.text;
      return std::nullopt;
    }
    out += it->second;
  }
  return out;
}

std::string redact(std::string text, const std::set<std::string>& secrets) {
  for (const auto& secret : secrets) {
    if (secret.empty()) continue;
    std::size_t pos = 0;
    while ((pos = text.find(secret, pos)) != std::string::npos) {
      text.replace(pos, secret.size(), "[redacted]");
      pos += 10;
    }
  }
  return text;
}

}  // namespace vantage::probe::checks::journey
