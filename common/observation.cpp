#include "common/observation.hpp"

#include <array>
#include <nlohmann/json.hpp>
#include <utility>

namespace vantage {

using nlohmann::json;

std::string_view to_string(Source s) noexcept {
  switch (s) {
    case Source::probe:
      return "probe";
    case Source::browser:
      return "browser";
    case Source::bgp:
      return "bgp";
  }
  return "probe";
}

std::optional<Source> parse_source(std::string_view s) noexcept {
  if (s == "probe") return Source::probe;
  if (s == "browser") return Source::browser;
  if (s == "bgp") return Source::bgp;
  return std::nullopt;
}

namespace {
constexpr std::array<std::pair<Phase, std::string_view>, 6> kPhaseNames{{
    {Phase::dns, "dns"},
    {Phase::connect, "connect"},
    {Phase::tls, "tls"},
    {Phase::ttfb, "ttfb"},
    {Phase::transfer, "transfer"},
    {Phase::assertion, "assertion"},
}};
}  // namespace

std::string_view to_string(Phase p) noexcept {
  for (const auto& [v, n] : kPhaseNames) {
    if (v == p) return n;
  }
  return "dns";
}

std::optional<Phase> parse_phase(std::string_view s) noexcept {
  for (const auto& [v, n] : kPhaseNames) {
    if (n == s) return v;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Serialisation. Empty strings and unset optionals are omitted to keep lines short.

namespace {

void put(json& j, const char* key, const std::string& v) {
  if (!v.empty()) j[key] = v;
}
void put(json& j, const char* key, const std::optional<double>& v) {
  if (v) j[key] = *v;
}

json outcome_json(const Outcome& o) {
  json j;
  j["type"] = to_string(o.type);
  j["phase"] = to_string(o.nel());
  if (o.failed_at) j["failed_at"] = to_string(*o.failed_at);
  if (o.status_code) j["status_code"] = *o.status_code;
  put(j, "assertion", o.assertion);
  put(j, "detail", o.detail);
  if (o.step_index) j["step_index"] = *o.step_index;
  put(j, "step", o.step);
  return j;
}

json phases_json(const Phases& ph) {
  json p;
  put(p, "dns", ph.dns);
  put(p, "connect", ph.connect);
  put(p, "tls", ph.tls);
  put(p, "ttfb", ph.ttfb);
  put(p, "transfer", ph.transfer);
  p["total"] = ph.total;
  return p;
}

json assertions_json(const std::vector<AssertionResult>& list) {
  json a = json::array();
  for (const auto& x : list) {
    json e{{"name", x.name}, {"passed", x.passed}};
    put(e, "expected", x.expected);
    put(e, "actual", x.actual);
    a.push_back(std::move(e));
  }
  return a;
}

}  // namespace

json to_json(const Vantage& vantage) {
  json v;
  v["source"] = to_string(vantage.source);
  put(v, "probe_id", vantage.probe_id);
  put(v, "region", vantage.region);
  put(v, "country", vantage.country);
  put(v, "city", vantage.city);
  if (vantage.asn) v["asn"] = vantage.asn;
  put(v, "isp", vantage.isp);
  put(v, "client_prefix", vantage.client_prefix);
  return v;
}

json to_json(const CheckResult& r) {
  json j;
  j["kind"] = r.steps.empty() ? "check_result" : "journey_result";
  j["id"] = r.id;
  j["check"] = r.check_id;
  j["check_kind"] = r.check_kind;
  j["time"] = format_rfc3339(r.time);

  j["vantage"] = to_json(r.vantage);

  json t = json::object();
  put(t, "url", r.target.url);
  put(t, "host", r.target.host);
  if (r.target.port) t["port"] = r.target.port;
  put(t, "server_ip", r.target.server_ip);
  put(t, "resolver", r.target.resolver);
  put(t, "prefix", r.target.prefix);
  j["target"] = std::move(t);

  j["outcome"] = outcome_json(r.outcome);

  j["phases_ms"] = phases_json(r.phases);
  if (!r.assertions.empty()) j["assertions"] = assertions_json(r.assertions);
  if (!r.steps.empty()) {
    json steps = json::array();
    for (const auto& st : r.steps) {
      json e{{"index", st.index}, {"name", st.name}, {"outcome", outcome_json(st.outcome)},
             {"phases_ms", phases_json(st.phases)}, {"body_bytes", st.body_bytes},
             {"redirects", st.redirects}};
      if (st.always) e["always"] = true;
      if (st.skipped) e["skipped"] = true;
      put(e, "method", st.method);
      put(e, "url", st.url);
      put(e, "span_id", st.span_id);
      if (st.status_code) e["status_code"] = *st.status_code;
      if (!st.assertions.empty()) e["assertions"] = assertions_json(st.assertions);
      if (!st.extracted.empty()) e["extracted"] = st.extracted;
      steps.push_back(std::move(e));
    }
    j["steps"] = std::move(steps);
  }
  if (r.http) {
    json h{{"status_code", r.http->status_code},
           {"redirects", r.http->redirects},
           {"content_length", r.http->content_length},
           {"body_bytes", r.http->body_bytes}};
    put(h, "http_version", r.http->http_version);
    put(h, "final_url", r.http->final_url);
    j["http"] = std::move(h);
  }
  if (r.tls) {
    json h;
    put(h, "version", r.tls->version);
    put(h, "cipher", r.tls->cipher);
    put(h, "subject", r.tls->subject);
    put(h, "issuer", r.tls->issuer);
    if (!r.tls->dns_names.empty()) h["dns_names"] = r.tls->dns_names;
    if (!r.tls->ip_addresses.empty()) h["ip_addresses"] = r.tls->ip_addresses;
    if (r.tls->earliest_expiry) h["earliest_expiry"] = format_rfc3339(*r.tls->earliest_expiry);
    if (r.tls->verified_chain_expiry) {
      h["verified_chain_expiry"] = format_rfc3339(*r.tls->verified_chain_expiry);
    }
    h["chain_length"] = r.tls->chain_length;
    put(h, "verify_error", r.tls->verify_error);
    j["tls"] = std::move(h);
  }
  if (r.dns) {
    json d{{"rcode", r.dns->rcode},
           {"authority_rrs", r.dns->authority_rrs},
           {"additional_rrs", r.dns->additional_rrs},
           {"authoritative", r.dns->authoritative},
           {"truncated", r.dns->truncated}};
    put(d, "query_name", r.dns->query_name);
    put(d, "query_type", r.dns->query_type);
    json a = json::array();
    for (const auto& rr : r.dns->answers) {
      a.push_back({{"name", rr.name}, {"type", rr.type}, {"ttl", rr.ttl}, {"data", rr.data}});
    }
    d["answers"] = std::move(a);
    j["dns"] = std::move(d);
  }
  if (r.tcp) {
    json tc{{"bytes_received", r.tcp->bytes_received}};
    put(tc, "received", r.tcp->received);
    j["tcp"] = std::move(tc);
  }
  put(j, "trace_id", r.trace_id);
  j["attempts"] = r.attempts;
  if (r.flaky) j["flaky"] = true;
  if (!r.failed_attempts.empty()) {
    json a = json::array();
    for (const auto& o : r.failed_attempts) a.push_back(outcome_json(o));
    j["failed_attempts"] = std::move(a);
  }
  if (r.weight != 1.0) j["weight"] = r.weight;
  return j;
}

std::string to_ndjson_line(const CheckResult& r) {
  return to_json(r).dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---------------------------------------------------------------------------------------------
// Parsing: a small reader that records the first error with its field path.

namespace {

class Reader {
 public:
  Reader(const json& j, std::string path, std::string& error)
      : j_(j), path_(std::move(path)), error_(error) {}

  bool ok() const { return error_.empty(); }

  bool fail(const std::string& field, const std::string& msg) {
    if (error_.empty()) error_ = (field.empty() ? path_ : join(field)) + ": " + msg;
    return false;
  }

  const json* find(const char* key) const {
    if (!j_.is_object()) return nullptr;
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  bool str(const char* key, std::string& out, bool required = false) {
    const json* v = find(key);
    if (!v) return required ? fail(key, "missing") : true;
    if (!v->is_string()) return fail(key, "expected a string");
    out = v->get<std::string>();
    return true;
  }

  template <typename I>
  bool integer(const char* key, I& out, std::int64_t min, std::int64_t max, bool required = false) {
    const json* v = find(key);
    if (!v) return required ? fail(key, "missing") : true;
    if (!v->is_number_integer()) return fail(key, "expected an integer");
    const auto x = v->get<std::int64_t>();
    if (x < min || x > max) return fail(key, "out of range");
    out = static_cast<I>(x);
    return true;
  }

  bool number(const char* key, std::optional<double>& out) {
    const json* v = find(key);
    if (!v) return true;
    if (!v->is_number()) return fail(key, "expected a number");
    out = v->get<double>();
    if (*out < 0) return fail(key, "must not be negative");
    return true;
  }

  bool boolean(const char* key, bool& out) {
    const json* v = find(key);
    if (!v) return true;
    if (!v->is_boolean()) return fail(key, "expected true or false");
    out = v->get<bool>();
    return true;
  }

  bool time(const char* key, std::optional<UtcTime>& out, bool required = false) {
    std::string s;
    if (!str(key, s, required)) return false;
    if (s.empty()) return required ? fail(key, "expected an RFC 3339 date-time") : true;
    out = parse_rfc3339(s);
    if (!out) return fail(key, "expected an RFC 3339 date-time");
    return true;
  }

  Reader sub(const char* key) const { return Reader(find_or_empty(key), join(key), error_); }
  bool is_object_or_absent(const char* key) {
    const json* v = find(key);
    if (v && !v->is_object()) return fail(key, "expected an object");
    return true;
  }
  const json& raw() const { return j_; }
  std::string join(const std::string& field) const {
    return path_.empty() ? field : path_ + "." + field;
  }

 private:
  const json& find_or_empty(const char* key) const {
    static const json kEmpty = json::object();
    const json* v = find(key);
    return v ? *v : kEmpty;
  }
  const json& j_;
  std::string path_;
  std::string& error_;
};

bool read_outcome(Reader r, Outcome& o) {
  std::string type;
  if (!r.str("type", type, true)) return false;
  auto t = parse_failure_type(type);
  if (!t) return r.fail("type", "unknown failure type \"" + type + "\"");
  o.type = *t;
  std::string at;
  if (!r.str("failed_at", at)) return false;
  if (!at.empty()) {
    o.failed_at = parse_phase(at);
    if (!o.failed_at) return r.fail("failed_at", "unknown phase \"" + at + "\"");
  }
  if (r.find("status_code")) {
    int sc = 0;
    if (!r.integer("status_code", sc, 0, 999)) return false;
    o.status_code = sc;
  }
  if (r.find("step_index")) {
    int index = 0;
    if (!r.integer("step_index", index, 0, 10000)) return false;
    o.step_index = index;
  }
  return r.str("assertion", o.assertion) && r.str("detail", o.detail) && r.str("step", o.step);
}

bool read_phases(Reader p, Phases& out) {
  std::optional<double> total;
  if (!p.number("dns", out.dns) || !p.number("connect", out.connect) || !p.number("tls", out.tls) ||
      !p.number("ttfb", out.ttfb) || !p.number("transfer", out.transfer) || !p.number("total", total)) {
    return false;
  }
  out.total = total.value_or(0);
  return true;
}

bool read_assertions(Reader& r, const char* key, const std::string& prefix,
                     std::vector<AssertionResult>& out, std::string& error) {
  const json* a = r.find(key);
  if (!a) return true;
  if (!a->is_array()) return r.fail(key, "expected an array");
  for (std::size_t i = 0; i < a->size(); ++i) {
    Reader e((*a)[i], prefix + key + "[" + std::to_string(i) + "]", error);
    AssertionResult x;
    if (!e.str("name", x.name, true) || !e.boolean("passed", x.passed) ||
        !e.str("expected", x.expected) || !e.str("actual", x.actual)) {
      return false;
    }
    out.push_back(std::move(x));
  }
  return true;
}

bool read_steps(Reader& r, std::vector<StepResult>& out, std::string& error) {
  const json* a = r.find("steps");
  if (!a) return true;
  if (!a->is_array()) return r.fail("steps", "expected an array");
  for (std::size_t i = 0; i < a->size(); ++i) {
    const std::string prefix = "steps[" + std::to_string(i) + "]";
    Reader e((*a)[i], prefix, error);
    StepResult st;
    if (!e.integer("index", st.index, 0, 10000) || !e.str("name", st.name, true) ||
        !e.boolean("always", st.always) || !e.boolean("skipped", st.skipped) ||
        !e.str("method", st.method) || !e.str("url", st.url) || !e.str("span_id", st.span_id) ||
        !e.integer("body_bytes", st.body_bytes, 0, INT64_MAX) ||
        !e.integer("redirects", st.redirects, 0, 1000)) {
      return false;
    }
    if (e.find("status_code")) {
      int sc = 0;
      if (!e.integer("status_code", sc, 0, 999)) return false;
      st.status_code = sc;
    }
    if (!e.find("outcome")) return e.fail("outcome", "missing");
    if (!read_outcome(e.sub("outcome"), st.outcome) || !read_phases(e.sub("phases_ms"), st.phases) ||
        !read_assertions(e, "assertions", prefix + ".", st.assertions, error)) {
      return false;
    }
    if (const json* x = e.find("extracted")) {
      if (!x->is_array()) return e.fail("extracted", "expected an array of names");
      for (const auto& n : *x) {
        if (!n.is_string()) return e.fail("extracted", "expected an array of names");
        st.extracted.push_back(n.get<std::string>());
      }
    }
    out.push_back(std::move(st));
  }
  return true;
}

}  // namespace

namespace {

bool read_vantage(Reader v, Vantage& out) {
  std::string source = "probe";
  if (!v.str("source", source)) return false;
  auto s = parse_source(source);
  if (!s) return v.fail("source", "expected probe, browser or bgp");
  out.source = *s;
  return v.str("probe_id", out.probe_id) && v.str("region", out.region) &&
         v.str("country", out.country) && v.str("city", out.city) &&
         v.integer("asn", out.asn, 0, 4294967295LL) && v.str("isp", out.isp) &&
         v.str("client_prefix", out.client_prefix);
}

}  // namespace

std::optional<CheckResult> check_result_from_json(const json& j, std::string& error) {
  error.clear();
  if (!j.is_object()) {
    error = "expected a JSON object";
    return std::nullopt;
  }
  Reader r(j, "", error);
  CheckResult out;
  std::string kind;
  if (!r.str("kind", kind, true)) return std::nullopt;
  if (kind != "check_result" && kind != "journey_result") {
    r.fail("kind", "expected \"check_result\" or \"journey_result\", got \"" + kind + "\"");
    return std::nullopt;
  }
  std::optional<UtcTime> time;
  if (!r.str("id", out.id, true) || !r.str("check", out.check_id, true) ||
      !r.str("check_kind", out.check_kind, true) || !r.time("time", time, true)) {
    return std::nullopt;
  }
  if (out.id.empty() || out.id.size() > 128) {
    r.fail("id", "must be 1 to 128 characters");
    return std::nullopt;
  }
  out.time = *time;

  for (const char* key :
       {"vantage", "target", "outcome", "phases_ms", "http", "tls", "dns", "tcp"}) {
    if (!r.is_object_or_absent(key)) return std::nullopt;
  }
  if (!read_vantage(r.sub("vantage"), out.vantage)) return std::nullopt;
  {
    Reader t = r.sub("target");
    if (!t.str("url", out.target.url) || !t.str("host", out.target.host) ||
        !t.integer("port", out.target.port, 0, 65535) ||
        !t.str("server_ip", out.target.server_ip) || !t.str("resolver", out.target.resolver) ||
        !t.str("prefix", out.target.prefix)) {
      return std::nullopt;
    }
  }
  if (!r.find("outcome")) {
    r.fail("outcome", "missing");
    return std::nullopt;
  }
  if (!read_outcome(r.sub("outcome"), out.outcome)) return std::nullopt;
  if (!read_phases(r.sub("phases_ms"), out.phases) ||
      !read_assertions(r, "assertions", "", out.assertions, error) ||
      !read_steps(r, out.steps, error)) {
    return std::nullopt;
  }
  if ((kind == "journey_result") != !out.steps.empty()) {
    r.fail("steps", kind == "journey_result" ? "a journey_result needs steps" : "only a journey_result has steps");
    return std::nullopt;
  }
  if (r.find("http")) {
    Reader h = r.sub("http");
    HttpFacts f;
    if (!h.integer("status_code", f.status_code, 0, 999) ||
        !h.integer("redirects", f.redirects, 0, 1000) ||
        !h.integer("content_length", f.content_length, -1, INT64_MAX) ||
        !h.integer("body_bytes", f.body_bytes, 0, INT64_MAX) ||
        !h.str("http_version", f.http_version) || !h.str("final_url", f.final_url)) {
      return std::nullopt;
    }
    out.http = std::move(f);
  }
  if (r.find("tls")) {
    Reader h = r.sub("tls");
    TlsFacts f;
    if (!h.str("version", f.version) || !h.str("cipher", f.cipher) ||
        !h.str("subject", f.subject) || !h.str("issuer", f.issuer) ||
        !h.time("earliest_expiry", f.earliest_expiry) ||
        !h.time("verified_chain_expiry", f.verified_chain_expiry) ||
        !h.integer("chain_length", f.chain_length, 0, 100) ||
        !h.str("verify_error", f.verify_error)) {
      return std::nullopt;
    }
    for (auto [key, list] :
         {std::pair{"dns_names", &f.dns_names}, std::pair{"ip_addresses", &f.ip_addresses}}) {
      if (const json* names = h.find(key)) {
        if (!names->is_array()) {
          h.fail(key, "expected an array of strings");
          return std::nullopt;
        }
        for (const auto& n : *names) {
          if (!n.is_string()) {
            h.fail(key, "expected an array of strings");
            return std::nullopt;
          }
          list->push_back(n.get<std::string>());
        }
      }
    }
    out.tls = std::move(f);
  }
  if (r.find("dns")) {
    Reader d = r.sub("dns");
    DnsFacts f;
    if (!d.str("rcode", f.rcode) || !d.str("query_name", f.query_name) ||
        !d.str("query_type", f.query_type) ||
        !d.integer("authority_rrs", f.authority_rrs, 0, 65535) ||
        !d.integer("additional_rrs", f.additional_rrs, 0, 65535) ||
        !d.boolean("authoritative", f.authoritative) || !d.boolean("truncated", f.truncated)) {
      return std::nullopt;
    }
    if (const json* a = d.find("answers")) {
      if (!a->is_array()) {
        d.fail("answers", "expected an array");
        return std::nullopt;
      }
      for (std::size_t i = 0; i < a->size(); ++i) {
        Reader e((*a)[i], "dns.answers[" + std::to_string(i) + "]", error);
        DnsRecord rr;
        if (!e.str("name", rr.name) || !e.str("type", rr.type, true) ||
            !e.integer("ttl", rr.ttl, 0, 4294967295LL) || !e.str("data", rr.data)) {
          return std::nullopt;
        }
        f.answers.push_back(std::move(rr));
      }
    }
    out.dns = std::move(f);
  }
  if (r.find("tcp")) {
    Reader t = r.sub("tcp");
    TcpFacts f;
    if (!t.integer("bytes_received", f.bytes_received, 0, INT64_MAX) ||
        !t.str("received", f.received)) {
      return std::nullopt;
    }
    out.tcp = std::move(f);
  }
  if (!r.str("trace_id", out.trace_id) || !r.integer("attempts", out.attempts, 1, 1000) ||
      !r.boolean("flaky", out.flaky)) {
    return std::nullopt;
  }
  if (const json* a = r.find("failed_attempts")) {
    if (!a->is_array()) {
      r.fail("failed_attempts", "expected an array");
      return std::nullopt;
    }
    for (std::size_t i = 0; i < a->size(); ++i) {
      Outcome o;
      if (!read_outcome(Reader((*a)[i], "failed_attempts[" + std::to_string(i) + "]", error), o)) {
        return std::nullopt;
      }
      out.failed_attempts.push_back(std::move(o));
    }
  }
  if (const json* w = r.find("weight")) {
    if (!w->is_number() || w->get<double>() <= 0) {
      r.fail("weight", "expected a positive number");
      return std::nullopt;
    }
    out.weight = w->get<double>();
  }
  return out;
}

std::optional<CheckResult> parse_check_result_line(std::string_view line, std::string& error) {
  json j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    error = "not valid JSON";
    return std::nullopt;
  }
  return check_result_from_json(j, error);
}

std::optional<BgpRecord> bgp_record_from_json(const json& j, std::string& error) {
  error.clear();
  if (!j.is_object()) {
    error = "expected a JSON object";
    return std::nullopt;
  }
  Reader r(j, "", error);
  BgpRecord out;
  std::optional<UtcTime> time;
  if (!r.str("kind", out.kind, true)) return std::nullopt;
  const bool event = out.kind == "route_event";
  if (!event && out.kind != "bgp_alert") {
    r.fail("kind", "expected \"route_event\" or \"bgp_alert\", got \"" + out.kind + "\"");
    return std::nullopt;
  }
  if (!r.str("id", out.id, true) || !r.str("check", out.check, true) ||
      !r.time("time", time, true) || !r.is_object_or_absent("vantage")) {
    return std::nullopt;
  }
  if (out.id.empty() || out.id.size() > 128) {
    r.fail("id", "must be 1 to 128 characters");
    return std::nullopt;
  }
  out.time = *time;
  if (!r.find("vantage")) {
    r.fail("vantage", "missing");
    return std::nullopt;
  }
  if (!read_vantage(r.sub("vantage"), out.vantage)) return std::nullopt;
  if (!r.str("prefix", out.prefix) || !r.str("monitored_prefix", out.monitored_prefix)) {
    return std::nullopt;
  }
  if (r.find("origin")) {
    std::uint32_t origin = 0;
    if (!r.integer("origin", origin, 0, 4294967295LL)) return std::nullopt;
    out.origin = origin;
  }
  if (event) {
    if (!r.str("event", out.event, true) || !r.str("collector", out.collector) ||
        !r.str("as_path", out.as_path) || !r.is_object_or_absent("peer")) {
      return std::nullopt;
    }
    if (out.event != "announce" && out.event != "withdraw" && out.event != "peer_down" &&
        out.event != "peer_up") {
      r.fail("event", "expected announce, withdraw, peer_down or peer_up");
      return std::nullopt;
    }
    if (r.find("peer")) {
      Reader peer = r.sub("peer");
      if (!peer.str("ip", out.peer_ip) || !peer.integer("asn", out.peer_asn, 0, 4294967295LL)) {
        return std::nullopt;
      }
    }
    if ((out.event == "announce" || out.event == "withdraw") && out.prefix.empty()) {
      r.fail("prefix", "missing");
      return std::nullopt;
    }
    return out;
  }
  if (!r.str("alert", out.event, true) || !r.str("status", out.status, true) ||
      !r.str("alert_key", out.alert_key, true) ||
      !r.integer("leaker", out.leaker, 0, 4294967295LL)) {
    return std::nullopt;
  }
  if (out.status != "open" && out.status != "resolved") {
    r.fail("status", "expected open or resolved");
    return std::nullopt;
  }
  if (out.prefix.empty()) {
    r.fail("prefix", "missing");
    return std::nullopt;
  }
  return out;
}

}  // namespace vantage
