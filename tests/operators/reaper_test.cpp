// The reaper's decision: other installations' pods and live tasks' pods are kept, orphans are
// terminated once the grace period has passed.
#include "operators/runpod/reaper.hpp"

#include <doctest/doctest.h>

namespace podflow::runpod {
namespace {

using engine::EpochMillis;
using engine::RunState;

constexpr std::string_view kPrefix = "podflow-ab12cd34-";
constexpr EpochMillis kNow = 1'800'000'000'000;
constexpr EpochMillis kGrace = 10 * 60 * 1000;
constexpr EpochMillis kHourAgo = kNow - 60 * 60 * 1000;

ReapCandidate ours(std::optional<PodOwnerFacts> owner) {
  return ReapCandidate{"podflow-ab12cd34-train-20261203t182500z-ab12-create-1", std::nullopt,
                       std::move(owner)};
}

PodOwnerFacts run_facts(std::optional<RunState> state, EpochMillis lease_expires_at) {
  return PodOwnerFacts{"train-20261203T182500Z-ab12", kHourAgo, state, lease_expires_at};
}

TEST_CASE("Reaper.never touches another installation's pod" * doctest::timeout(5)) {
  for (const char* name : {"podflow-zz99yy88-train-r-create-1", "my-notebook", "podflow-ab12cd3",
                           "podflow-ab12cd345-r-t-1", ""}) {
    const auto decision =
        decide_reap(kPrefix, ReapCandidate{name, kHourAgo, std::nullopt}, kNow, 0);
    CHECK_MESSAGE(decision.verdict == ReapVerdict::not_ours, name);
  }
  // Even an empty prefix (no install id) matches nothing rather than everything.
  CHECK(decide_reap("", ours(std::nullopt), kNow, 0).verdict == ReapVerdict::not_ours);
}

TEST_CASE("Reaper.keeps the pod of a run whose owner holds the lease" * doctest::timeout(5)) {
  for (RunState state : {RunState::running, RunState::queued}) {
    const auto decision = decide_reap(kPrefix, ours(run_facts(state, kNow + 20'000)), kNow, 0);
    CHECK(decision.verdict == ReapVerdict::live);
    CHECK(decision.reason.find("holds the lease") != std::string::npos);
  }
}

TEST_CASE("Reaper.a run that ended or lost its owner leaves an orphan" * doctest::timeout(5)) {
  auto ended =
      decide_reap(kPrefix, ours(run_facts(RunState::success, kNow + 20'000)), kNow, kGrace);
  CHECK(ended.verdict == ReapVerdict::orphan);
  CHECK(ended.reason.find("ended success") != std::string::npos);

  auto expired = decide_reap(kPrefix, ours(run_facts(RunState::running, kNow - 1)), kNow, kGrace);
  CHECK(expired.verdict == ReapVerdict::orphan);
  CHECK(expired.reason.find("no process drives it") != std::string::npos);

  auto unowned = decide_reap(kPrefix, ours(run_facts(RunState::running, 0)), kNow, kGrace);
  CHECK(unowned.verdict == ReapVerdict::orphan);

  auto missing_run = decide_reap(kPrefix, ours(run_facts(std::nullopt, 0)), kNow, kGrace);
  CHECK(missing_run.verdict == ReapVerdict::orphan);
  CHECK(missing_run.reason.find("not in the store") != std::string::npos);

  auto unrecorded = decide_reap(kPrefix, ours(std::nullopt), kNow, kGrace);
  CHECK(unrecorded.verdict == ReapVerdict::orphan);
  CHECK(unrecorded.reason.find("no task of this installation") != std::string::npos);
}

TEST_CASE("Reaper.spares orphans inside the grace period" * doctest::timeout(5)) {
  auto facts = run_facts(RunState::failed, 0);
  facts.record_created_at = kNow - 60'000;  // recorded a minute ago
  auto young = decide_reap(kPrefix, ours(facts), kNow, kGrace);
  CHECK(young.verdict == ReapVerdict::too_young);
  CHECK(young.reason.find("1m ago") != std::string::npos);
  CHECK(young.reason.find("grace period of 10m") != std::string::npos);

  // The provider's creation time wins over the record's.
  auto candidate = ours(facts);
  candidate.pod_created_at = kHourAgo;
  CHECK(decide_reap(kPrefix, candidate, kNow, kGrace).verdict == ReapVerdict::orphan);

  // Exactly the grace period old is old enough; a zero grace reaps at once.
  facts.record_created_at = kNow - kGrace;
  CHECK(decide_reap(kPrefix, ours(facts), kNow, kGrace).verdict == ReapVerdict::orphan);
  facts.record_created_at = kNow;
  CHECK(decide_reap(kPrefix, ours(facts), kNow, 0).verdict == ReapVerdict::orphan);

  // Neither time known: treated as old.
  CHECK(decide_reap(kPrefix, ours(std::nullopt), kNow, kGrace).verdict == ReapVerdict::orphan);
}

}  // namespace
}  // namespace podflow::runpod
