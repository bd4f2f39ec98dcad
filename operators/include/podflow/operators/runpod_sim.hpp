// The RunPod simulator: an in-process HTTP server speaking RunPod's REST v2 pod routes and GraphQL
// subset, with scripted pod lifecycles and injected faults, for dry runs and tests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "podflow/engine/json.hpp"

namespace podflow::runpod_sim {

struct SimulatorOptions {
  std::string listen_address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: an ephemeral port, read it back with RunPodSimulator::port()
  std::string api_key = "podflow-sim-dev-key";
  // The script as JSON (see operators/runpod/sim/README.md); null means every default.
  Json script;
};

// Reads a script file (YAML or JSON) into the JSON the simulator takes; the error names the file.
struct ScriptLoad {
  Json script;
  std::string error;  // empty on success
};
ScriptLoad load_script_file(const std::filesystem::path& path);

// Checks a script before the simulator starts; returns an empty string when it is usable.
std::string validate_script(const Json& script);

class RunPodSimulator {
 public:
  explicit RunPodSimulator(SimulatorOptions options);
  RunPodSimulator(const RunPodSimulator&) = delete;
  RunPodSimulator& operator=(const RunPodSimulator&) = delete;
  ~RunPodSimulator();  // stops and joins

  // Binds and starts serving on its own thread; returns an error message on failure.
  std::optional<std::string> start();
  std::uint16_t port() const;
  // Stops accepting, drops open connections (log streams end) and joins the thread. Idempotent.
  void stop();
  // The JSON that GET /__sim/state answers.
  Json state() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace podflow::runpod_sim
