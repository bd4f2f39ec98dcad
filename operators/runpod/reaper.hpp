// The reaper's decision for one pod of the account: keep it or terminate it, and why. Pure, so the
// rules (never another installation's pod, never a live task's pod, a grace period) are tested
// without RunPod or a store.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "podflow/engine/states.hpp"
#include "podflow/engine/store.hpp"

namespace podflow::runpod {

// What the store knows about the task that made a pod (its "runpod.pod" record and that run).
struct PodOwnerFacts {
  std::string run_id;
  engine::EpochMillis record_created_at = 0;
  std::optional<engine::RunState> run_state;  // nullopt: the run is not in the store
  engine::EpochMillis lease_expires_at = 0;   // of the run's owner; 0 when none
};

struct ReapCandidate {
  std::string name;
  std::optional<engine::EpochMillis> pod_created_at;  // when the provider says
  std::optional<PodOwnerFacts> owner;                 // nullopt: no record with this name
};

enum class ReapVerdict {
  not_ours,   // another installation's pod, or not podflow's: never touched
  live,       // belongs to a task of a run that is still being driven
  too_young,  // an orphan inside the grace period (its create may still be recording)
  orphan,     // terminate
};

struct ReapDecision {
  ReapVerdict verdict = ReapVerdict::not_ours;
  std::string reason;
};

// `prefix` is pod_name_prefix(install id); `grace` is --older-than in milliseconds.
ReapDecision decide_reap(std::string_view prefix, const ReapCandidate& pod, engine::EpochMillis now,
                         engine::EpochMillis grace);

}  // namespace podflow::runpod
