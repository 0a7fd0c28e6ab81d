// Where incident changes go (DESIGN §6): Prometheus Alertmanager (API v2, POST /api/v2/alerts)
// and a generic JSON webhook. Synchronous (libcurl easy; the CLI has no event loop), with three
// attempts and back-off per delivery.
#pragma once

#include <memory>
#include <string>

#include "analysis/detect/analyzer.hpp"

namespace vantage::analysis {

class Notifier {
 public:
  virtual ~Notifier() = default;
  // Delivers one change ("opened" / "resolved"), or a still-open incident again (`refresh`,
  // change "opened"). Returns false, with `error` set, when every attempt failed.
  virtual bool notify(const IncidentEvent& event, std::string& error) = 0;
  virtual std::string describe() const = 0;
  // True when an open incident must be re-sent every cycle to stay open (Alertmanager: endsAt).
  virtual bool wants_refresh() const { return false; }
};

// Alertmanager API v2 (https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml):
// one alert per incident — labels (fixed while it lasts) alertname="Vantage" + CamelCase kind,
// kind, severity (page|ticket|log, as opened), incident (its key), source="vantage"; annotations
// summary (the title), runbook_url (runbook_base + the runbook path), asns, targets, description
// (scope and evidence as JSON); startsAt = opened; endsAt =
// resolved once it resolves, else now + `firing_for_s` (re-sent by `vantage watch` each cycle).
// `url` is the Alertmanager base, e.g. http://127.0.0.1:9093.
std::unique_ptr<Notifier> make_alertmanager_notifier(const std::string& url, const std::string& runbook_base,
                                                     int firing_for_s = 600);

// POSTs {"event": "opened"|"resolved", "time": RFC 3339, "incident": {…incident_json…}} to `url`.
std::unique_ptr<Notifier> make_webhook_notifier(const std::string& url);

}  // namespace vantage::analysis
