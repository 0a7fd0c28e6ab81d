// The incident lifecycle (DESIGN §6): one tracker turns each evaluation's findings into incidents.
// A finding opens an incident after `open_after` consecutive evaluations (or at once when the
// detector says so); the incident is ongoing while later evaluations still find it — its scope
// widens, its evidence keeps the worst seen, its severity can rise (an `escalated` event) — and
// it resolves after `resolve_after` consecutive evaluations without it (hysteresis: no flapping).
// One key never has two unresolved incidents. The title is fixed when it opens (OPENED and
// RESOLVED print the same line); `summary` follows the scope.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "analysis/detect/detectors.hpp"
#include "analysis/detect/incident.hpp"

namespace vantage::analysis {

class IncidentTracker {
 public:
  IncidentTracker(int open_after, int resolve_after)
      : open_after_(open_after), resolve_after_(resolve_after) {}

  // Applies the findings of the evaluation at `time_ns` (UTC ns). Appends what changed to
  // `events` in order, and the incidents that resolved to `resolved`.
  void update(std::int64_t time_ns, const Findings& findings, std::vector<IncidentEvent>& events,
              std::vector<Incident>& resolved);

  std::map<IncidentKey, Incident> open_by_key() const;
  std::vector<Incident> open_incidents() const;  // in key order
  // Whether the BGP alert episodes `claims` carry may become their own incidents again: no,
  // once an open incident carried them (tracker -> bgp hand-over).
  const std::set<std::pair<std::string, std::int64_t>>& claimed_bgp() const { return claimed_; }

 private:
  struct State {
    Incident incident;
    int seen = 0, clear = 0;
    bool open = false;
  };
  int open_after_, resolve_after_;
  std::map<IncidentKey, State> state_;
  std::set<std::pair<std::string, std::int64_t>> claimed_;
};

// The one-line title of a finding as it opens, and the summary of its current scope.
std::string incident_title(const Incident& incident);
std::string incident_summary(const Incident& incident);

}  // namespace vantage::analysis
