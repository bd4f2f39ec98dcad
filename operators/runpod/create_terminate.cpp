// runpod.create and runpod.terminate: deploy a pod from a list of candidates without ever making
// two pods for one try, and end every pod a task made, whatever happened upstream.
#include <algorithm>
#include <chrono>
#include <set>
#include <sstream>

#include "operators/runpod/pod_name.hpp"
#include "operators/runpod/runpod_operators.hpp"
#include "podflow/engine/duration.hpp"

namespace podflow::runpod {
namespace {

namespace asio = boost::asio;
using engine::ArgSpec;
using engine::ErrorKind;
using engine::OperatorSchema;
using engine::TaskContext;
using engine::TaskOutcome;
using engine::ValueType;

constexpr std::string_view kPodKind = "runpod.pod";

struct Candidate {
  std::string gpu_type;
  std::string cloud_type = "SECURE";
  std::string pricing = "on_demand";  // on_demand | spot
  std::optional<double> bid_per_gpu;
  int gpu_count = 1;
  std::string data_center;

  std::string describe() const {
    std::ostringstream out;
    out << gpu_type << ", " << cloud_type << ", " << gpu_count << " GPU"
        << (gpu_count == 1 ? "" : "s");
    if (pricing == "spot") {
      out << ", spot bid " << (bid_per_gpu ? *bid_per_gpu : 0.0);
    } else {
      out << ", on-demand";
    }
    if (!data_center.empty()) out << ", " << data_center;
    return out.str();
  }
};

// What the resource record keeps of a candidate, so a retry that adopts the pod reports the
// pricing, cloud and bid it was created with.
Json to_json(const Candidate& c) {
  return Json{{"gpu_type", c.gpu_type},
              {"cloud_type", c.cloud_type},
              {"pricing", c.pricing},
              {"bid_per_gpu", c.bid_per_gpu ? Json(*c.bid_per_gpu) : Json(nullptr)},
              {"gpu_count", c.gpu_count},
              {"data_center", c.data_center}};
}

// Reads one candidate; `error` names the problem.
std::optional<Candidate> read_candidate(const Json& object, std::string& error) {
  if (!object.is_object()) {
    error = "each candidate must be a map with gpu_type, cloud_type, pricing, ...";
    return std::nullopt;
  }
  static const std::set<std::string> kKeys = {"gpu_type",    "cloud_type", "pricing",
                                              "bid_per_gpu", "gpu_count",  "data_center"};
  for (const auto& [key, value] : object.items()) {
    if (!kKeys.contains(key)) {
      error = "candidate has unknown key '" + key +
              "' (known: gpu_type, cloud_type, pricing, bid_per_gpu, gpu_count, data_center)";
      return std::nullopt;
    }
  }
  Candidate c;
  if (!object.contains("gpu_type") || !object["gpu_type"].is_string()) {
    error = "candidate needs gpu_type, e.g. \"NVIDIA RTX A4000\"";
    return std::nullopt;
  }
  c.gpu_type = object["gpu_type"].get<std::string>();
  c.cloud_type = object.value("cloud_type", std::string("SECURE"));
  if (c.cloud_type != "SECURE" && c.cloud_type != "COMMUNITY" && c.cloud_type != "ALL") {
    error = "cloud_type must be SECURE, COMMUNITY or ALL, got '" + c.cloud_type + "'";
    return std::nullopt;
  }
  c.pricing = object.value("pricing", std::string("on_demand"));
  if (c.pricing != "on_demand" && c.pricing != "spot") {
    error = "pricing must be on_demand or spot, got '" + c.pricing + "'";
    return std::nullopt;
  }
  if (object.contains("bid_per_gpu") && object["bid_per_gpu"].is_number()) {
    c.bid_per_gpu = object["bid_per_gpu"].get<double>();
  }
  if (c.pricing == "spot" && (!c.bid_per_gpu || *c.bid_per_gpu <= 0)) {
    error = "a spot candidate needs bid_per_gpu (USD per GPU per hour), e.g. 0.25";
    return std::nullopt;
  }
  if (object.contains("gpu_count")) {
    if (!object["gpu_count"].is_number_integer() || object["gpu_count"].get<int>() < 1) {
      error = "gpu_count must be an integer of 1 or more";
      return std::nullopt;
    }
    c.gpu_count = object["gpu_count"].get<int>();
  }
  c.data_center = object.value("data_center", std::string());
  return c;
}

std::optional<Candidate> candidate_from_json(const Json& object) {
  if (!object.is_object()) return std::nullopt;
  Json compact = Json::object();
  for (const auto& [key, value] : object.items()) {
    if (!value.is_null() && !(value.is_string() && value.get<std::string>().empty())) {
      compact[key] = value;
    }
  }
  std::string error;
  return read_candidate(compact, error);
}

// The candidates to try, in order: `candidates:` or the shorthand keys directly under `with:`.
// cloud_type ALL for an on-demand pod means SECURE, then COMMUNITY (REST has no ALL).
std::variant<std::vector<Candidate>, std::string> read_candidates(const Json& args) {
  std::vector<Candidate> out;
  std::string error;
  if (args.contains("candidates") && !args["candidates"].is_null()) {
    if (!args["candidates"].is_array() || args["candidates"].empty()) {
      return std::string("candidates must be a non-empty list");
    }
    for (const auto& item : args["candidates"]) {
      auto c = read_candidate(item, error);
      if (!c) return error;
      out.push_back(*c);
    }
    if (args.contains("gpu_type") && !args["gpu_type"].is_null()) {
      return std::string("give either candidates or gpu_type, not both");
    }
  } else {
    Json shorthand = Json::object();
    for (const char* key :
         {"gpu_type", "cloud_type", "pricing", "bid_per_gpu", "gpu_count", "data_center"}) {
      if (args.contains(key) && !args[key].is_null()) shorthand[key] = args[key];
    }
    auto c = read_candidate(shorthand, error);
    if (!c) return error + " (or give a candidates: list)";
    out.push_back(*c);
  }
  std::vector<Candidate> expanded;
  for (const auto& c : out) {
    if (c.cloud_type == "ALL" && c.pricing == "on_demand") {
      Candidate secure = c;
      secure.cloud_type = "SECURE";
      Candidate community = c;
      community.cloud_type = "COMMUNITY";
      expanded.push_back(secure);
      expanded.push_back(community);
    } else {
      expanded.push_back(c);
    }
  }
  return expanded;
}

PodSpec spec_for(const Json& args, const Candidate& candidate, const std::string& name) {
  PodSpec spec;
  spec.name = name;
  spec.image = args.value("image", std::string());
  spec.template_id = args.value("template_id", std::string());
  spec.gpu_type_id = candidate.gpu_type;
  spec.gpu_count = candidate.gpu_count;
  spec.cloud_type = candidate.cloud_type;
  if (!candidate.data_center.empty()) spec.data_center_ids = {candidate.data_center};
  if (args.contains("env") && args["env"].is_object()) {
    for (const auto& [key, value] : args["env"].items()) {
      spec.env[key] = value.is_string() ? value.get<std::string>() : value.dump();
    }
  }
  if (args.contains("container_disk_gb") && args["container_disk_gb"].is_number_integer()) {
    spec.container_disk_gb = args["container_disk_gb"].get<int>();
  }
  if (args.contains("volume_gb") && args["volume_gb"].is_number_integer()) {
    spec.volume_gb = args["volume_gb"].get<int>();
  }
  if (args.contains("volume_mount_path") && args["volume_mount_path"].is_string()) {
    spec.volume_mount_path = args["volume_mount_path"].get<std::string>();
  }
  spec.network_volume_id = args.value("network_volume_id", std::string());
  if (args.contains("ports") && args["ports"].is_array()) {
    for (const auto& port : args["ports"]) {
      if (port.is_string()) spec.ports.push_back(port.get<std::string>());
    }
  }
  spec.args = args.value("args", std::string());
  return spec;
}

std::optional<engine::Millis> duration_arg(const Json& value) {
  if (value.is_string()) return engine::parse_duration(value.get<std::string>());
  if (value.is_number_integer()) return std::chrono::seconds(value.get<long long>());
  return std::nullopt;
}

std::string iso_utc(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

// True for pod states that cost money or will: anything not yet ended.
bool is_alive(const Pod& pod) {
  return pod.status != "EXITED" && pod.status != "TERMINATED" && pod.status != "ERROR";
}

TaskOutcome failure(const RunPodError& error) {
  return TaskOutcome{Json::object(),
                     engine::TaskError(error.kind, error.message, error.retry_after)};
}

class CreateOperator final : public engine::Operator {
 public:
  CreateOperator() {
    schema_.args = {
        {"image", ValueType::string, false, std::nullopt, "container image"},
        {"template_id", ValueType::string, false, std::nullopt, "RunPod template"},
        {"candidates", ValueType::array, false, std::nullopt, "GPU configurations tried in order"},
        {"gpu_type", ValueType::string, false, std::nullopt, "one candidate: GPU type id"},
        {"cloud_type", ValueType::string, false, std::nullopt, "SECURE, COMMUNITY or ALL"},
        {"pricing", ValueType::string, false, std::nullopt, "on_demand or spot"},
        {"bid_per_gpu", ValueType::number, false, std::nullopt, "spot bid, USD per GPU hour"},
        {"gpu_count", ValueType::integer, false, std::nullopt, "GPUs per pod"},
        {"data_center", ValueType::string, false, std::nullopt, "data center id"},
        {"env", ValueType::object, false, std::nullopt, "container environment"},
        {"container_disk_gb", ValueType::integer, false, std::nullopt, ""},
        {"volume_gb", ValueType::integer, false, std::nullopt, ""},
        {"volume_mount_path", ValueType::string, false, std::nullopt, ""},
        {"network_volume_id", ValueType::string, false, std::nullopt, ""},
        {"ports", ValueType::array, false, std::nullopt, "e.g. [\"8888/http\"]"},
        {"args", ValueType::string, false, std::nullopt, "docker start arguments"},
        {"terminate_after", ValueType::duration, false, std::nullopt,
         "server-side backstop: RunPod terminates the pod after this long (GraphQL)"},
    };
    schema_.outputs = {"pod_id",      "pod_name",    "machine_id", "cost_per_hr",
                       "pod_type",    "gpu_type",    "gpu_count",  "cloud_type",
                       "bid_per_gpu", "template_id", "image",      "api"};
  }
  std::string_view name() const override { return "runpod.create"; }
  const OperatorSchema& schema() const override { return schema_; }

  asio::awaitable<TaskOutcome> execute(TaskContext ctx) const override {
    const Json& args = ctx.args;
    auto log = [&](const std::string& line) {
      if (ctx.log) ctx.log->write(line + "\n");
    };
    if (args.value("image", std::string()).empty() &&
        args.value("template_id", std::string()).empty()) {
      co_return TaskOutcome::failure(ErrorKind::bad_input,
                                     "runpod.create needs image or template_id");
    }
    auto candidates = read_candidates(args);
    if (auto* error = std::get_if<std::string>(&candidates)) {
      co_return TaskOutcome::failure(ErrorKind::bad_input, "runpod.create: " + *error);
    }
    std::optional<std::string> terminate_after;
    if (args.contains("terminate_after") && !args["terminate_after"].is_null()) {
      auto after = duration_arg(args["terminate_after"]);
      if (!after) {
        co_return TaskOutcome::failure(ErrorKind::bad_input,
                                       "terminate_after must be a duration like 12h");
      }
      terminate_after = iso_utc(std::chrono::system_clock::now() + *after);
    }
    auto client = make_client(ctx);
    if (auto* error = std::get_if<RunPodError>(&client)) co_return failure(*error);
    const auto& api = std::get<std::shared_ptr<const Client>>(client);
    if (!ctx.recorder) {
      co_return TaskOutcome::failure(ErrorKind::task_failed, "runpod.create needs a run store");
    }

    // A pod an earlier try of this task created and nobody ended is adopted, never doubled.
    if (auto adopted = co_await adopt_earlier_pod(ctx, *api, log)) co_return *adopted;

    const std::string name =
        pod_name(ctx.recorder->install_id(), ctx.run_id, ctx.task_id, ctx.try_number);
    const auto& list = std::get<std::vector<Candidate>>(candidates);
    std::vector<std::string> attempts;
    bool any_capacity = false;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const Candidate& candidate = list[i];
      const std::string label = "GPU configuration attempt " + std::to_string(i + 1) + "/" +
                                std::to_string(list.size()) + " (" + candidate.describe() + ")";
      if (candidate.pricing == "spot" && !api->graphql_enabled()) {
        log(label + ": skipped, spot pods need RunPod's GraphQL API, which is off");
        attempts.push_back(label + ": GraphQL off");
        continue;
      }
      // Intent before side effect: the name is durable before RunPod hears of it.
      engine::ResourceRecord intent;
      intent.kind = std::string(kPodKind);
      intent.name = name;
      intent.state = "intent";
      intent.detail =
          Json{{"candidate", candidate.describe()}, {"candidate_spec", to_json(candidate)}};
      if (auto ec = co_await ctx.recorder->record_resource(intent)) {
        co_return TaskOutcome::failure(ErrorKind::task_failed,
                                       "could not record the pod intent: " + ec.message());
      }
      PodSpec spec = spec_for(args, candidate, name);
      if (terminate_after && api->graphql_enabled()) {
        spec.terminate_after = *terminate_after;
      } else if (terminate_after) {
        log("warning: terminate_after needs RunPod's GraphQL API, which is off: pod " + name +
            " gets no server-side backstop");
      }
      // Plain statements, not `?:`: GCC 12 miscompiles co_await inside a conditional expression.
      Result<Pod> created = RunPodError{};
      if (candidate.pricing == "spot") {
        created = co_await api->create_spot_pod(spec, *candidate.bid_per_gpu);
      } else {
        created = co_await api->create_pod(spec);
      }
      if (auto* error = std::get_if<RunPodError>(&created)) {
        if (error->kind == ErrorKind::server || error->kind == ErrorKind::timeout ||
            error->kind == ErrorKind::network) {
          // The pod may exist though the answer was lost: look it up before anything else.
          auto found = co_await api->find_pod_by_name(name);
          if (auto* pod = std::get_if<std::optional<Pod>>(&found); pod && pod->has_value()) {
            log(label + ": the answer was lost (" + error->message + ") but pod " + (*pod)->id +
                " exists; using it");
            created = **pod;
          } else {
            log(label + ": " + error->message);
            co_return failure(*error);  // retried under the task's policy, with a new name
          }
        } else if (error->kind == ErrorKind::capacity || error->http_status == 400 ||
                   error->http_status == 403) {
          // No capacity, or a combination RunPod cannot place: the next candidate may work.
          log(label + ": " + error->message);
          attempts.push_back(label + ": " + error->message);
          any_capacity = any_capacity || error->kind == ErrorKind::capacity;
          continue;
        } else {
          log(label + ": " + error->message);
          co_return failure(*error);
        }
      }
      const Pod& pod = std::get<Pod>(created);
      log(label + ": created pod " + pod.id + " (" + name + ")");
      co_return co_await finish(ctx, *api, pod, name, candidate, log);
    }
    // Capacity comes and goes, so a retry may succeed; a candidate RunPod rejects for what it is
    // (an unknown GPU type) will be rejected again.
    std::string message = any_capacity ? "no candidate had capacity; tried:"
                                       : "RunPod accepted none of the candidates; tried:";
    for (const auto& attempt : attempts) message += "\n  " + attempt;
    co_return TaskOutcome::failure(any_capacity ? ErrorKind::capacity : ErrorKind::client, message);
  }

 private:
  template <typename Log>
  asio::awaitable<std::optional<TaskOutcome>> adopt_earlier_pod(TaskContext& ctx, const Client& api,
                                                                Log& log) const {
    for (const auto& resource : ctx.recorder->resources(ctx.task_id)) {
      if (resource.kind != kPodKind || resource.try_number >= ctx.try_number) continue;
      if (resource.state != "intent" && resource.state != "created") continue;
      std::optional<Pod> pod;
      // Only a definite "no such pod" lets this try create one: a look-up that failed (429, 5xx,
      // timeout) fails the try, which is retried, instead of risking a second pod.
      std::optional<RunPodError> lookup_error;
      if (!resource.external_id.empty()) {
        auto got = co_await api.get_pod(resource.external_id);
        if (auto* p = std::get_if<Pod>(&got)) {
          pod = *p;
        } else if (auto& error = std::get<RunPodError>(got); !error.not_found) {
          lookup_error = error;
        }
      } else {
        auto found = co_await api.find_pod_by_name(resource.name);
        if (auto* p = std::get_if<std::optional<Pod>>(&found)) {
          pod = *p;
        } else {
          lookup_error = std::get<RunPodError>(found);
        }
      }
      if (lookup_error) {
        log("could not tell whether try " + std::to_string(resource.try_number) + "'s pod (" +
            resource.name + ") still exists: " + lookup_error->message +
            "; not creating another until it can be looked up");
        co_return failure(*lookup_error);
      }
      if (!pod || !is_alive(*pod)) continue;
      log("try " + std::to_string(resource.try_number) + " already created pod " + pod->id + " (" +
          resource.name + "); using it instead of creating another");
      const Json detail = resource.detail.is_object() ? resource.detail : Json::object();
      if (detail.contains("api") && detail["api"].is_string()) pod->api = detail["api"];
      Candidate candidate;
      if (auto recorded = candidate_from_json(detail.value("candidate_spec", Json()))) {
        candidate = *recorded;
      } else {
        candidate.gpu_type = pod->gpu_type_id;
        candidate.gpu_count = pod->gpu_count;
      }
      co_return co_await finish(ctx, api, *pod, resource.name, candidate, log);
    }
    co_return std::nullopt;
  }

  template <typename Log>
  asio::awaitable<TaskOutcome> finish(TaskContext& ctx, const Client& api, const Pod& pod,
                                      const std::string& name, const Candidate& candidate,
                                      Log& log) const {
    engine::ResourceRecord created;
    created.kind = std::string(kPodKind);
    created.name = name;
    created.external_id = pod.id;
    created.state = "created";
    created.detail = Json{{"candidate", candidate.describe()},
                          {"candidate_spec", to_json(candidate)},
                          {"api", pod.api}};
    // The pod exists either way; a failed record is logged, and terminate still finds it by name.
    if (auto ec = co_await ctx.recorder->record_resource(created)) {
      log("warning: could not record pod " + pod.id + ": " + ec.message());
    }
    auto facts = co_await api.pod_facts(pod.id);
    PodFacts known;
    if (auto* f = std::get_if<PodFacts>(&facts)) known = *f;
    if (!known.warning.empty()) log("warning: " + known.warning);
    const bool spot = candidate.pricing == "spot";
    const std::optional<double> rate = pod.cost_per_hr ? pod.cost_per_hr : known.cost_per_hr;
    Json outputs = {
        {"pod_id", pod.id},
        {"pod_name", name},
        {"machine_id", known.machine_id},
        {"cost_per_hr", rate ? Json(*rate) : Json(nullptr)},
        {"pod_type", !known.pod_type.empty() ? known.pod_type
                                             : std::string(spot ? "INTERRUPTABLE" : "RESERVED")},
        {"gpu_type", candidate.gpu_type.empty() ? pod.gpu_type_id : candidate.gpu_type},
        {"gpu_count", candidate.gpu_count},
        {"cloud_type", candidate.cloud_type},
        {"bid_per_gpu", candidate.bid_per_gpu ? Json(*candidate.bid_per_gpu) : Json(nullptr)},
        {"template_id", ctx.args.value("template_id", std::string())},
        {"image", pod.image.empty() ? ctx.args.value("image", std::string()) : pod.image},
        {"api", pod.api},
    };
    co_return TaskOutcome::success(std::move(outputs));
  }

  OperatorSchema schema_;
};

class TerminateOperator final : public engine::Operator {
 public:
  TerminateOperator() {
    schema_.args = {
        {"pod_id", ValueType::string, false, std::nullopt, "one pod"},
        {"task", ValueType::string, false, std::nullopt,
         "every pod that task of this run created, in every try"},
    };
    schema_.outputs = {"terminated", "already_gone"};
  }
  std::string_view name() const override { return "runpod.terminate"; }
  const OperatorSchema& schema() const override { return schema_; }

