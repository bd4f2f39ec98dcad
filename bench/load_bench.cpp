// Measures loading and validating a generated 1,000-task workflow (chain plus fan-out, with
// templates); the target is well under 50 ms per load.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "podflow/engine/loader.hpp"

using namespace podflow::engine;

namespace {

// Stands in for every operator: one string argument, one declared output.
class BenchOperator final : public Operator {
 public:
  BenchOperator() {
    ArgSpec message;
    message.name = "message";
    message.type = ValueType::string;
    schema_.args.push_back(message);
    schema_.outputs = {"value"};
  }
  std::string_view name() const override { return "noop"; }
  const OperatorSchema& schema() const override { return schema_; }
  boost::asio::awaitable<TaskOutcome> execute(TaskContext) const override {
    co_return TaskOutcome::success();
  }

 private:
  OperatorSchema schema_;
};

// Tasks t0..t999: every tenth task continues a chain from the previous chain task, the nine after
// it fan out from it; every task reads the output of a task upstream of it and a param.
std::string generate(int count) {
  std::string out = "name: load_bench\nparams:\n  label: {type: string, default: x}\ntasks:\n";
  for (int i = 0; i < count; ++i) {
    const int chain_head = (i / 10) * 10;
    out += "  t" + std::to_string(i) + ":\n    operator: noop\n    retries: 1\n";
    int upstream = -1;
    if (i == chain_head && i > 0) upstream = i - 10;
    if (i != chain_head) upstream = chain_head;
    if (upstream >= 0) {
      out += "    depends: [t" + std::to_string(upstream) + "]\n";
      out += "    with: {message: \"{{ params.label }} {{ tasks.t" + std::to_string(upstream) +
             ".outputs.value }}\"}\n";
    } else {
      out += "    with: {message: \"{{ params.label }} {{ run.id }}\"}\n";
    }
  }
  return out;
}

}  // namespace

int main() {
  OperatorRegistry registry;
  registry.add(std::make_shared<BenchOperator>());
  const auto dir = std::filesystem::temp_directory_path() / "podflow_load_bench";
  std::filesystem::create_directories(dir);
  const auto file = dir / "load_bench.yaml";
  std::ofstream(file) << generate(1000);

  std::vector<double> millis;
  for (int round = 0; round < 20; ++round) {
    const auto start = std::chrono::steady_clock::now();
    auto result = load_workflow_file(file, registry);
    const auto stop = std::chrono::steady_clock::now();
    if (auto* diagnostics = std::get_if<std::vector<Diagnostic>>(&result)) {
      std::fprintf(stderr, "unexpected: %s\n", diagnostics->front().to_string().c_str());
      return 1;
    }
    millis.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  std::sort(millis.begin(), millis.end());
  std::printf("load_bench: 1000-task workflow, 20 loads: min %.2f ms, median %.2f ms\n",
              millis.front(), millis[millis.size() / 2]);
  if (!std::getenv("PODFLOW_BENCH_KEEP")) std::filesystem::remove_all(dir);
  return 0;
}
