#include "analysis/app/incident_feed.hpp"

#include <algorithm>

namespace vantage::analysis {

std::vector<IncidentFeed::Update> IncidentFeed::cycle(const AnalysisResult& replay,
                                                      std::int64_t to_ns) {
  if (!started_) {
    started_ = true;
    started_ns_ = to_ns;
  }
  std::vector<Update> out;
  std::set<IncidentKey> seen_now;  // keys the replay holds (open, or resolved since reported)
  for (const auto& replayed : replay.incidents) {
    const IncidentKey& key = replayed.key;
    auto known = open_.find(key);
    Incident i = replayed;
    if (known != open_.end()) {  // keep the identity it was reported with
      i.opened_ns = known->second.opened_ns;
      i.opened_severity = known->second.opened_severity;
      i.title = known->second.title;
    }
    if (replayed.status != Status::resolved) {
      seen_now.insert(key);
      if (known == open_.end()) {
        open_[key] = i;
        out.push_back({i.opened_ns, Change::opened, i});
      } else {
        if (i.severity > known->second.severity) out.push_back({to_ns, Change::escalated, i});
        i.severity = std::max(i.severity, known->second.severity);
        known->second = i;
      }
      continue;
    }
    if (known != open_.end()) {
      if (replayed.resolved_ns <= known->second.opened_ns) continue;  // an earlier episode
      seen_now.insert(key);
      resolved_[{key, i.opened_ns}] = i.resolved_ns;
      open_.erase(known);
      out.push_back({i.resolved_ns, Change::resolved, i});
      continue;
    }
    // Opened and resolved between two cycles (or before the first: history).
    if (replayed.resolved_ns < started_ns_) continue;
    if (std::any_of(resolved_.begin(), resolved_.end(), [&](const auto& r) {
          return r.first.first == key && r.first.second <= replayed.resolved_ns &&
                 r.second >= replayed.opened_ns;
        })) {
      continue;  // the same episode (their spans overlap), reported under its first identity
    }
    resolved_[{key, i.opened_ns}] = i.resolved_ns;
    out.push_back({i.opened_ns, Change::opened, i});
    out.push_back({i.resolved_ns, Change::resolved, i});
  }
  // Reported open, no longer in the replay at all: resolved now.
  for (auto it = open_.begin(); it != open_.end();) {
    if (seen_now.count(it->first)) {
      ++it;
      continue;
    }
    Incident i = it->second;
    i.status = Status::resolved;
    i.resolved_ns = to_ns;
    resolved_[{i.key, i.opened_ns}] = to_ns;
    out.push_back({to_ns, Change::resolved, i});
    it = open_.erase(it);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Update& a, const Update& b) { return a.time_ns < b.time_ns; });
  return out;
}

std::vector<Incident> IncidentFeed::ongoing() const {
  std::vector<Incident> out;
  for (const auto& [key, i] : open_) out.push_back(i);
  return out;
}

void IncidentFeed::retry(const Update& u) {
  const IncidentKey& key = u.incident.key;
  if (u.change == Change::opened) {
    open_.erase(key);
  } else if (u.change == Change::resolved) {
    resolved_.erase({key, u.incident.opened_ns});
    Incident i = u.incident;
    i.status = Status::ongoing;
    i.resolved_ns = 0;
    open_[key] = i;
  }
}

}  // namespace vantage::analysis
