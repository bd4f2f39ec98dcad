// mlflow.log: one MLflow run with a task's params, metric series, tags and status, sent through
// the durable outbox so that MLflow being down never loses a record nor holds up the workflow.
#include <cstdlib>

#include "podflow/engine/duration.hpp"
#include "podflow/operators/mlflow.hpp"

namespace podflow::mlflow {
namespace {

namespace asio = boost::asio;
using engine::ArgSpec;
using engine::ErrorKind;
using engine::OperatorSchema;
using engine::TaskContext;
using engine::TaskOutcome;
using engine::ValueType;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A param or tag value as MLflow stores it: strings as they are, anything else as JSON text.
std::string as_text(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return value.dump();
}

class LogOperator final : public engine::Operator {
 public:
  explicit LogOperator(std::shared_ptr<Outbox> outbox) : outbox_(std::move(outbox)) {
    schema_.args = {
        {"experiment", ValueType::string, true, std::nullopt, "MLflow experiment name"},
        {"run_name", ValueType::string, false, std::nullopt,
         "default: <workflow>-<task> of this run"},
        {"run_id", ValueType::string, false, std::nullopt, "add to this existing MLflow run"},
        {"params", ValueType::object, false, Json::object(), "name -> value"},
        {"metrics", ValueType::object, false, Json::object(), "name -> number (step 0)"},
        {"metrics_from", ValueType::string, false, std::nullopt,
         "a task whose recorded metric series is sent, with steps and timestamps"},
        {"tags", ValueType::object, false, Json::object(), "name -> value"},
        {"status", ValueType::string, false, Json("auto"),
         "FINISHED, FAILED, KILLED, RUNNING (left open) or auto (FAILED when an upstream failed)"},
        {"tracking_uri", ValueType::string, false, std::nullopt, "default: MLFLOW_TRACKING_URI"},
        {"delivery_timeout", ValueType::duration, false, Json("30s"),
         "how long the task waits for MLflow before leaving delivery to the outbox"},
    };
    schema_.outputs = {"run_id", "experiment_id", "run_url", "delivered"};
  }
  std::string_view name() const override { return "mlflow.log"; }
  const OperatorSchema& schema() const override { return schema_; }

