// shell operator (placeholder until implemented).
#include "operators/core/core_operators.hpp"

namespace podflow::operators {
namespace {

class Placeholder final : public engine::Operator {
 public:
  std::string_view name() const override { return "shell"; }
  const engine::OperatorSchema& schema() const override { return schema_; }
  boost::asio::awaitable<engine::TaskOutcome> execute(engine::TaskContext /*ctx*/) const override {
    co_return engine::TaskOutcome::failure(engine::ErrorKind::task_failed, "not implemented");
  }

 private:
  engine::OperatorSchema schema_{};
};

}  // namespace

std::shared_ptr<const engine::Operator> make_shell_operator() {
  return std::make_shared<Placeholder>();
}

}  // namespace podflow::operators