  asio::awaitable<TaskOutcome> execute(TaskContext ctx) const override {
    auto log = [&](const std::string& line) {
      if (ctx.log) ctx.log->write(line + "\n");
    };
    const std::string pod_id = ctx.args.value("pod_id", std::string());
    const std::string task = ctx.args.value("task", std::string());
    if (pod_id.empty() && task.empty()) {
      co_return TaskOutcome::failure(
          ErrorKind::bad_input,
          "runpod.terminate needs pod_id or task (the task whose pods to terminate)");
    }
    auto client = make_client(ctx);
    if (auto* error = std::get_if<RunPodError>(&client)) co_return failure(*error);
    const auto& api = std::get<std::shared_ptr<const Client>>(client);

    // Every pod to end, with the resource record to update when it came from one.
    std::vector<std::pair<std::string, std::optional<engine::ResourceRecord>>> targets;
    if (!pod_id.empty()) targets.emplace_back(pod_id, std::nullopt);
    std::optional<RunPodError> first_error;
    if (!task.empty() && ctx.recorder) {
      for (auto resource : ctx.recorder->resources(task)) {
        if (resource.kind != kPodKind) continue;
        if (resource.state == "terminated" || resource.state == "gone") continue;
        std::string id = resource.external_id;
        if (id.empty()) {
          // Only the intent was recorded: the create may still have happened.
          auto found = co_await api->find_pod_by_name(resource.name);
          if (auto* error = std::get_if<RunPodError>(&found)) {
            log("pod " + resource.name + ": look-up failed: " + error->message);
            if (!first_error) first_error = *error;
            continue;
          }
          const auto& pod = std::get<std::optional<Pod>>(found);
          if (!pod) {
            log("pod " + resource.name + ": never created");
            resource.state = "gone";
            co_await ctx.recorder->record_resource(resource);
            continue;
          }
          id = pod->id;
        }
        targets.emplace_back(id, resource);
      }
    }

    Json terminated = Json::array();
    Json already_gone = Json::array();
    std::set<std::string> done;
    for (auto& [id, resource] : targets) {
      if (!done.insert(id).second) continue;
      auto result = co_await api->terminate_pod(id);
      if (auto* error = std::get_if<RunPodError>(&result)) {
        log("pod " + id + ": " + error->message);
        if (!first_error) first_error = *error;
        continue;
      }
      const bool gone = std::get<TerminateResult>(result).already_gone;
      log("pod " + id + (gone ? ": already gone" : ": terminated"));
      (gone ? already_gone : terminated).push_back(id);
      if (resource) {
        resource->external_id = id;
        resource->state = "terminated";
        co_await ctx.recorder->record_resource(*resource);
      }
    }
    if (first_error) {
      // Some pod may still be running: fail, so the retry policy tries again.
      co_return failure(*first_error);
    }
    co_return TaskOutcome::success(
        Json{{"terminated", terminated}, {"already_gone", already_gone}});
  }

 private:
  OperatorSchema schema_;
};

}  // namespace

std::shared_ptr<const engine::Operator> make_create_operator() {
  return std::make_shared<CreateOperator>();
}

std::shared_ptr<const engine::Operator> make_terminate_operator() {
  return std::make_shared<TerminateOperator>();
}

}  // namespace podflow::runpod
