// noop: does nothing and succeeds (tests, benchmarks, joins in a graph).
#include "operators/core/core_operators.hpp"

namespace podflow::operators {
namespace {

class NoopOperator final : public engine::Operator {
 public:
  std::string_view name() const override { return "noop"; }
  const engine::OperatorSchema& schema() const override { return schema_; }
  boost::asio::awaitable<engine::TaskOutcome> execute(engine::TaskContext /*ctx*/) const override {
    co_return engine::TaskOutcome::success();
  }

 private:
  engine::OperatorSchema schema_{};
};

}  // namespace

std::shared_ptr<const engine::Operator> make_noop_operator() {
  return std::make_shared<NoopOperator>();
}

}  // namespace podflow::operators
