// Fake operators with schemas shaped like the real ones, so loader, golden and template tests can
// validate workflows without running anything.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "podflow/engine/operator.hpp"

namespace podflow::engine::testing {

// Succeeds at once with fixed outputs; only its name and schema matter to the loader.
class FakeOperator final : public Operator {
 public:
  FakeOperator(std::string name, OperatorSchema schema, Json outputs = Json::object())
      : name_(std::move(name)), schema_(std::move(schema)), outputs_(std::move(outputs)) {}

  std::string_view name() const override { return name_; }
  const OperatorSchema& schema() const override { return schema_; }
  boost::asio::awaitable<TaskOutcome> execute(TaskContext) const override {
    co_return TaskOutcome::success(outputs_);
  }

 private:
  std::string name_;
  OperatorSchema schema_;
  Json outputs_;
};

inline ArgSpec optional_arg(std::string name, ValueType type) {
  ArgSpec arg;
  arg.name = std::move(name);
  arg.type = type;
  return arg;
}
inline ArgSpec required_arg(std::string name, ValueType type) {
  ArgSpec arg = optional_arg(std::move(name), type);
  arg.required = true;
  return arg;
}
inline ArgSpec defaulted_arg(std::string name, ValueType type, Json value) {
  ArgSpec arg = optional_arg(std::move(name), type);
  arg.default_value = std::move(value);
  return arg;
}

enum class Outputs { declared, open };

inline OperatorSchema make_schema(std::vector<ArgSpec> args, std::vector<std::string> outputs,
                                  Outputs mode = Outputs::declared) {
  OperatorSchema schema;
  schema.args = std::move(args);
  schema.outputs = std::move(outputs);
  schema.open_outputs = mode == Outputs::open;
  return schema;
}

// shell (open outputs), noop, http, fake.create (every argument type, declared outputs) and
// fake.wait (reads a pod id).
inline OperatorRegistry fake_registry() {
  using T = ValueType;
  OperatorRegistry registry;
  registry.add(std::make_shared<FakeOperator>(
      "shell", make_schema({required_arg("command", T::string), optional_arg("env", T::object),
                            optional_arg("cwd", T::string)},
                           {}, Outputs::open)));
  registry.add(std::make_shared<FakeOperator>("noop", OperatorSchema{}));
  registry.add(std::make_shared<FakeOperator>(
      "http",
      make_schema({required_arg("url", T::string), defaulted_arg("method", T::string, "GET"),
                   optional_arg("body", T::any), optional_arg("timeout", T::duration)},
                  {"status", "body"})));
  registry.add(std::make_shared<FakeOperator>(
      "fake.create",
      make_schema(
          {required_arg("image", T::string), defaulted_arg("gpu_count", T::integer, 1),
           optional_arg("max_price", T::number), defaulted_arg("spot", T::boolean, false),
           optional_arg("ports", T::array), optional_arg("labels", T::object),
           defaulted_arg("ready_timeout", T::duration, "10m"), optional_arg("extra", T::any)},
          {"pod_id", "cost", "info"}),
      Json{{"pod_id", "pod-1"}, {"cost", 0.5}, {"info", {{"gpu", "A100"}}}}));
  registry.add(std::make_shared<FakeOperator>(
      "fake.wait",
      make_schema({required_arg("pod_id", T::string), optional_arg("poll", T::duration)},
                  {"status"})));
  return registry;
}

}  // namespace podflow::engine::testing
