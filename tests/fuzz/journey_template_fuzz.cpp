// libFuzzer target: journey templates and the journey config parser
// (probe/checks/journey/template.cpp, journey_check.cpp). Every input is used twice:
//   1. as template text (`${name}`, `${env:NAME}`, `$${`): Template::parse answers a template or
//      an error, never a crash; a parsed template renders when every variable it references is
//      given and fails naming a missing one otherwise; redact() leaves no secret behind;
//   2. as one `kind: journey` check entry (YAML): parse_journey_config answers a JourneyConfig or
//      a ConfigError naming the file, never a crash or another exception; and what it accepts
//      runs: every step's URL, headers and body render with the variables a run has at that
//      step (configured, built-ins, extracted by earlier steps), and every JSON body
//      placeholder the renderer will look up exists.
// `include:` paths resolve against regions/shared/ (where shop-checks.yaml includes from).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "common/config_node.hpp"
#include "probe/checks/journey/journey_check.hpp"
#include "probe/checks/journey/template.hpp"

using namespace vantage::probe::checks::journey;

namespace {

constexpr const char* kFile = VANTAGE_SOURCE_DIR "/regions/shared/fuzz-journey.yaml";
constexpr char kPlaceholder = '\x01';  // journey_check.cpp marks templated JSON string leaves so

[[noreturn]] void violated(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "journey_template invariant violated: %s %.*s\n", what,
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

// A secret made only of characters outside "[redacted]" cannot reappear once redacted.
bool redaction_proof(const std::string& secret) {
  return !secret.empty() && secret.find_first_of("[redacted]") == std::string::npos;
}

void check_redacted(const std::string& text, const std::set<std::string>& secrets) {
  const std::string out = redact(text, secrets);
  for (const auto& s : secrets) {
    if (redaction_proof(s) && out.find(s) != std::string::npos) {
      violated("secret left after redact");
    }
  }
}

void check_template(const Template& t, const Variables& vars,
                    const std::set<std::string>& secrets) {
  std::string missing;
  const auto text = t.render(vars, missing);
  if (!text) violated("a template does not render with its variables defined:", missing);
  check_redacted(*text, secrets);
}

// 1. The input as one template.
void fuzz_template(std::string_view input) {
  std::set<std::string> secrets;
  std::string error;
  const auto t = Template::parse(input, secrets, error);
  if (!t) {
    if (error.empty()) violated("template refused without a reason");
    return;
  }
  const auto& refs = t->references();
  if (t->constant() != refs.empty()) violated("constant() disagrees with references()");
  Variables vars;
  for (const auto& name : refs) {
    if (!vars.emplace(name, "<" + name + ">").second) violated("a reference listed twice:", name);
  }
  check_template(*t, vars, secrets);
  if (!refs.empty()) {
    vars.erase(refs.front());
    std::string missing;
    if (t->render(vars, missing) || missing != refs.front()) {
      violated("rendering without a variable did not name it:", refs.front());
    }
  }
}

// Every string leaf that starts with the placeholder mark is "<mark><index>" of a template the
// body holds: the renderer (render_json) parses the index and looks the template up.
void check_placeholders(const nlohmann::json& j, const Body& body) {
  if (j.is_object() || j.is_array()) {
    for (const auto& item : j) check_placeholders(item, body);
    return;
  }
  if (!j.is_string()) return;
  const auto& s = j.get_ref<const std::string&>();
  if (s.empty() || s[0] != kPlaceholder) return;
  const std::string index = s.substr(1);
  if (index.empty() || index.size() > 9 ||
      index.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(index) >= body.json_strings.size()) {
    violated("a JSON body string the renderer takes for a placeholder it does not have");
  }
}

// 2. The input as a journey check entry.
void fuzz_journey(std::string_view input) {
  JourneyConfig c;
  try {
    const auto root = vantage::ConfigNode::load_string(input, kFile);
    if (!root.is_map()) return;
    c = parse_journey_config(root);
  } catch (const vantage::ConfigError& e) {
    // The entry's file, or an included one: "file:line:col: key: message".
    if (e.file().empty() || std::string(e.what()).rfind(e.file(), 0) != 0 || e.reason().empty()) {
      violated("error without its file or reason:", e.what());
    }
    return;
  }
  if (c.steps.empty()) violated("a journey without steps was accepted");
  // The variables a run has before its first step, then what each step extracts.
  Variables vars = c.variables;
  for (auto name : builtin_variables()) vars[std::string(name)] = "builtin";
  std::set<std::string> names;
  for (const Step& s : c.steps) {
    if (!names.insert(s.name).second) violated("two steps named", s.name);
    check_template(s.url, vars, c.secrets);
    for (const auto& [name, value] : s.headers) check_template(value, vars, c.secrets);
    switch (s.body.kind) {
      case Body::Kind::raw:
        check_template(s.body.raw, vars, c.secrets);
        break;
      case Body::Kind::form:
        for (const auto& [name, value] : s.body.form) check_template(value, vars, c.secrets);
        break;
      case Body::Kind::json:
        check_placeholders(s.body.json, s.body);
        for (const auto& t : s.body.json_strings) check_template(t, vars, c.secrets);
        break;
      case Body::Kind::none:
        break;
    }
    for (const auto& e : s.extract) vars[e.variable] = "extracted";
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The secrets the seeds read with ${env:…} (the checkout journey's password among them).
  setenv("SHOP_PROBE_PASSWORD", "S3CR3T-PW-0K", 1);
  setenv("VANTAGE_FUZZ_SECRET", "T0K3N-XYZ-42", 1);
  setenv("VANTAGE_FUZZ_EMPTY", "", 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  fuzz_template(input);
  fuzz_journey(input);
  return 0;
}
