#include "analysis/notify/notifier.hpp"

#include <curl/curl.h>
#include <dlfcn.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>
#include <type_traits>

#include "common/time.hpp"

namespace vantage::analysis {
namespace {

std::size_t keep(char* data, std::size_t size, std::size_t n, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (s->size() < 2048) s->append(data, std::min<std::size_t>(size * n, 2048 - s->size()));
  return size * n;
}

// libcurl, loaded when the first notification is sent: linked directly, its dependency closure
// (about 30 libraries: TLS, Kerberos, LDAP, …) costs every `vantage` command about 20 ms of
// start-up, which dominated `vantage bgp dump` on small files. The functions are those of
// libcurl 7.x/8.x's stable ABI (soname libcurl.so.4).
struct Curl {
  decltype(&curl_easy_init) easy_init = nullptr;
  decltype(&curl_easy_setopt) easy_setopt = nullptr;
  decltype(&curl_easy_perform) easy_perform = nullptr;
  decltype(&curl_easy_getinfo) easy_getinfo = nullptr;
  decltype(&curl_easy_cleanup) easy_cleanup = nullptr;
  decltype(&curl_easy_strerror) easy_strerror = nullptr;
  decltype(&curl_slist_append) slist_append = nullptr;
  decltype(&curl_slist_free_all) slist_free_all = nullptr;
  std::string error;  // why it could not be loaded

  static const Curl& get() {
    static const Curl curl = load();
    return curl;
  }

 private:
  static Curl load() {
    Curl c;
    void* lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = ::dlerror();
      c.error =
          std::string("cannot load libcurl.so.4 (Debian package libcurl4): ") + (why ? why : "");
      return c;
    }
    bool ok = true;
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
      ok = ok && fn != nullptr;
    };
    sym(c.easy_init, "curl_easy_init");
    sym(c.easy_setopt, "curl_easy_setopt");
    sym(c.easy_perform, "curl_easy_perform");
    sym(c.easy_getinfo, "curl_easy_getinfo");
    sym(c.easy_cleanup, "curl_easy_cleanup");
    sym(c.easy_strerror, "curl_easy_strerror");
    sym(c.slist_append, "curl_slist_append");
    sym(c.slist_free_all, "curl_slist_free_all");
    if (!ok) c.error = "libcurl.so.4 lacks a function the notifier needs";
    // libcurl's global state is set up by curl_easy_init's first call (thread-safe since 7.84).
    return c;
  }
};

// POSTs a JSON body; three attempts (0.5 s, 1 s back-off); any 2xx is success.
bool post_json(const std::string& url, const std::string& body, std::string& error) {
  const Curl& c = Curl::get();
  if (!c.error.empty()) {
    error = c.error;
    return false;
  }
  for (int attempt = 1; attempt <= 3; ++attempt) {
    CURL* curl = c.easy_init();
    if (!curl) {
      error = "libcurl could not start";
      return false;
    }
    std::string answer;
    curl_slist* headers = c.slist_append(nullptr, "Content-Type: application/json");
    c.easy_setopt(curl, CURLOPT_URL, url.c_str());
    c.easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    c.easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    c.easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    c.easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
    c.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    c.easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep);
    c.easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    const CURLcode rc = c.easy_perform(curl);
    long status = 0;
    c.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    c.slist_free_all(headers);
    c.easy_cleanup(curl);
    if (rc == CURLE_OK && status >= 200 && status < 300) return true;
    error = rc != CURLE_OK
                ? std::string(c.easy_strerror(rc))
                : "HTTP " + std::to_string(status) + (answer.empty() ? "" : ": " + answer);
    if (rc == CURLE_OK && status >= 400 && status < 500 && status != 429)
      return false;  // will not improve
    if (attempt < 3) std::this_thread::sleep_for(std::chrono::milliseconds(500 * attempt));
  }
  return false;
}

std::string rfc3339(std::int64_t ns) { return format_rfc3339(from_unix_nanos(ns)); }

