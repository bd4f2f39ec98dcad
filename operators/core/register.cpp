// Registers noop, shell and http with the engine's operator registry.
#include "operators/core/core_operators.hpp"
#include "podflow/operators/core.hpp"

namespace podflow::operators {

void register_core_operators(engine::OperatorRegistry& registry) {
  registry.add(make_noop_operator());
  registry.add(make_shell_operator());
  registry.add(make_http_operator());
}

}  // namespace podflow::operators
