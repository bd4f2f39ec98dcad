// Factories of the core operators (private to the operators module and its tests).
#pragma once

#include <memory>

#include "podflow/engine/operator.hpp"

namespace podflow::operators {

std::shared_ptr<const engine::Operator> make_noop_operator();
std::shared_ptr<const engine::Operator> make_shell_operator();
std::shared_ptr<const engine::Operator> make_http_operator();

}  // namespace podflow::operators