// "reachability_loss" -> "VantageReachabilityLoss"; "vantage_point_silent" -> "VantagePointSilent"
// (not "VantageVantage…").
std::string camel(const std::string& kind) {
  std::string out = "Vantage";
  bool up = true;
  for (char c : kind.rfind("vantage_", 0) == 0 ? kind.substr(8) : kind) {
    if (c == '_') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
    up = false;
  }
  return out;
}

class Alertmanager final : public Notifier {
 public:
  Alertmanager(std::string url, std::string runbook_base, int firing_for_s)
      : url_(std::move(url)), runbook_base_(std::move(runbook_base)), firing_for_s_(firing_for_s) {
    while (!url_.empty() && url_.back() == '/') url_.pop_back();
  }

  bool notify(const IncidentEvent& e, std::string& error) override {
    const Incident& i = e.incident;
    std::string asns, targets;
    for (auto a : i.asns) asns += (asns.empty() ? "" : ",") + std::to_string(a);
    for (const auto& t : i.targets) targets += (targets.empty() ? "" : ",") + t;
    for (const auto& t : i.endpoints) targets += (targets.empty() ? "" : ",") + t;
    // Labels name the alert and must not change while it lasts: what it is about (kind and the
    // incident's key) and the severity it opened with. What grows (scope, evidence) is annotated.
    const std::string kind(kind_name(i.key.kind));
    nlohmann::json labels{{"alertname", camel(kind)},
                          {"kind", kind},
                          {"severity", severity_name(i.opened_severity)},
                          {"incident", i.key.text()},
                          {"source", "vantage"}};
    nlohmann::json incident = nlohmann::json::parse(incident_json(i));
    nlohmann::json annotations{
        {"summary", i.title},
        {"current_severity", severity_name(i.severity)},
        {"state", i.summary},
        {"runbook_url", runbook_base_ + i.runbook()},
        {"description", incident["scope"].dump() + " " + incident["evidence"].dump()}};
    if (!asns.empty()) annotations["asns"] = asns;
    if (!targets.empty()) annotations["targets"] = targets;
    nlohmann::json alert{
        {"labels", labels}, {"annotations", annotations}, {"startsAt", rfc3339(i.opened_ns)}};
    const auto now_ns = to_unix_nanos(SystemClock::instance().utc_now());
    // A resolution must end in the past for Alertmanager: an endsAt still ahead would lose to the
    // endsAt of the last firing re-send and keep the alert active until then.
    alert["endsAt"] = e.change == Change::resolved
                          ? rfc3339(i.resolved_ns ? std::min(i.resolved_ns, now_ns) : now_ns)
                          : rfc3339(now_ns + std::int64_t{firing_for_s_} * 1'000'000'000);
    return post_json(url_ + "/api/v2/alerts",
                     nlohmann::json::array({alert}).dump(-1, ' ', false,
                                                         nlohmann::json::error_handler_t::replace),
                     error);
  }

  std::string describe() const override { return "alertmanager " + url_; }
  bool wants_refresh() const override { return true; }

 private:
  std::string url_, runbook_base_;
  int firing_for_s_;
};

class Webhook final : public Notifier {
 public:
  explicit Webhook(std::string url) : url_(std::move(url)) {}
  bool notify(const IncidentEvent& e, std::string& error) override {
    nlohmann::json body{{"event", change_name(e.change)},
                        {"time", rfc3339(e.time_ns)},
                        {"incident", nlohmann::json::parse(incident_json(e.incident))}};
    return post_json(url_, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                     error);
  }
  std::string describe() const override { return "webhook " + url_; }

 private:
  std::string url_;
};

}  // namespace

std::unique_ptr<Notifier> make_alertmanager_notifier(const std::string& url,
                                                     const std::string& runbook_base,
                                                     int firing_for_s) {
  return std::make_unique<Alertmanager>(url, runbook_base, firing_for_s);
}

std::unique_ptr<Notifier> make_webhook_notifier(const std::string& url) {
  return std::make_unique<Webhook>(url);
}

}  // namespace vantage::analysis
