#include "probe/checks/journey/journey_check.hpp"

#include <strings.h>

#include <algorithm>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <map>

#include "common/config_node.hpp"
#include "common/ids.hpp"
#include "probe/checks/common_config.hpp"
#include "probe/checks/http/fetch.hpp"
#include "probe/net/url.hpp"

namespace vantage::probe::checks::journey {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr char kPlaceholder = '\x01';  // marks a templated string leaf in a JSON body

std::string join(const std::vector<std::string>& names) {
  if (names.empty()) return "none";
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// Which variables a step may use, for load-time checks and their messages.
struct Defined {
  std::vector<std::string> configured;       // `variables:`
  std::vector<std::string> extracted;        // by earlier steps, in order
  std::map<std::string, std::string> later;  // variable -> the later step that extracts it
  bool has(const std::string& name) const {
    return is_builtin(name) ||
           std::find(configured.begin(), configured.end(), name) != configured.end() ||
           std::find(extracted.begin(), extracted.end(), name) != extracted.end();
  }
  std::string describe() const {
    std::string builtins;
    for (auto b : builtin_variables()) builtins += (builtins.empty() ? "" : ", ") + std::string(b);
    return "journey variables: " + join(configured) +
           "; extracted by earlier steps: " + join(extracted) + "; built-ins: " + builtins;
  }
};

Template checked_template(const ConfigNode& node, const Defined& defined,
                          std::set<std::string>& secrets, std::vector<std::string>& references) {
  Template t = Template::from_node(node, secrets);
  for (const auto& name : t.references()) {
    if (!defined.has(name)) {
      if (auto later = defined.later.find(name); later != defined.later.end()) {
        node.fail("variable \"" + name + "\" is extracted by step \"" + later->second +
                  "\", which runs after this one");
      }
      node.fail("variable \"" + name + "\" is not defined (" + defined.describe() + ")");
    }
    if (std::find(references.begin(), references.end(), name) == references.end()) {
      references.push_back(name);
    }
  }
  return t;
}

bool valid_variable_name(const std::string& n) {
  if (n.empty() || n.size() > 64 || is_builtin(n)) return false;
  return std::all_of(n.begin(), n.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.';
  });
}

// A YAML subtree as a JSON body: plain scalars keep their YAML type, strings may be templates.
json json_body(const ConfigNode& node, Body& body, const Defined& defined,
               std::set<std::string>& secrets, std::vector<std::string>& references) {
  if (node.is_map()) {
    json obj = json::object();
    for (const auto& [key, value] : node.entries()) {
      obj[key] = json_body(value, body, defined, secrets, references);
    }
    return obj;
  }
  if (node.is_sequence()) {
    json arr = json::array();
    for (const auto& item : node.items())
      arr.push_back(json_body(item, body, defined, secrets, references));
    return arr;
  }
  if (node.is_null()) return nullptr;
  const std::string text = node.as_string();
  if (!node.is_quoted()) {
    if (text == "true") return true;
    if (text == "false") return false;
    if (text == "null" || text == "~") return nullptr;
    json number = json::parse(text, nullptr, false);
    if (!number.is_discarded() && number.is_number()) return number;
  }
  Template t = checked_template(node, defined, secrets, references);
  if (t.constant()) {
    std::string missing;
    std::string constant = *t.render({}, missing);
    // A constant that starts with the placeholder mark would be taken for a placeholder when
    // the body is rendered: keep it as a (constant) template instead, so that a string starting
    // with the mark is always one (found by the journey_template fuzzer).
    if (constant.empty() || constant[0] != kPlaceholder) return constant;
  }
  body.json_strings.push_back(std::move(t));
  return std::string(1, kPlaceholder) + std::to_string(body.json_strings.size() - 1);
}

bool valid_header_name(const std::string& name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}

Step parse_step(const ConfigNode& node, Defined& defined, std::set<std::string>& secrets) {
  node.expect_keys({"name", "always", "request", "expect", "extract"});
  Step s;
  s.name = node.require("name").as_nonempty_string();
  if (auto v = node.get("always")) s.always = v->as_bool();

  const ConfigNode req = node.require("request");
  req.expect_keys(
      {"method", "url", "headers", "body", "json", "form", "follow_redirects", "max_redirects"});
  if (auto v = req.get("method")) {
    s.method = v->as_enum({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"});
  }
  const ConfigNode url = req.require("url");
  s.url = checked_template(url, defined, secrets, s.references);
  {
    // An http(s) URL, or one that starts with a variable holding the scheme and host
    // ("${base}/api/login"): checked with stand-in values now, for real at run time.
    const std::string text = url.as_string();
    if (text.rfind("${", 0) != 0) {
      Variables stand_ins;
      for (const auto& name : s.url.references()) stand_ins[name] = "x";
      std::string missing, error;
      if (!net::parse_http_url(*s.url.render(stand_ins, missing), error)) url.fail(error);
    }
  }
  if (auto h = req.get("headers")) {
    for (auto& [name, value] : h->entries()) {
      if (!valid_header_name(name)) value.fail("invalid header name");
      if (value.as_string().find_first_of("\r\n") != std::string::npos) {
        value.fail("header values cannot contain line breaks");
      }
      s.headers.emplace_back(name, checked_template(value, defined, secrets, s.references));
    }
  }
  const int bodies = req.has("body") + req.has("json") + req.has("form");
  if (bodies > 1) req.fail("give one of body, json, form");
  if (auto b = req.get("body")) {
    s.body.kind = Body::Kind::raw;
    s.body.raw = checked_template(*b, defined, secrets, s.references);
  } else if (auto j = req.get("json")) {
    s.body.kind = Body::Kind::json;
    s.body.json = json_body(*j, s.body, defined, secrets, s.references);
  } else if (auto f = req.get("form")) {
    s.body.kind = Body::Kind::form;
    for (auto& [name, value] : f->entries()) {
      s.body.form.emplace_back(name, checked_template(value, defined, secrets, s.references));
    }
  }
  if (s.method == "HEAD" && s.body.kind != Body::Kind::none)
    req.fail("a HEAD request cannot have a body");
  if (auto v = req.get("follow_redirects")) s.follow_redirects = v->as_bool();
  if (auto v = req.get("max_redirects")) s.max_redirects = static_cast<int>(v->as_int(0, 50));

  if (auto expect = node.get("expect")) {
    expect->expect_keys(
        {"status", "body_matches", "body_not_matches", "json", "headers", "max_duration"});
    if (auto v = expect->get("status")) s.status = StatusSet::parse(*v);
    auto patterns = [](const ConfigNode& n) {
      std::vector<Pattern> out;
      if (n.is_sequence()) {
        for (const auto& item : n.items()) out.push_back(Pattern::parse(item));
      } else {
        out.push_back(Pattern::parse(n));
      }
      return out;
    };
    if (auto v = expect->get("body_matches")) s.body_matches = patterns(*v);
    if (auto v = expect->get("body_not_matches")) s.body_not_matches = patterns(*v);
    if (auto v = expect->get("json")) {
      for (auto& [location, value] : v->entries()) {
        std::string err;
        auto ptr = parse_json_location(location, err);
        if (!ptr) value.fail(err);
        s.json.push_back({location, *ptr, ValueMatcher::parse(value)});
      }
    }
    if (auto v = expect->get("headers")) {
      for (auto& [name, value] : v->entries()) {
        std::string lower = name;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        s.headers_expect.push_back({lower, ValueMatcher::parse(value)});
      }
    }
    if (auto v = expect->get("max_duration")) {
      s.max_duration = v->as_duration(std::chrono::milliseconds(1), std::chrono::hours(1));
    }
  }

  if (auto ex = node.get("extract")) {
    for (auto& [variable, spec] : ex->entries()) {
      if (!valid_variable_name(variable)) {
        spec.fail("invalid variable name (letters, digits, '_', '-', '.'; not a built-in)");
      }
      spec.expect_keys({"json", "regex", "header", "cookie", "status"});
      const int given = spec.has("json") + spec.has("regex") + spec.has("header") +
                        spec.has("cookie") + spec.has("status");
      if (given != 1) spec.fail("give exactly one of json, regex, header, cookie, status");
      Extraction e;
      e.variable = variable;
      if (auto v = spec.get("json")) {
        e.source = Extraction::Source::json;
        e.location = v->as_nonempty_string();
        std::string err;
        auto ptr = parse_json_location(e.location, err);
        if (!ptr) v->fail(err);
        e.pointer = *ptr;
      } else if (auto r = spec.get("regex")) {
        e.source = Extraction::Source::regex;
        e.pattern = Pattern::parse(*r);
        e.location = e.pattern->source();
      } else if (auto h = spec.get("header")) {
        e.source = Extraction::Source::header;
        e.location = h->as_nonempty_string();
      } else if (auto c = spec.get("cookie")) {
        e.source = Extraction::Source::cookie;
        e.location = c->as_nonempty_string();
      } else {
        const ConfigNode st = spec.require("status");
        if (!st.as_bool()) st.fail("write status: true to extract the status code");
        e.source = Extraction::Source::status;
      }
      s.extract.push_back(std::move(e));
    }
  }
  for (const auto& e : s.extract) defined.extracted.push_back(e.variable);
  return s;
}

void parse_variables(const ConfigNode& node, JourneyConfig& c, Defined& defined) {
  for (auto& [name, value] : node.entries()) {
    if (!valid_variable_name(name))
      value.fail("invalid variable name (letters, digits, '_', '-', '.'; not a built-in)");
    // Literal text or ${env:…}; variables do not reference other variables.
    Template t = Template::from_node(value, c.secrets);
    if (!t.constant()) value.fail("variables may use ${env:NAME} but not other variables");
    std::string missing;
    c.variables[name] = *t.render({}, missing);
    if (std::find(defined.configured.begin(), defined.configured.end(), name) ==
        defined.configured.end()) {
      defined.configured.push_back(name);
    }
  }
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// Renders a JSON body: placeholders become the rendered strings.
bool render_json(json& j, const Body& body, const Variables& vars, std::string& missing) {
  if (j.is_object() || j.is_array()) {
    for (auto& item : j) {
      if (!render_json(item, body, vars, missing)) return false;
    }
    return true;
  }
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    if (!s.empty() && s[0] == kPlaceholder) {
      const auto index = static_cast<std::size_t>(std::stoul(s.substr(1)));
      auto text = body.json_strings[index].render(vars, missing);
      if (!text) return false;
      j = *text;
    }
  }
  return true;
}

}  // namespace

JourneyConfig parse_journey_config(const ConfigNode& node) {
  expect_check_keys(node, {"variables", "steps", "include", "resolvers", "ip_family", "tls",
                           "http_version", "max_body_bytes", "cleanup_timeout"});
  JourneyConfig c;
  Defined defined;
  std::optional<ConfigNode> steps = node.get("steps");
  if (auto inc = node.get("include")) {
    if (steps) inc->fail("give steps or include, not both");
    fs::path file = inc->as_nonempty_string();
    if (file.is_relative()) file = (fs::path(node.file()).parent_path() / file).lexically_normal();
    if (!fs::exists(file)) inc->fail("included file \"" + file.string() + "\" does not exist");
    const ConfigNode root = ConfigNode::load_file(file.string());
    root.expect_keys({"variables", "steps"});
    if (auto v = root.get("variables")) parse_variables(*v, c, defined);
    steps = root.require("steps");
  }
  if (!steps) node.fail("missing required key \"steps\" (or include a file that has them)");
  if (auto v = node.get("variables")) parse_variables(*v, c, defined);
  if (auto v = node.get("resolvers")) c.resolvers = parse_resolvers(*v, true);
  if (auto v = node.get("ip_family")) c.ip_family = parse_ip_family(*v);
  if (auto v = node.get("tls")) c.tls = parse_tls_options(*v);
  if (auto v = node.get("http_version")) c.http_version = v->as_enum({"1.1", "2"});
  if (auto v = node.get("max_body_bytes"))
    c.max_body_bytes = static_cast<std::size_t>(v->as_bytes(0, 64ULL << 20));
  if (auto v = node.get("cleanup_timeout")) {
    c.cleanup_timeout = v->as_duration(std::chrono::nanoseconds(0), std::chrono::minutes(5));
  }
  // Which step extracts what, so a variable used before its step gets a precise message.
  for (const ConfigNode& item : steps->items()) {
    const auto name = item.is_map() ? item.get("name") : std::nullopt;
    const auto extract = item.is_map() ? item.get("extract") : std::nullopt;
    if (!name || !name->is_scalar() || !extract || !extract->is_map()) continue;
    for (const auto& [variable, unused] : extract->entries())
      defined.later.emplace(variable, name->as_string());
  }
  std::set<std::string> names;
  for (const ConfigNode& item : steps->items()) {
    item.expect_map();
    Step s = parse_step(item, defined, c.secrets);
    if (!names.insert(s.name).second)
      item.require("name").fail("step name \"" + s.name + "\" is used twice");
    c.steps.push_back(std::move(s));
  }
  if (c.steps.empty()) steps->fail("a journey needs at least one step");
  return c;
}

JourneyCheck::JourneyCheck(CheckCommon common, JourneyConfig config)
    : Check(std::move(common)), config_(std::move(config)) {
  has_cleanup_ = std::any_of(config_.steps.begin(), config_.steps.end(),
                             [](const Step& s) { return s.always; });
}

std::string JourneyCheck::describe() const {
  std::string names;
  for (const auto& s : config_.steps) names += (names.empty() ? "" : " → ") + s.name;
  return "journey " + names;
}

std::chrono::nanoseconds JourneyCheck::extra_time() const {
  return has_cleanup_ ? config_.cleanup_timeout : std::chrono::nanoseconds(0);
}

CheckPtr make_journey_check(CheckCommon common, const ConfigNode& node) {
  return std::make_unique<JourneyCheck>(std::move(common), parse_journey_config(node));
}

namespace {

void add(std::optional<double>& to, const std::optional<double>& v) {
  if (v) to = to.value_or(0) + *v;
}

// The step's first failure becomes its outcome (assertion failures come after transport ones).
void fail_step(StepResult& s, FailureType type, Phase at, std::string detail) {
  if (!s.outcome.ok()) return;
  s.outcome.type = type;
  s.outcome.failed_at = at;
  s.outcome.detail = std::move(detail);
}

void record(StepResult& s, std::string name, bool passed, std::string expected,
            std::string actual) {
  record_assertion(s.assertions, s.outcome, std::move(name), passed, std::move(expected),
                   std::move(actual));
}

}  // namespace

asio::awaitable<std::vector<CheckResult>> JourneyCheck::run(RunContext& ctx) {
  const auto start = std::chrono::steady_clock::now();
  CheckResult r;
  r.trace_id = ctx.trace_id;
  Variables vars = config_.variables;
  // Built-ins: once per run, so every step of a run sees the same ${uuid}.
  const UtcTime now = ctx.services.clock.utc_now();
  vars["uuid"] = ctx.services.ids.uuid_v7(now);
  vars["now_unix"] = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  vars["now_unix_ms"] = std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  vars["random_int"] = std::to_string(ctx.services.ids.below(2147483647ULL));
  vars["random_hex"] = ctx.services.ids.span_id();

  const net::CurlShare share;                  // this run's cookie jar and connections
  std::map<std::string, Resolution> resolved;  // host -> this run's lookup
  std::optional<std::size_t> failed_step;
  RunContext cleanup_ctx = ctx;
  cleanup_ctx.deadline = ctx.deadline + config_.cleanup_timeout;

  for (std::size_t i = 0; i < config_.steps.size(); ++i) {
    const Step& step = config_.steps[i];
    StepResult s;
    s.index = static_cast<int>(i);
    s.name = step.name;
    s.always = step.always;
    s.method = step.method;
    auto finish_step = [&](StepResult&& done) {
      if (!done.outcome.ok() && !done.skipped && !failed_step) {
        failed_step = i;
        r.outcome = done.outcome;
        r.outcome.step_index = done.index;
        r.outcome.step = done.name;
      }
      add(r.phases.dns, done.phases.dns);
      add(r.phases.connect, done.phases.connect);
      add(r.phases.tls, done.phases.tls);
      add(r.phases.ttfb, done.phases.ttfb);
      add(r.phases.transfer, done.phases.transfer);
      r.steps.push_back(std::move(done));
    };
    if (failed_step && !step.always) {
      s.skipped = true;
      s.outcome.detail = "not run: step \"" + config_.steps[*failed_step].name + "\" failed";
      finish_step(std::move(s));
      continue;
    }
    RunContext& step_ctx = step.always ? cleanup_ctx : ctx;
    if (std::chrono::steady_clock::now() >= step_ctx.deadline) {
      s.skipped = true;
      s.outcome.detail = "not run: the journey's deadline has passed";
      finish_step(std::move(s));
      continue;
    }

    // The request, with this run's variables.
    std::string missing;
    net::HttpRequest req;
    req.method = step.method;
    std::optional<std::string> url = step.url.render(vars, missing);
    bool ok = url.has_value();
    for (const auto& [name, value] : step.headers) {
      if (!ok) break;
      auto v = value.render(vars, missing);
      ok = v.has_value();
      if (ok) req.headers.emplace_back(name, std::move(*v));
    }
    if (ok && step.body.kind == Body::Kind::raw) {
      auto b = step.body.raw.render(vars, missing);
      ok = b.has_value();
      if (ok) req.body = std::move(*b);
    } else if (ok && step.body.kind == Body::Kind::json) {
      json body = step.body.json;
      ok = render_json(body, step.body, vars, missing);
      if (ok) {
        req.body = body.dump();
        if (std::none_of(req.headers.begin(), req.headers.end(), [](const auto& h) {
              return h.first.size() == 12 && strncasecmp(h.first.c_str(), "content-type", 12) == 0;
            })) {
          req.headers.emplace_back("Content-Type", "application/json");
        }
      }
    } else if (ok && step.body.kind == Body::Kind::form) {
      std::string form;
      for (const auto& [name, value] : step.body.form) {
        auto v = value.render(vars, missing);
        if (!v) {
          ok = false;
          break;
        }
        form += (form.empty() ? "" : "&") + url_encode(name) + "=" + url_encode(*v);
      }
      if (ok) {
        req.body = std::move(form);
        req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
      }
    }
    if (!ok) {
      // A variable an earlier step extracts is not there: that step failed or did not run.
      std::string producer;
      for (const auto& other : config_.steps) {
        for (const auto& e : other.extract) {
          if (e.variable == missing && producer.empty()) producer = other.name;
        }
      }
      const std::string why = "needs ${" + missing + "}, which step \"" + producer +
                              "\" extracts, and it did not (it failed or was not run)";
      if (failed_step) {
        s.skipped = true;
        s.outcome.detail = "not run: " + why;
      } else {
        fail_step(s, FailureType::assertion_failed, Phase::assertion, why);
        s.outcome.assertion = "variable:" + missing;
      }
      finish_step(std::move(s));
      continue;
    }
    s.url = net::strip_query_and_fragment(*url);

    // Resolve the host (once per run) through the journey's resolvers.
    std::string parse_error;
    const auto parts = net::parse_http_url(*url, parse_error);
    if (!parts) {
      fail_step(s, FailureType::http_failed, Phase::connect,
                "invalid URL after substitution: " + parse_error);
      finish_step(std::move(s));
      continue;
    }
    Resolution res;
    auto cached = resolved.find(parts->host);
    if (cached == resolved.end()) {
      res = co_await ctx.services.resolvers.resolve(parts->host, config_.ip_family,
                                                    config_.resolvers, step_ctx.deadline);
      if (!res.failure) resolved[parts->host] = res;
    } else {
      res = cached->second;
      res.dns_ms = 0;  // looked up by an earlier step of this run
    }
    if (res.failure) {
      s.phases.dns = res.dns_ms;
      fail_step(s, res.failure->type, res.failure->phase, res.failure->detail);
      s.phases.total = res.dns_ms;
      finish_step(std::move(s));
      continue;
    }

    req.url = *url;
    req.tls = config_.tls;
    req.http_version = config_.http_version;
    req.max_body_bytes = config_.max_body_bytes;
    req.fresh_connection = false;  // keep-alive within the run, like a browser
    req.share = &share;
    req.list_cookies =
        std::any_of(step.extract.begin(), step.extract.end(),
                    [](const Extraction& e) { return e.source == Extraction::Source::cookie; });
    const http::FetchOptions options{step.follow_redirects, step.max_redirects, config_.ip_family,
                                     config_.resolvers};
    const auto step_start = std::chrono::steady_clock::now();
    const http::FetchResult fetched = co_await http::fetch(step_ctx, std::move(req), res, options);
    const net::HttpExchange& ex = fetched.last;
    // The journey's address: the one its failing step connected to, else its first step's
    // (the analysis compares it with what other vantage points reached: a DNS answer problem
    // shows as a different address).
    if (!fetched.server_ip.empty() &&
        (r.target.server_ip.empty() || (fetched.failure && !failed_step))) {
      r.target.server_ip = fetched.server_ip;
    }
    s.phases = fetched.phases;
    s.redirects = fetched.redirects;
    s.body_bytes = ex.body_bytes;
    if (!fetched.span_ids.empty()) s.span_id = fetched.span_ids.front();
    if (ex.status > 0) s.status_code = static_cast<int>(ex.status);
    if (fetched.failure) {
      net::apply(*fetched.failure, s.outcome);
    } else {
      const bool status_ok = step.status.contains(ex.status);
      if (!status_ok && ex.status >= 400) {
        s.outcome.type = FailureType::http_error;
        s.outcome.failed_at = Phase::assertion;
        s.outcome.detail =
            "status " + std::to_string(ex.status) + " is not in " + step.status.text();
      }
      s.outcome.status_code = static_cast<int>(ex.status);
      record(s, "status", status_ok, step.status.text(), std::to_string(ex.status));
      const bool needs_json =
          !step.json.empty() ||
          std::any_of(step.extract.begin(), step.extract.end(),
                      [](const Extraction& e) { return e.source == Extraction::Source::json; });
      const json doc = needs_json ? json::parse(ex.body, nullptr, false) : json();
      record_response_assertions(
          {step.body_matches, step.body_not_matches, step.json, step.headers_expect}, ex.body, doc,
          [&](const std::string& name) { return ex.header(name); }, s.assertions, s.outcome);
      if (step.max_duration) {
        const double took = res.dns_ms + to_ms(std::chrono::steady_clock::now() - step_start);
        record(s, "max_duration", took <= to_ms(*step.max_duration),
               format_duration(*step.max_duration),
               std::to_string(static_cast<long long>(took)) + "ms");
      }
      // Extractions: only from a response that passed its assertions.
      for (const auto& e : step.extract) {
        if (!s.outcome.ok()) break;
        std::optional<std::string> value;
        switch (e.source) {
          case Extraction::Source::json:
            if (!doc.is_discarded() && doc.contains(e.pointer)) {
              const json& v = doc.at(e.pointer);
              value = v.is_string() ? v.get<std::string>() : v.dump();
            }
            break;
          case Extraction::Source::regex:
            value = e.pattern->capture(ex.body);
            break;
          case Extraction::Source::header:
            if (const std::string* h = ex.header(e.location)) value = *h;
            break;
          case Extraction::Source::cookie:
            for (const auto& [name, v] : ex.cookies) {
              if (name == e.location) value = v;
            }
            break;
          case Extraction::Source::status:
            value = std::to_string(ex.status);
            break;
        }
        const char* source = e.source == Extraction::Source::json     ? "json "
                             : e.source == Extraction::Source::regex  ? "regex "
                             : e.source == Extraction::Source::header ? "header "
                             : e.source == Extraction::Source::cookie ? "cookie "
                                                                      : "status";
        record(s, "extract:" + e.variable, value.has_value(), std::string(source) + e.location,
               value ? "found" : "not found");
        if (value) {
          vars[e.variable] = *value;
          s.extracted.push_back(e.variable);
        }
      }
    }
    s.phases.total = to_ms(std::chrono::steady_clock::now() - step_start) + res.dns_ms;
    finish_step(std::move(s));
  }

  // The journey's own facts: where it started, how long it took; secrets never leave the probe.
  if (!r.steps.empty()) {
    r.target.url = r.steps.front().url;
    std::string error;
    if (auto parts = net::parse_http_url(r.target.url, error)) {
      r.target.host = parts->host;
      r.target.port = parts->port;
    }
  }
  r.phases.total = to_ms(std::chrono::steady_clock::now() - start);
  const auto& secrets = config_.secrets;
  r.outcome.detail = redact(r.outcome.detail, secrets);
  r.target.url = redact(r.target.url, secrets);
  for (auto& st : r.steps) {
    st.url = redact(st.url, secrets);
    st.outcome.detail = redact(st.outcome.detail, secrets);
    for (auto& a : st.assertions) {
      a.expected = redact(a.expected, secrets);
      a.actual = redact(a.actual, secrets);
    }
  }
  std::vector<CheckResult> out;
  out.push_back(std::move(r));
  co_return out;
}

}  // namespace vantage::probe::checks::journey
