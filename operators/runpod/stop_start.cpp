// runpod.stop and runpod.start: pause a pod (its volume is kept, its GPU released) and resume it,
// so a workflow can keep a pod's disk between steps without paying for the GPU in between.
#include "operators/runpod/runpod_operators.hpp"

namespace podflow::runpod {
namespace {

namespace asio = boost::asio;
using engine::ErrorKind;
using engine::OperatorSchema;
using engine::TaskContext;
using engine::TaskOutcome;
using engine::ValueType;

TaskOutcome failure(const RunPodError& error) {
  return TaskOutcome{Json::object(),
                     engine::TaskError(error.kind, error.message, error.retry_after)};
}

class StopOperator final : public engine::Operator {
 public:
  StopOperator() {
    schema_.args = {{"pod_id", ValueType::string, true, std::nullopt, "the pod to stop"}};
    schema_.outputs = {"status"};
  }
  std::string_view name() const override { return "runpod.stop"; }
  const OperatorSchema& schema() const override { return schema_; }

  asio::awaitable<TaskOutcome> execute(TaskContext ctx) const override {
    auto log = [&](const std::string& line) {
      if (ctx.log) ctx.log->write(line + "\n");
    };
    const std::string pod_id = ctx.args.value("pod_id", std::string());
    if (pod_id.empty()) {
      co_return TaskOutcome::failure(ErrorKind::bad_input, "runpod.stop needs pod_id");
    }
    auto client = make_client(ctx);
    if (auto* error = std::get_if<RunPodError>(&client)) co_return failure(*error);
    const auto& api = std::get<std::shared_ptr<const Client>>(client);

    // Already stopped is success: a retried or rerun stop must not fail on its own earlier work.
    auto before = co_await api->get_pod(pod_id);
    if (auto* error = std::get_if<RunPodError>(&before)) {
      log("pod " + pod_id + ": " + error->message);
      co_return failure(*error);
    }
    if (std::get<Pod>(before).status == "EXITED") {
      log("pod " + pod_id + ": already stopped");
      co_return TaskOutcome::success(Json{{"status", "EXITED"}});
    }
    auto stopped = co_await api->stop_pod(pod_id);
    if (auto* error = std::get_if<RunPodError>(&stopped)) {
      // 409: the pod changed state since the look-up; it may have stopped on its own.
      if (error->http_status == 409) {
        auto now = co_await api->get_pod(pod_id);
        if (auto* pod = std::get_if<Pod>(&now); pod && pod->status == "EXITED") {
          log("pod " + pod_id + ": stopped meanwhile");
          co_return TaskOutcome::success(Json{{"status", "EXITED"}});
        }
      }
      log("pod " + pod_id + ": " + error->message);
      co_return failure(*error);
    }
    const Pod& pod = std::get<Pod>(stopped);
    log("pod " + pod_id + ": stopped (" + pod.status + ")");
    co_return TaskOutcome::success(Json{{"status", pod.status}});
  }

 private:
  OperatorSchema schema_;
};

class StartOperator final : public engine::Operator {
 public:
  StartOperator() {
    schema_.args = {
        {"pod_id", ValueType::string, true, std::nullopt, "the pod to start"},
        {"bid_per_gpu", ValueType::number, false, std::nullopt,
         "spot pods: resume with this bid, USD per GPU hour (GraphQL)"},
    };
    schema_.outputs = {"status", "cost_per_hr"};
  }
  std::string_view name() const override { return "runpod.start"; }
  const OperatorSchema& schema() const override { return schema_; }

  asio::awaitable<TaskOutcome> execute(TaskContext ctx) const override {
    auto log = [&](const std::string& line) {
      if (ctx.log) ctx.log->write(line + "\n");
    };
    const std::string pod_id = ctx.args.value("pod_id", std::string());
    if (pod_id.empty()) {
      co_return TaskOutcome::failure(ErrorKind::bad_input, "runpod.start needs pod_id");
    }
    std::optional<double> bid;
    if (ctx.args.contains("bid_per_gpu") && ctx.args["bid_per_gpu"].is_number()) {
      bid = ctx.args["bid_per_gpu"].get<double>();
      if (*bid <= 0) {
        co_return TaskOutcome::failure(ErrorKind::bad_input,
                                       "bid_per_gpu must be more than 0 (USD per GPU per hour)");
      }
    }
    auto client = make_client(ctx);
    if (auto* error = std::get_if<RunPodError>(&client)) co_return failure(*error);
    const auto& api = std::get<std::shared_ptr<const Client>>(client);
    if (bid && !api->graphql_enabled()) {
      co_return TaskOutcome::failure(
          ErrorKind::client,
          "resuming a spot pod with a bid needs RunPod's GraphQL API, which is off");
    }

    auto before = co_await api->get_pod(pod_id);
    if (auto* error = std::get_if<RunPodError>(&before)) {
      log("pod " + pod_id + ": " + error->message);
      co_return failure(*error);
    }
    const Pod& current = std::get<Pod>(before);
    Result<Pod> started = RunPodError{};
    if (current.status == "RUNNING" || current.status == "STARTING" ||
        current.status == "PROVISIONING") {
      log("pod " + pod_id + ": already " + current.status);
      started = current;
    } else if (bid) {
      log("pod " + pod_id + ": resuming spot pod with bid " + std::to_string(*bid) + " per GPU");
      started =
          co_await api->bid_resume(pod_id, *bid, current.gpu_count > 0 ? current.gpu_count : 1);
    } else {
      started = co_await api->start_pod(pod_id);
    }
    if (auto* error = std::get_if<RunPodError>(&started)) {
      log("pod " + pod_id + ": " + error->message);
      if (!bid && error->http_status == 400) {
        error->message += " (a spot pod resumes only with a bid: give bid_per_gpu)";
      }
      co_return failure(*error);
    }
    const Pod& pod = std::get<Pod>(started);
    std::optional<double> rate = pod.cost_per_hr;
    if (!rate) {
      auto facts = co_await api->pod_facts(pod_id);
      if (auto* f = std::get_if<PodFacts>(&facts)) rate = f->cost_per_hr;
    }
    log("pod " + pod_id + ": " + pod.status);
    co_return TaskOutcome::success(
        Json{{"status", pod.status}, {"cost_per_hr", rate ? Json(*rate) : Json(nullptr)}});
  }

 private:
  OperatorSchema schema_;
};

}  // namespace

std::shared_ptr<const engine::Operator> make_stop_operator() {
  return std::make_shared<StopOperator>();
}

std::shared_ptr<const engine::Operator> make_start_operator() {
  return std::make_shared<StartOperator>();
}

}  // namespace podflow::runpod
