// Registers the RunPod operators with the engine's operator registry, and the client they share.
#include "operators/runpod/runpod_operators.hpp"
#include "podflow/operators/runpod.hpp"

namespace podflow::runpod {

Result<std::shared_ptr<const Client>> make_client(const engine::TaskContext& ctx) {
  auto config = config_from_env();
  if (auto* missing = std::get_if<std::string>(&config)) {
    RunPodError error;
    error.kind = engine::ErrorKind::auth;
    error.message = *missing +
                    "; set RUNPOD_API_KEY (or RUNPOD_API_KEY_FILE), or try the workflow for free "
                    "against `podflow runpod-sim` with RUNPOD_REST_URL pointing at it";
    return error;
  }
  auto log = ctx.log;
  return std::make_shared<const Client>(std::get<Config>(std::move(config)),
                                        [log](std::string_view warning) {
                                          if (log)
                                            log->write("warning: " + std::string(warning) + "\n");
                                        });
}

}  // namespace podflow::runpod

namespace podflow::operators {

void register_runpod_operators(engine::OperatorRegistry& registry) {
  registry.add(runpod::make_create_operator());
  registry.add(runpod::make_terminate_operator());
  registry.add(runpod::make_wait_operator());
  registry.add(runpod::make_stop_operator());
  registry.add(runpod::make_start_operator());
}

}  // namespace podflow::operators
