// The RunPod operators (runpod.create, runpod.terminate), registered by app/ with one explicit
// call.
#pragma once

#include "podflow/engine/operator.hpp"

namespace podflow::operators {

void register_runpod_operators(engine::OperatorRegistry& registry);

}  // namespace podflow::operators
