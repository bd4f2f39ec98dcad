// The core operators (noop, shell, http), registered by app/ with one explicit call.
#pragma once

#include "podflow/engine/operator.hpp"

namespace podflow::operators {

void register_core_operators(engine::OperatorRegistry& registry);

}  // namespace podflow::operators
