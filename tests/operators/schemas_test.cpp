// The loader checks workflows against the real operators' declared arguments and outputs (the
// golden files use fakes; this is what users' files meet).
#include <doctest/doctest.h>

#include <string>
#include <variant>
#include <vector>

#include "podflow/engine/loader.hpp"
#include "podflow/operators/core.hpp"
#include "podflow/operators/runpod.hpp"

namespace {

using namespace podflow::engine;

// Every diagnostic of a file, one string each.
std::vector<std::string> errors_of(const std::string& text) {
  OperatorRegistry registry;
  podflow::operators::register_core_operators(registry);
  podflow::operators::register_runpod_operators(registry);
  auto loaded = load_workflow_text(text, "wf.yaml", registry);
  std::vector<std::string> out;
  if (auto* diagnostics = std::get_if<std::vector<Diagnostic>>(&loaded)) {
    for (const auto& d : *diagnostics) out.push_back(d.to_string());
  }
  return out;
}

}  // namespace

TEST_CASE("Schemas.every http argument and output is known" * doctest::timeout(10)) {
  CHECK(errors_of(R"(tasks:
  fetch:
    operator: http
    timeout: 10s
    with:
      method: POST
      url: https://example.com/api
      headers: {Accept: application/json}
      json: {a: 1}
      expect_status: [200, 201]
  use:
    operator: shell
    depends: [fetch]
    with:
      command: "echo {{ tasks.fetch.outputs.status }} {{ tasks.fetch.outputs.json }} {{ tasks.fetch.outputs.headers }} {{ tasks.fetch.outputs.body }}"
)")
            .empty());
}

TEST_CASE("Schemas.unknown and missing arguments of real operators" * doctest::timeout(10)) {
  const auto errors = errors_of(R"(tasks:
  fetch:
    operator: http
    with: {url: "https://example.com", jsn: {a: 1}}
  run:
    operator: shell
    with: {cwd: /tmp}
)");
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].find("wf.yaml:4:40: ") == 0);
  CHECK(errors[0].find("'jsn'") != std::string::npos);
  CHECK(errors[0].find("did you mean 'json'?") != std::string::npos);
  CHECK(errors[1].find("wf.yaml:7:") == 0);
  CHECK(errors[1].find("'command'") != std::string::npos);
}

TEST_CASE("Schemas.templates must name outputs the RunPod operators declare" *
          doctest::timeout(10)) {
  const auto errors = errors_of(R"(tasks:
  trigger:
    operator: runpod.create
    with: {image: img, gpu_type: NVIDIA A40}
  watch:
    operator: runpod.wait
    depends: [trigger]
    with: {pod_id: "{{ tasks.trigger.outputs.pod }}"}
  end:
    operator: runpod.terminate
    depends: [watch]
    trigger_rule: all_done
    with: {pod_id: "{{ tasks.trigger.outputs.pod_id }}", task: trigger}
)");
  REQUIRE(!errors.empty());
  CHECK(errors[0].find("wf.yaml:8:") == 0);
  CHECK(errors[0].find("'pod'") != std::string::npos);
  CHECK(errors[0].find("pod_id") != std::string::npos);  // the hint names the real output
}
