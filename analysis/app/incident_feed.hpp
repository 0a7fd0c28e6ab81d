// `vantage watch`'s memory between cycles (docs/analysis.md#vantage-watch): each cycle replays
// the store through the same analyze() that `vantage incidents` runs, and the feed turns the
// replays into one stream of changes — an incident is reported opened once, keeps the identity
// (opened time, title, opened severity) it was first reported with, is reported escalated when
// its severity rises and resolved once, even when a later replay no longer sees its beginning.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "analysis/detect/analyzer.hpp"

namespace vantage::analysis {

class IncidentFeed {
 public:
  struct Update {
    std::int64_t time_ns = 0;  // UTC ns: opened_ns, the escalation's evaluation, resolved_ns
    Change change = Change::opened;
    Incident incident;
  };

  // The changes since the last cycle, in time order, from a replay that ends at `to_ns`.
  // Incidents the feed reported open that the replay does not hold at all (they fell out of
  // the lookback) resolve at `to_ns`. On the first cycle, incidents that resolved before it are
  // history and not reported.
  std::vector<Update> cycle(const AnalysisResult& replay, std::int64_t to_ns);
  // The incidents open and already reported, as of the last cycle (to re-send and store).
  std::vector<Incident> ongoing() const;
  // `update` was not delivered everywhere: report it again next cycle.
  void retry(const Update& update);

 private:
  std::map<IncidentKey, Incident> open_;  // reported open, as reported
  // (key, opened) -> resolved of the episodes reported resolved
  std::map<std::pair<IncidentKey, std::int64_t>, std::int64_t> resolved_;
  std::int64_t started_ns_ = 0;
  bool started_ = false;
};

}  // namespace vantage::analysis
