// Pod names: readable, deterministic, unique per try, within the length limit.
#include "operators/runpod/pod_name.hpp"

#include <doctest/doctest.h>

namespace podflow::runpod {
namespace {

TEST_CASE("PodName.marks installation, run, task and try" * doctest::timeout(5)) {
  CHECK(pod_name("ab12cd34", "train-20261203T182500Z-ab12", "trigger_runpod", 2) ==
        "podflow-ab12cd34-train-20261203t182500z-ab12-trigger-runpod-2");
  CHECK(pod_name("ab12cd34", "r", "t", 1).rfind(pod_name_prefix("ab12cd34"), 0) == 0);
}

TEST_CASE("PodName.long names keep their start and a hash of the whole" * doctest::timeout(5)) {
  const std::string run = "runpod_training_with_a_very_long_workflow_name-20261203T182500Z-ab12";
  const auto first = pod_name("ab12cd34", run, "trigger_runpod", 1);
  const auto second = pod_name("ab12cd34", run, "trigger_runpod", 2);
  CHECK(first.size() == kMaxPodNameLength);
  CHECK(second.size() == kMaxPodNameLength);
  CHECK(first != second);                                          // tries never share a name
  CHECK(first == pod_name("ab12cd34", run, "trigger_runpod", 1));  // and it is deterministic
  CHECK(first.rfind("podflow-ab12cd34-runpod-training-with", 0) == 0);
}

}  // namespace
}  // namespace podflow::runpod
