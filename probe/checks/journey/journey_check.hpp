// `kind: journey` — a scripted multi-step HTTP flow (log in → add to cart → check out → …), as a
// user walks it: named steps, each a request with its own assertions and extractions into
// variables used by later steps as ${name}; one cookie jar and keep-alive connection pool per
// run; `always: true` cleanup steps that run even after a failure; one W3C trace id per run and
// a new span id per request. The result names the first failing step and carries every step's
// status, phases, bytes and assertion outcomes. See docs/journeys.md.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "probe/check.hpp"
#include "probe/checks/expect.hpp"
#include "probe/checks/journey/template.hpp"
#include "probe/net/http_client.hpp"
#include "probe/resolver_pool.hpp"

namespace vantage {
class ConfigNode;
}

namespace vantage::probe::checks::journey {

struct Extraction {
  enum class Source { json, regex, header, cookie, status };
  std::string variable;
  Source source = Source::json;
  std::string location;                  // as written: JSON location, header or cookie name
  nlohmann::json::json_pointer pointer;  // json
  std::optional<Pattern> pattern;        // regex: the first capture group (or the whole match)
};

struct Body {
  enum class Kind { none, raw, json, form };
  Kind kind = Kind::none;
  Template raw;         // raw
  nlohmann::json json;  // json: string leaves are placeholders for json_strings
  std::vector<Template> json_strings;
  std::vector<std::pair<std::string, Template>> form;  // form (application/x-www-form-urlencoded)
};

struct Step {
  std::string name;
  bool always = false;
  std::string method = "GET";
  Template url;
  std::vector<std::pair<std::string, Template>> headers;
  Body body;
  bool follow_redirects = true;
  int max_redirects = 10;
  // expect:
  StatusSet status = StatusSet::default_set();
  std::vector<Pattern> body_matches;
  std::vector<Pattern> body_not_matches;
  std::vector<JsonAssertion> json;
  std::vector<HeaderAssertion> headers_expect;
  std::optional<std::chrono::nanoseconds> max_duration;
  std::vector<Extraction> extract;
  std::vector<std::string> references;  // every variable the request uses
};

struct JourneyConfig {
  std::vector<Step> steps;
  Variables variables;            // `variables:` (journey file, then the check's own)
  std::set<std::string> secrets;  // values of ${env:…}
  IpFamily ip_family = IpFamily::any;
  std::vector<std::string> resolvers;
  net::TlsClientOptions tls;
  std::string http_version;
  std::size_t max_body_bytes = 1 << 20;
  std::chrono::nanoseconds cleanup_timeout{std::chrono::seconds(5)};
};

// Parses a journey check entry (steps inline or from `include:`, relative to the entry's file).
JourneyConfig parse_journey_config(const ConfigNode& node);

class JourneyCheck final : public Check {
 public:
  JourneyCheck(CheckCommon common, JourneyConfig config);
  boost::asio::awaitable<std::vector<CheckResult>> run(RunContext& ctx) override;
  std::string describe() const override;
  std::chrono::nanoseconds extra_time() const override;
  const JourneyConfig& config() const noexcept { return config_; }

 private:
  JourneyConfig config_;
  bool has_cleanup_ = false;
};

CheckPtr make_journey_check(CheckCommon common, const ConfigNode& node);

}  // namespace vantage::probe::checks::journey