  asio::awaitable<TaskOutcome> execute(TaskContext ctx) const override {
    const Json& args = ctx.args;
    auto log = [&](const std::string& line) {
      if (ctx.log) ctx.log->write(line + "\n");
    };
    if (!ctx.recorder) {
      co_return TaskOutcome::failure(ErrorKind::task_failed, "mlflow.log needs a run store");
    }
    const std::string tracking_uri = args.value("tracking_uri", std::string());
    // Checked now, so a missing MLFLOW_TRACKING_URI fails the task instead of waiting forever.
    auto config = config_from_env(tracking_uri);
    if (auto* problem = std::get_if<std::string>(&config)) {
      co_return TaskOutcome::failure(ErrorKind::bad_input, "mlflow.log: " + *problem);
    }

    Delivery d;
    // The server as resolved now: a later process with another MLFLOW_TRACKING_URI still delivers
    // these records where this run meant them to go.
    d.tracking_uri = std::get<Config>(config).tracking_uri;
    d.experiment = args.value("experiment", std::string());
    if (d.experiment.empty()) {
      co_return TaskOutcome::failure(ErrorKind::bad_input, "mlflow.log needs an experiment name");
    }
    const std::string workflow =
        ctx.env.contains("PODFLOW_WORKFLOW") ? ctx.env.at("PODFLOW_WORKFLOW") : std::string();
    d.run_name = args.value("run_name", workflow + "-" + ctx.task_id);
    d.run_id = args.value("run_id", std::string());
    d.identity = {{"podflow.run_id", ctx.run_id}, {"podflow.task", ctx.task_id}};

    std::string status = args.value("status", std::string("auto"));
    if (status == "auto") {
      status = "FINISHED";
      for (const auto& [task, state] : ctx.upstream_states) {
        if (state == "failed" || state == "upstream_failed") {
          status = "FAILED";
          log("upstream task " + task + " " + state + ": status FAILED");
        }
      }
    }
    if (status != "FINISHED" && status != "FAILED" && status != "KILLED" && status != "RUNNING") {
      co_return TaskOutcome::failure(
          ErrorKind::bad_input,
          "mlflow.log: status must be FINISHED, FAILED, KILLED, RUNNING or auto, got '" + status +
              "'");
    }
    d.status = status;

    const Json params_arg = args.value("params", Json::object());  // kept: items() refers to it
    for (const auto& [key, value] : params_arg.items()) {
      d.params.emplace_back(key, as_text(value));
    }
    const char* user = std::getenv("USER");
    d.tags = {{"mlflow.user", user && *user ? user : "podflow"},
              {"mlflow.source.name", workflow},
              {"mlflow.source.type", "JOB"},
              {"podflow.workflow", workflow}};
    const Json tags_arg = args.value("tags", Json::object());  // kept: items() refers to it
    for (const auto& [key, value] : tags_arg.items()) {
      d.tags.emplace_back(key, as_text(value));
    }

    const std::int64_t now = now_ms();
    d.start_time_ms = now;
    if (args.contains("metrics_from") && args["metrics_from"].is_string()) {
      const std::string from = args["metrics_from"].get<std::string>();
      if (!ctx.upstream_states.contains(from)) {
        co_return TaskOutcome::failure(
            ErrorKind::bad_input, "mlflow.log: metrics_from '" + from +
                                      "' must be a task this one depends on (add it to depends)");
      }
      for (const auto& point : ctx.recorder->metrics_of(from)) {
        d.metrics.push_back({point.name, point.value, point.timestamp, point.step});
        d.start_time_ms = std::min(d.start_time_ms, point.timestamp);
      }
      log("sending " + std::to_string(d.metrics.size()) + " metric points recorded by " + from);
    }
    const Json metrics_arg = args.value("metrics", Json::object());  // kept: items() refers to it
    for (const auto& [key, value] : metrics_arg.items()) {
      if (!value.is_number()) {
        co_return TaskOutcome::failure(
            ErrorKind::bad_input,
            "mlflow.log: metric '" + key + "' must be a number, got " + value.dump());
      }
      d.metrics.push_back({key, value.get<double>(), now, 0});
    }
    d.end_time_ms = now;
    // Values MLflow would refuse are cut once, here, where the task log can say which.
    std::vector<std::string> warnings;
    d.params = cut_values(d.params, kMaxParamValue, "param", warnings);
    d.tags = cut_values(d.tags, kMaxTagValue, "tag", warnings);
    for (const auto& warning : warnings) log("warning: " + warning);

    // Durable before MLflow hears of it. A rerun keeps what an earlier try already delivered.
    const std::string entry_name = ctx.run_id + "/" + ctx.task_id;
    engine::ResourceRecord entry;
    for (const auto& earlier : ctx.recorder->resources(ctx.task_id)) {
      if (earlier.kind == kOutboxKind && earlier.name == entry_name) entry = earlier;
    }
    if (entry.state != "delivered" && entry.state != "rejected") {
      entry.kind = std::string(kOutboxKind);
      entry.name = entry_name;
      entry.state = "pending";
      if (!entry.detail.is_object()) entry.detail = Json::object();
      entry.detail["delivery"] = to_json(d);
      if (auto ec = co_await ctx.recorder->record_resource(entry)) {
        co_return TaskOutcome::failure(ErrorKind::task_failed,
                                       "could not record the MLflow outbox entry: " + ec.message());
      }
    }

    const auto deadline = engine::parse_duration(args.value("delivery_timeout", std::string("30s")))
                              .value_or(std::chrono::seconds(30));
    const DeliveryState state = co_await outbox_->deliver(entry_name, deadline);
    if (state.rejected) {
      co_return TaskOutcome::failure(ErrorKind::client,
                                     "MLflow refused the records: " + state.last_error);
    }
    if (state.delivered) {
      log("MLflow run " + state.mlflow_run_id + " (" + status + "): " + state.run_url);
    } else {
      log("MLflow did not take the records yet (" + state.last_error +
          "); they are kept in the outbox and delivered in order once it answers");
    }
    auto or_null = [](const std::string& text) {
      return text.empty() ? Json(nullptr) : Json(text);
    };
    co_return TaskOutcome::success(Json{{"run_id", or_null(state.mlflow_run_id)},
                                        {"experiment_id", or_null(state.experiment_id)},
                                        {"run_url", or_null(state.run_url)},
                                        {"delivered", state.delivered}});
  }

 private:
  std::shared_ptr<Outbox> outbox_;
  OperatorSchema schema_;
};

}  // namespace

void register_mlflow_operators(engine::OperatorRegistry& registry, std::shared_ptr<Outbox> outbox) {
  registry.add(std::make_shared<LogOperator>(std::move(outbox)));
}

}  // namespace podflow::mlflow
