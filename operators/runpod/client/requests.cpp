// RunPod request bodies, answer parsing and the mapping of failures to error kinds.
#include "operators/runpod/client/requests.hpp"

#include <algorithm>
#include <cctype>

namespace podflow::runpod::detail {
namespace {

using engine::ErrorKind;

constexpr std::size_t kTextLimit = 300;  // characters of an unparsed body quoted in messages
// RunPod's capacity text (REST 400 detail and GraphQL error message alike).
constexpr std::string_view kCapacityText = "no longer any instances available";

bool contains(std::string_view haystack, std::string_view needle) {
  return net::ascii_lower(haystack).find(needle) != std::string::npos;
}

std::string string_at(const Json& json, const char* key) {
  auto it = json.find(key);
  return it != json.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<double> number_at(const Json& json, const char* key) {
  auto it = json.find(key);
  if (it == json.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

ErrorKind kind_for_status(unsigned status) {
  if (status == 429) return ErrorKind::rate_limited;
  if (status == 401 || status == 403) return ErrorKind::auth;
  if (status >= 500) return ErrorKind::server;
  return ErrorKind::client;
}

std::string clipped(std::string_view text) {
  if (text.size() <= kTextLimit) return std::string(text);
  return std::string(text.substr(0, kTextLimit)) + "...";
}

}  // namespace

Json rest_create_body(const PodSpec& spec) {
  Json body = Json::object();
  body["name"] = spec.name;
  if (!spec.image.empty()) body["image"] = spec.image;
  if (!spec.template_id.empty()) body["templateId"] = spec.template_id;
  if (!spec.gpu_type_id.empty()) {
    Json gpu{{"id", spec.gpu_type_id}, {"count", spec.gpu_count}};
    if (!spec.allowed_cuda_versions.empty())
      gpu["allowedCudaVersions"] = spec.allowed_cuda_versions;
    body["gpu"] = std::move(gpu);
  }
  // REST v2 has no ALL: its default (SECURE) stands in, and callers wanting COMMUNITY say so.
  if (spec.cloud_type == "SECURE" || spec.cloud_type == "COMMUNITY")
    body["cloud"] = spec.cloud_type;
  if (!spec.data_center_ids.empty()) body["dataCenterIds"] = spec.data_center_ids;
  if (!spec.env.empty()) {
    Json env = Json::object();
    for (const auto& [key, value] : spec.env) env[key] = value;
    body["env"] = std::move(env);
  }
  if (spec.container_disk_gb) body["disk"] = *spec.container_disk_gb;
  Json mounts = Json::object();
  if (spec.volume_gb && *spec.volume_gb > 0) {
    mounts["persistent"] = Json{{"size", *spec.volume_gb}, {"path", spec.volume_mount_path}};
  }
  if (!spec.network_volume_id.empty()) {
    mounts["network"] =
        Json::array({Json{{"volumeId", spec.network_volume_id}, {"path", spec.volume_mount_path}}});
  }
  if (!mounts.empty()) body["mounts"] = std::move(mounts);
  if (!spec.ports.empty()) body["ports"] = spec.ports;
  if (!spec.args.empty()) body["args"] = spec.args;
  if (spec.start_ssh) body["startSsh"] = true;
  return body;
}

Json rest_action_body(std::string_view action) { return Json{{"action", std::string(action)}}; }

Json spot_variables(const PodSpec& spec, double bid_per_gpu) {
  Json input = Json::object();
  input["bidPerGpu"] = bid_per_gpu;
  input["name"] = spec.name;
  if (!spec.image.empty()) input["imageName"] = spec.image;
  if (!spec.template_id.empty()) input["templateId"] = spec.template_id;
  input["cloudType"] = spec.cloud_type.empty() ? std::string("SECURE") : spec.cloud_type;
  if (!spec.gpu_type_id.empty()) input["gpuTypeId"] = spec.gpu_type_id;
  input["gpuCount"] = spec.gpu_count;
  if (spec.volume_gb) input["volumeInGb"] = *spec.volume_gb;
  if (spec.container_disk_gb) input["containerDiskInGb"] = *spec.container_disk_gb;
  if (!spec.args.empty()) input["dockerArgs"] = spec.args;
  if (!spec.ports.empty()) {
    std::string ports;
    for (const auto& port : spec.ports) ports += (ports.empty() ? "" : ",") + port;
    input["ports"] = ports;
  }
  input["volumeMountPath"] = spec.volume_mount_path;
  if (!spec.env.empty()) {
    Json env = Json::array();
    for (const auto& [key, value] : spec.env) env.push_back(Json{{"key", key}, {"value", value}});
    input["env"] = std::move(env);
  }
  if (!spec.network_volume_id.empty()) input["networkVolumeId"] = spec.network_volume_id;
  // GraphQL takes a single data center.
  if (!spec.data_center_ids.empty()) input["dataCenterId"] = spec.data_center_ids.front();
  if (!spec.allowed_cuda_versions.empty())
    input["allowedCudaVersions"] = spec.allowed_cuda_versions;
  if (spec.start_ssh) input["startSsh"] = true;
  if (!spec.terminate_after.empty()) input["terminateAfter"] = spec.terminate_after;
  return Json{{"input", std::move(input)}};
}

Json bid_resume_variables(std::string_view pod_id, double bid_per_gpu, int gpu_count) {
  return Json{{"podId", std::string(pod_id)}, {"bidPerGpu", bid_per_gpu}, {"gpuCount", gpu_count}};
}

Json pod_facts_variables(std::string_view pod_id) { return Json{{"podId", std::string(pod_id)}}; }

Json graphql_body(std::string_view document, Json variables) {
  return Json{{"query", std::string(document)}, {"variables", std::move(variables)}};
}

std::optional<Pod> parse_rest_pod(const Json& json) {
  if (!json.is_object() || string_at(json, "id").empty()) return std::nullopt;
  Pod pod;
  pod.api = "rest";
  pod.id = string_at(json, "id");
  pod.name = string_at(json, "name");
  pod.status = string_at(json, "status");
  pod.cost_per_hr = number_at(json, "cost");
  pod.image = string_at(json, "image");
  pod.data_center_id = string_at(json, "dataCenterId");
  if (auto gpu = json.find("gpu"); gpu != json.end() && gpu->is_object()) {
    pod.gpu_type_id = string_at(*gpu, "id");
    if (auto count = gpu->find("count"); count != gpu->end() && count->is_number_integer()) {
      pod.gpu_count = count->get<int>();
    }
  }
  if (auto runtime = json.find("runtime"); runtime != json.end() && runtime->is_object()) {
    pod.has_runtime = true;
    if (auto uptime = runtime->find("uptime"); uptime != runtime->end() && uptime->is_number()) {
      pod.uptime_seconds = uptime->get<long long>();
    }
  }
  return pod;
}

std::optional<Pod> parse_graphql_pod(const Json& json) {
  if (!json.is_object() || string_at(json, "id").empty()) return std::nullopt;
  Pod pod;
  pod.api = "graphql";
  pod.id = string_at(json, "id");
  pod.name = string_at(json, "name");
  pod.status = string_at(json, "desiredStatus");
  pod.cost_per_hr = number_at(json, "costPerHr");
  pod.image = string_at(json, "imageName");
  if (auto count = json.find("gpuCount"); count != json.end() && count->is_number_integer()) {
    pod.gpu_count = count->get<int>();
  }
  if (auto machine = json.find("machine"); machine != json.end() && machine->is_object()) {
    pod.gpu_type_id = string_at(*machine, "gpuTypeId");
    pod.data_center_id = string_at(*machine, "dataCenterId");
  }
  return pod;
}

std::optional<GpuType> parse_gpu_type(const Json& json) {
  if (!json.is_object() || string_at(json, "id").empty()) return std::nullopt;
  GpuType gpu;
  gpu.id = string_at(json, "id");
  gpu.name = string_at(json, "name");
  if (auto memory = json.find("memory"); memory != json.end() && memory->is_number_integer()) {
    gpu.memory_gb = memory->get<int>();
  }
  if (auto price = json.find("price"); price != json.end() && price->is_object()) {
    gpu.secure_price = number_at(*price, "secure");
    gpu.community_price = number_at(*price, "community");
  }
  gpu.availability = string_at(json, "availability");
  return gpu;
}

RunPodError rest_error(std::string_view call, const net::Response& response) {
  RunPodError error;
  error.http_status = static_cast<int>(response.status);
  std::string text;
  const Json body = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_object() && body.contains("detail")) {
    text = string_at(body, "detail");
    if (auto errors = body.find("errors"); errors != body.end() && errors->is_array()) {
      std::string listed;
      for (const auto& item : *errors) {
        if (item.is_string()) listed += (listed.empty() ? "" : "; ") + item.get<std::string>();
      }
      if (!listed.empty()) text += " (" + listed + ")";
    }
  } else {
    text = clipped(response.body);
  }
  error.kind = kind_for_status(response.status);
  if (error.kind != ErrorKind::rate_limited && error.kind != ErrorKind::auth &&
      contains(text, kCapacityText)) {
    error.kind = ErrorKind::capacity;
  }
  error.not_found = response.status == 404;
  if (response.status == 429 || response.status == 503) error.retry_after = response.retry_after();
  error.message = "RunPod " + std::string(call) + ": HTTP " + std::to_string(response.status);
  if (!response.reason.empty()) error.message += " " + response.reason;
  if (error.retry_after) {
    error.message += " (retry after " + std::to_string(error.retry_after->count() / 1000) + " s)";
  }
  if (!text.empty()) error.message += ": " + text;
  return error;
}

std::optional<RunPodError> graphql_error(std::string_view call, const net::Response& response,
                                         const Json& body) {
  if (response.status != 200) {
    RunPodError error = rest_error(call, response);
    if (auto errors = body.find("errors");
        body.is_object() && errors != body.end() && errors->is_array() && !errors->empty()) {
      const std::string text = string_at(errors->front(), "message");
      if (contains(text, kCapacityText)) error.kind = ErrorKind::capacity;
    }
    return error;
  }
  if (!body.is_object()) {
    return RunPodError{ErrorKind::server, 200,
                       "RunPod " + std::string(call) +
                           ": the GraphQL answer is not JSON: " + clipped(response.body),
                       std::nullopt, false};
  }
  auto errors = body.find("errors");
  if (errors == body.end() || !errors->is_array() || errors->empty()) return std::nullopt;
  const std::string text = string_at(errors->front(), "message");
  RunPodError error;
  error.http_status = 200;
  if (contains(text, kCapacityText)) {
    error.kind = ErrorKind::capacity;
  } else if (contains(text, "unauthorized") || contains(text, "forbidden")) {
    error.kind = ErrorKind::auth;
  } else if (contains(text, "something went wrong")) {
    error.kind = ErrorKind::server;  // RunPod's mask over internal and parse failures
  } else {
    error.kind = ErrorKind::client;
  }
  error.message = "RunPod " + std::string(call) + ": GraphQL error: " + text;
  if (errors->size() > 1) {
    error.message += " (and " + std::to_string(errors->size() - 1) + " more)";
  }
  return error;
}

RunPodError network_error(std::string_view call, const net::Failure& failure,
                          std::chrono::milliseconds timeout) {
  RunPodError error;
  error.kind = net::error_kind(failure.kind);
  error.message = "RunPod " + std::string(call) + " " + failure.describe(timeout);
  return error;
}

}  // namespace podflow::runpod::detail
