// Factories of the RunPod operators and the client they share (private to the operators module).
#pragma once

#include <memory>

#include "podflow/engine/operator.hpp"
#include "podflow/operators/runpod_client.hpp"

namespace podflow::runpod {

std::shared_ptr<const engine::Operator> make_create_operator();
std::shared_ptr<const engine::Operator> make_terminate_operator();
std::shared_ptr<const engine::Operator> make_wait_operator();
std::shared_ptr<const engine::Operator> make_stop_operator();
std::shared_ptr<const engine::Operator> make_start_operator();

// A client from the environment (RUNPOD_API_KEY ...) whose warnings go to the task log; an auth
// error naming the fix when no key is set.
Result<std::shared_ptr<const Client>> make_client(const engine::TaskContext& ctx);

}  // namespace podflow::runpod
