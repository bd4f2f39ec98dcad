// The reaper's per-pod decision.
#include "operators/runpod/reaper.hpp"

#include "podflow/engine/duration.hpp"

namespace podflow::runpod {

ReapDecision decide_reap(std::string_view prefix, const ReapCandidate& pod, engine::EpochMillis now,
                         engine::EpochMillis grace) {
  if (prefix.empty() || !pod.name.starts_with(prefix)) {
    return {ReapVerdict::not_ours,
            "not named with this installation's prefix " + std::string(prefix) + ": never touched"};
  }
  std::string why;
  if (!pod.owner) {
    why = "no task of this installation recorded it";
  } else if (!pod.owner->run_state) {
    why = "run " + pod.owner->run_id + " is not in the store";
  } else if (engine::is_terminal(*pod.owner->run_state)) {
    why = "run " + pod.owner->run_id + " ended " +
          std::string(engine::to_string(*pod.owner->run_state));
  } else if (pod.owner->lease_expires_at > now) {
    return {ReapVerdict::live, "run " + pod.owner->run_id + " is " +
                                   std::string(engine::to_string(*pod.owner->run_state)) +
                                   " and its owner holds the lease"};
  } else {
    why = "run " + pod.owner->run_id + " is " +
          std::string(engine::to_string(*pod.owner->run_state)) + " but no process drives it";
  }
  // The provider's creation time when it has one, else when podflow recorded the pod.
  std::optional<engine::EpochMillis> created = pod.pod_created_at;
  if (!created && pod.owner && pod.owner->record_created_at != 0) {
    created = pod.owner->record_created_at;
  }
  if (created && now - *created < grace) {
    const engine::EpochMillis age = now > *created ? now - *created : 0;
    return {ReapVerdict::too_young, why + ", but created " +
                                        engine::format_duration(engine::Millis(age)) +
                                        " ago, inside the grace period of " +
                                        engine::format_duration(engine::Millis(grace))};
  }
  return {ReapVerdict::orphan, why};
}

}  // namespace podflow::runpod
