// The GraphQL endpoint: validates documents against the subset SDL, coerces variables and input
// objects, runs the pod operations and returns only the selected fields.
#include <algorithm>
#include <set>

#include "sim_core.hpp"

namespace podflow::runpod_sim {
namespace {

constexpr const char* kCapacityText =
    "There are no longer any instances available with the requested specifications. Please "
    "refresh and try again.";
constexpr const char* kMaskedText =
    "Something went wrong. Please try again later or contact support.";

using FieldTypes = std::map<std::string, std::string>;

// Output types: field -> type ("" for scalars, else the object type's name).
const std::map<std::string, FieldTypes>& object_types() {
  static const std::map<std::string, FieldTypes> types = {
      {"Query", {{"myself", "User"}, {"pod", "Pod"}, {"gpuTypes", "GpuType"}}},
      {"Mutation",
       {{"podFindAndDeployOnDemand", "Pod"},
        {"podRentInterruptable", "Pod"},
        {"podResume", "Pod"},
        {"podBidResume", "Pod"},
        {"podStop", "Pod"},
        {"podTerminate", ""}}},
      {"User", {{"id", ""}, {"pods", "Pod"}}},
      {"Pod",
       {{"id", ""},
        {"name", ""},
        {"imageName", ""},
        {"templateId", ""},
        {"desiredStatus", ""},
        {"lastStatusChange", ""},
        {"podType", ""},
        {"costPerHr", ""},
        {"adjustedCostPerHr", ""},
        {"lowestBidPriceToResume", ""},
        {"machineId", ""},
        {"gpuCount", ""},
        {"vcpuCount", ""},
        {"memoryInGb", ""},
        {"containerDiskInGb", ""},
        {"volumeInGb", ""},
        {"volumeMountPath", ""},
        {"dockerArgs", ""},
        {"dockerId", ""},
        {"env", ""},
        {"port", ""},
        {"ports", ""},
        {"uptimeSeconds", ""},
        {"createdAt", ""},
        {"lastStartedAt", ""},
        {"runtime", "PodRuntime"},
        {"machine", "PodMachineInfo"}}},
      {"PodRuntime",
       {{"uptimeInSeconds", ""},
        {"ports", "PodRuntimePorts"},
        {"gpus", "PodRuntimeGpus"},
        {"container", "PodRuntimeContainer"}}},
      {"PodRuntimePorts",
       {{"ip", ""}, {"isIpPublic", ""}, {"privatePort", ""}, {"publicPort", ""}, {"type", ""}}},
      {"PodRuntimeGpus", {{"id", ""}, {"gpuUtilPercent", ""}, {"memoryUtilPercent", ""}}},
      {"PodRuntimeContainer", {{"cpuPercent", ""}, {"memoryPercent", ""}}},
      {"PodMachineInfo",
       {{"podHostId", ""},
        {"gpuDisplayName", ""},
        {"gpuTypeId", ""},
        {"location", ""},
        {"dataCenterId", ""},
        {"secureCloud", ""}}},
      {"GpuType",
       {{"id", ""},
        {"displayName", ""},
        {"manufacturer", ""},
        {"memoryInGb", ""},
        {"maxGpuCount", ""},
        {"secureCloud", ""},
        {"communityCloud", ""},
        {"securePrice", ""},
        {"communityPrice", ""},
        {"secureSpotPrice", ""},
        {"communitySpotPrice", ""},
        {"lowestPrice", "LowestPrice"}}},
      {"LowestPrice",
       {{"gpuName", ""},
        {"gpuTypeId", ""},
        {"minimumBidPrice", ""},
        {"uninterruptablePrice", ""},
        {"stockStatus", ""},
        {"availableGpuCounts", ""},
        {"minMemory", ""},
        {"minVcpu", ""}}},
  };
  return types;
}

// Field arguments: "Type.field" -> argument name -> input type.
const std::map<std::string, FieldTypes>& field_arguments() {
  static const std::map<std::string, FieldTypes> args = {
      {"Query.pod", {{"input", "PodFilter!"}}},
      {"Query.gpuTypes", {{"input", "GpuTypeFilter"}}},
      {"Mutation.podFindAndDeployOnDemand", {{"input", "PodFindAndDeployOnDemandInput"}}},
      {"Mutation.podRentInterruptable", {{"input", "PodRentInterruptableInput!"}}},
      {"Mutation.podResume", {{"input", "PodResumeInput!"}}},
      {"Mutation.podBidResume", {{"input", "PodBidResumeInput!"}}},
      {"Mutation.podStop", {{"input", "PodStopInput!"}}},
      {"Mutation.podTerminate", {{"input", "PodTerminateInput!"}}},
      {"GpuType.lowestPrice", {{"input", "GpuLowestPriceInput"}}},
  };
  return args;
}

FieldTypes deploy_fields(bool spot) {
  FieldTypes f = {{"name", "String"},
                  {"imageName", "String"},
                  {"templateId", "String"},
                  {"cloudType", "CloudTypeEnum"},
                  {"gpuTypeId", "String"},
                  {"gpuCount", "Int"},
                  {"volumeInGb", "Int"},
                  {"containerDiskInGb", "Int"},
                  {"minVcpuCount", "Int"},
                  {"minMemoryInGb", "Int"},
                  {"dockerArgs", "String"},
                  {"ports", "String"},
                  {"volumeMountPath", "String"},
                  {"env", "[EnvironmentVariableInput]"},
                  {"networkVolumeId", "String"},
                  {"dataCenterId", "String"},
                  {"countryCode", "String"},
                  {"supportPublicIp", "Boolean"},
                  {"startSsh", "Boolean"},
                  {"startJupyter", "Boolean"},
                  {"allowedCudaVersions", "[String]"},
                  {"minDownload", "Int"},
                  {"minUpload", "Int"},
                  {"stopAfter", "String"},
                  {"terminateAfter", "String"}};
  if (spot) {
    f["bidPerGpu"] = "Float!";
  } else {
    f["gpuTypeIdList"] = "[String]";
    f["minCudaVersion"] = "String";
    f["containerRegistryAuthId"] = "String";
  }
  return f;
}

const std::map<std::string, FieldTypes>& input_types() {
  static const std::map<std::string, FieldTypes> types = {
      {"EnvironmentVariableInput", {{"key", "String!"}, {"value", "String!"}}},
      {"PodFindAndDeployOnDemandInput", deploy_fields(false)},
      {"PodRentInterruptableInput", deploy_fields(true)},
      {"PodFilter", {{"podId", "String!"}}},
      {"PodResumeInput", {{"podId", "String!"}, {"gpuCount", "Int"}}},
      {"PodBidResumeInput", {{"podId", "String!"}, {"bidPerGpu", "Float!"}, {"gpuCount", "Int!"}}},
      {"PodStopInput", {{"podId", "String!"}}},
      {"PodTerminateInput", {{"podId", "String!"}}},
      {"GpuTypeFilter", {{"id", "String"}}},
      {"GpuLowestPriceInput",
       {{"gpuCount", "Int!"},
        {"minMemoryInGb", "Int"},
        {"minVcpuCount", "Int"},
        {"secureCloud", "Boolean"},
        {"communityCloud", "Boolean"},
        {"totalDisk", "Int"}}},
  };
  return types;
}

// Input type names the SDKs spell out in variable declarations; the subset file says other input
// type names are unconfirmed and must not be named, so the simulator rejects them.
const std::set<std::string>& declarable_types() {
  static const std::set<std::string> names = {"String",
                                              "Int",
                                              "Float",
                                              "Boolean",
                                              "ID",
                                              "PodFindAndDeployOnDemandInput",
                                              "PodRentInterruptableInput",
                                              "GpuLowestPriceInput"};
  return names;
}

std::string base_type(std::string type) {
  type.erase(std::remove_if(type.begin(), type.end(),
                            [](char c) { return c == '[' || c == ']' || c == '!'; }),
             type.end());
  return type;
}

struct Failure {
  std::string code;    // GRAPHQL_VALIDATION_FAILED, BAD_USER_INPUT, ...
  std::string detail;  // what the simulator found (RunPod only says "Something went wrong")
};

// Coerces a JSON value (a variable or a substituted literal) to a GraphQL input type.
bool coerce_json(const Json& v, const std::string& type, const std::string& path, Failure& failure,
                 Json& out) {
  const bool non_null = !type.empty() && type.back() == '!';
  const auto inner = non_null ? type.substr(0, type.size() - 1) : type;
  if (v.is_null()) {
    if (non_null) {
      failure.detail = path + ": expected non-null " + inner;
      return false;
    }
    out = nullptr;
    return true;
  }
  if (inner.front() == '[') {
    const auto item_type = inner.substr(1, inner.size() - 2);
    out = Json::array();
    const Json items = v.is_array() ? v : Json::array({v});  // input coercion wraps single values
    for (std::size_t i = 0; i < items.size(); ++i) {
      Json item;
      if (!coerce_json(items[i], item_type, path + "[" + std::to_string(i) + "]", failure, item)) {
        return false;
      }
      out.push_back(item);
    }
    return true;
  }
  auto bad = [&](const std::string& want) {
    failure.detail = path + ": expected " + want + ", got " + v.dump();
    return false;
  };
  if (inner == "String" || inner == "ID") {
    if (!v.is_string()) return bad(inner);
    out = v;
  } else if (inner == "Int") {
    if (!v.is_number_integer()) return bad("Int");
    out = v;
  } else if (inner == "Float") {
    if (!v.is_number()) return bad("Float");
    out = v.get<double>();
  } else if (inner == "Boolean") {
    if (!v.is_boolean()) return bad("Boolean");
    out = v;
  } else if (inner == "CloudTypeEnum") {
    if (!v.is_string() || (v != "ALL" && v != "SECURE" && v != "COMMUNITY")) {
      return bad("CloudTypeEnum (ALL, SECURE or COMMUNITY)");
    }
    out = v;
  } else if (input_types().contains(inner)) {
    if (!v.is_object()) return bad(inner);
    const auto& fields = input_types().at(inner);
    out = Json::object();
    for (const auto& [key, item] : v.items()) {
      if (!fields.contains(key)) {
        failure.detail = path + ": field \"" + key + "\" is not defined by type \"" + inner + "\"";
        return false;
      }
      Json coerced;
      if (!coerce_json(item, fields.at(key), path + "." + key, failure, coerced)) return false;
      out[key] = coerced;
    }
    for (const auto& [key, field_type] : fields) {
      if (field_type.back() == '!' && !v.contains(key)) {
        failure.detail = path + ": field \"" + key + "\" of type \"" + field_type +
                         "\" is required, but it was not provided";
        return false;
      }
    }
  } else {
    failure.detail = path + ": unknown type " + inner;
    return false;
  }
  return true;
}

// Substitutes variables into a literal; enum literals become strings, checked by coerce_json
// (a quoted "SECURE" where an enum is expected is accepted here, unlike strict GraphQL).
bool literal_to_json(const graphql::Value& v, const Json& variables, const std::string& path,
                     Failure& failure, Json& out) {
  using K = graphql::Value::Kind;
  switch (v.kind) {
    case K::null:
      out = nullptr;
      return true;
    case K::boolean:
    case K::integer:
    case K::floating:
    case K::string:
      out = v.scalar;
      return true;
    case K::enumeration:
      out = v.name;
      return true;
    case K::variable:
      if (!variables.contains(v.name)) {
        failure.detail = path + ": variable \"$" + v.name + "\" is not defined";
        return false;
      }
      out = variables.at(v.name);
      return true;
    case K::list:
      out = Json::array();
      for (const auto& item : v.items) {
        Json j;
        if (!literal_to_json(item, variables, path, failure, j)) return false;
        out.push_back(j);
      }
      return true;
    case K::object:
      out = Json::object();
      for (const auto& [key, item] : v.fields) {
        Json j;
        if (!literal_to_json(item, variables, path + "." + key, failure, j)) return false;
        out[key] = j;
      }
      return true;
  }
  return false;
}

bool validate_selection(const std::vector<graphql::Field>& fields, const std::string& type,
                        const Json& variables, Failure& failure) {
  const auto& table = object_types().at(type);
  for (const auto& f : fields) {
    if (f.name == "__typename") continue;
    if (!table.contains(f.name)) {
      failure.detail = "Cannot query field \"" + f.name + "\" on type \"" + type + "\". (line " +
                       std::to_string(f.line) + ", column " + std::to_string(f.column) + ")";
      return false;
    }
    const auto& target = table.at(f.name);
    if (target.empty() && f.has_selection) {
      failure.detail = "Field \"" + f.name + "\" must not have a selection since type \"" + type +
                       "." + f.name + "\" has no subfields.";
      return false;
    }
    if (!target.empty() && !f.has_selection) {
      failure.detail =
          "Field \"" + f.name + "\" of type \"" + target + "\" must have a selection of subfields.";
      return false;
    }
    const auto key = type + "." + f.name;
    const auto* allowed = field_arguments().contains(key) ? &field_arguments().at(key) : nullptr;
    for (const auto& [name, value] : f.arguments) {
      if (!allowed || !allowed->contains(name)) {
        failure.detail = "Unknown argument \"" + name + "\" on field \"" + key + "\".";
        return false;
      }
      Json literal, coerced;
      if (!literal_to_json(value, variables, f.name + "(" + name + ")", failure, literal) ||
          !coerce_json(literal, allowed->at(name), f.name + "(" + name + ")", failure, coerced)) {
        return false;
      }
    }
    if (allowed) {
      for (const auto& [name, arg_type] : *allowed) {
        const bool given = std::any_of(f.arguments.begin(), f.arguments.end(),
                                       [&](const auto& a) { return a.first == name; });
        if (!given && arg_type.back() == '!') {
          failure.detail = "Field \"" + f.name + "\" argument \"" + name + "\" of type \"" +
                           arg_type + "\" is required, but it was not provided.";
          return false;
        }
      }
    }
    if (!target.empty() && !validate_selection(f.selection, target, variables, failure)) {
      return false;
    }
  }
  return true;
}

Json project(const Json& value, const std::vector<graphql::Field>& fields,
             const std::string& type) {
  if (value.is_null()) return nullptr;
  if (value.is_array()) {
    Json out = Json::array();
    for (const auto& item : value) out.push_back(project(item, fields, type));
    return out;
  }
  Json out = Json::object();
  for (const auto& f : fields) {
    if (f.name == "__typename") {
      out[f.alias] = type;
      continue;
    }
    const auto& target = object_types().at(type).at(f.name);
    const Json field_value = value.contains(f.name) ? value.at(f.name) : Json(nullptr);
    out[f.alias] = target.empty() ? field_value : project(field_value, f.selection, target);
  }
  return out;
}

Outcome graphql_failure(unsigned status, const Failure& failure) {
  Outcome out;
  out.status = status;
  out.body =
      Json{{"errors",
            {{{"message", kMaskedText},
              {"extensions", {{"code", failure.code}, {"simulatorDetail", failure.detail}}}}}}}
          .dump();
  return out;
}

Json input_argument(const graphql::Field& field, const Json& variables) {
  for (const auto& [name, value] : field.arguments) {
    if (name != "input") continue;
    Failure ignored;
    Json out;
    if (literal_to_json(value, variables, "", ignored, out)) return out;
  }
  return nullptr;
}

}  // namespace

Json Core::graphql_pod(const Pod& pod, double t) const {
  const auto* g = gpu(pod.gpu_id);
  Json env = Json::array();
  for (const auto& [k, v] : pod.env.items()) env.push_back(k + "=" + v.get<std::string>());
  std::string ports;
  for (const auto& p : pod.ports) ports += (ports.empty() ? "" : ",") + p.get<std::string>();
  Json runtime = nullptr;
  if (has_runtime(pod, t)) {
    Json rports = Json::array();
    // Named: a range-for over a member of a temporary reads freed memory.
    const Json rest = rest_pod(pod, t);
    for (const auto& p : rest["runtime"]["ports"]) {
      rports.push_back({{"ip", p["ip"]},
                        {"isIpPublic", !p["ip"].is_null()},
                        {"privatePort", p["private"]},
                        {"publicPort", p["public"]},
                        {"type", p["type"]}});
    }
    Json gpus = Json::array();
    for (int i = 0; i < pod.gpu_count; ++i) {
      gpus.push_back({{"id", "GPU-" + pod.machine_id + "-" + std::to_string(i)},
                      {"gpuUtilPercent", 95},
                      {"memoryUtilPercent", 60}});
    }
    runtime = {{"uptimeInSeconds", static_cast<std::int64_t>(t - *pod.cycle_started_at)},
               {"ports", rports},
               {"gpus", gpus},
               {"container", {{"cpuPercent", 12}, {"memoryPercent", 30}}}};
  }
  const double cost = cost_per_hr(pod);
  return Json{
      {"id", pod.id},
      {"name", pod.name},
      {"imageName", pod.image},
      {"templateId", pod.template_id.empty() ? Json(nullptr) : Json(pod.template_id)},
      {"desiredStatus", pod.running ? "RUNNING" : "EXITED"},
      {"lastStatusChange", pod.last_status_change},
      {"podType", pod.spot ? "INTERRUPTABLE" : "RESERVED"},
      {"costPerHr", cost},
      {"adjustedCostPerHr", cost},
      {"lowestBidPriceToResume", pod.min_bid_per_gpu},
      {"machineId", pod.machine_id},
      {"gpuCount", pod.gpu_count},
      {"vcpuCount", 8.0 * pod.gpu_count},
      {"memoryInGb", 32.0 * pod.gpu_count},
      {"containerDiskInGb", pod.disk},
      {"volumeInGb",
       pod.mounts.contains("persistent") ? pod.mounts["persistent"].value("size", 0.0) : 0.0},
      {"volumeMountPath", pod.mounts.contains("persistent")
                              ? pod.mounts["persistent"].value("path", std::string("/workspace"))
                              : std::string("/workspace")},
      {"dockerArgs", pod.args},
      {"dockerId", pod.container_started_at ? Json(pod.machine_id + "-container") : Json(nullptr)},
      {"env", env},
      {"port", nullptr},
      {"ports", ports},
      {"uptimeSeconds",
       runtime.is_null() ? Json(0) : Json(runtime["uptimeInSeconds"].get<std::int64_t>())},
      {"createdAt", iso(pod.created_at)},
      {"lastStartedAt",
       pod.container_started_at ? Json(iso(*pod.container_started_at)) : Json(nullptr)},
      {"runtime", runtime},
      {"machine",
       {{"podHostId", pod.id + "-" + pod.machine_id.substr(0, 8)},
        {"gpuDisplayName", g ? g->name : pod.gpu_id},
        {"gpuTypeId", pod.gpu_id},
        {"location", "Simulator"},
        {"dataCenterId", pod.data_center},
        {"secureCloud", pod.cloud == "SECURE"}}}};
}

Json Core::graphql_gpu(const GpuTypeSpec& g) const {
  Json counts = Json::array();
  if (g.capacity) {
    for (int i = 1; i <= g.max_count; i *= 2) counts.push_back(i);
  }
  return Json{{"id", g.id},
              {"displayName", g.name},
              {"manufacturer", g.id.rfind("AMD", 0) == 0 ? "AMD" : "Nvidia"},
              {"memoryInGb", g.memory_gb},
              {"maxGpuCount", g.max_count},
              {"secureCloud", g.secure_price > 0},
              {"communityCloud", g.community_price > 0},
              {"securePrice", g.secure_price},
              {"communityPrice", g.community_price},
              {"secureSpotPrice", g.secure_spot_price},
              {"communitySpotPrice", g.community_spot_price},
              {"lowestPrice",
               {{"gpuName", g.name},
                {"gpuTypeId", g.id},
                {"minimumBidPrice", std::min(g.secure_spot_price, g.community_spot_price)},
                {"uninterruptablePrice", std::min(g.secure_price, g.community_price)},
                {"stockStatus", g.capacity ? "High" : "None"},
                {"availableGpuCounts", counts},
                {"minMemory", 32},
                {"minVcpu", 8}}}};
}

Outcome Core::handle_graphql(const IncomingRequest& request, std::string& route) {
  if (request.method != "POST") return problem(405, "method not allowed");
  const auto body = Json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("query") ||
      !body["query"].is_string()) {
    return graphql_failure(400, {"BAD_REQUEST", "the body must be JSON with a string \"query\""});
  }
  const auto parsed = graphql::parse_document(body["query"].get<std::string>());
  if (const auto* error = std::get_if<graphql::ParseError>(&parsed)) {
    return graphql_failure(400,
                           {"GRAPHQL_PARSE_FAILED", "Syntax Error: " + error->message + " (line " +
                                                        std::to_string(error->line) + ", column " +
                                                        std::to_string(error->column) + ")"});
  }
  const auto& operations = std::get<std::vector<graphql::Operation>>(parsed);
  const auto operation_name = body.contains("operationName") && body["operationName"].is_string()
                                  ? body["operationName"].get<std::string>()
                                  : std::string();
  const graphql::Operation* op = nullptr;
  for (const auto& candidate : operations) {
    if (operation_name.empty() ? operations.size() == 1 : candidate.name == operation_name) {
      op = &candidate;
    }
  }
  if (!op) {
    return graphql_failure(
        400, {"GRAPHQL_VALIDATION_FAILED",
              operation_name.empty() ? "several operations and no operationName"
                                     : "Unknown operation named \"" + operation_name + "\"."});
  }
  // Variables: declared types must be confirmed names; values are coerced to them.
  const Json given = body.contains("variables") && body["variables"].is_object() ? body["variables"]
                                                                                 : Json::object();
  Json variables = Json::object();
  for (const auto& def : op->variables) {
    if (!declarable_types().contains(base_type(def.type))) {
      return graphql_failure(
          400, {"GRAPHQL_VALIDATION_FAILED",
                "Variable \"$" + def.name + "\" declares type \"" + def.type +
                    "\", which RunPod's schema does not confirm; pass the argument inline"});
    }
    Failure failure{"BAD_USER_INPUT", ""};
    Json value;
    if (given.contains(def.name)) {
      if (!coerce_json(given[def.name], def.type, "$" + def.name, failure, value)) {
        failure.detail = "Variable \"$" + def.name + "\" got invalid value; " + failure.detail;
        return graphql_failure(400, failure);
      }
    } else if (def.has_default) {
      Json literal;
      literal_to_json(def.default_value, Json::object(), "", failure, literal);
      value = literal;
    } else if (def.type.back() == '!') {
      failure.detail =
          "Variable \"$" + def.name + "\" of required type \"" + def.type + "\" was not provided.";
      return graphql_failure(400, failure);
    } else {
      continue;
    }
    variables[def.name] = value;
  }
  const auto root_type = op->kind == "mutation" ? std::string("Mutation") : std::string("Query");
  Failure failure{"GRAPHQL_VALIDATION_FAILED", ""};
  if (!validate_selection(op->selection, root_type, variables, failure)) {
    return graphql_failure(400, failure);
  }
  route = "POST /graphql " + op->selection.front().name;
  Json data = Json::object();
  Json errors = Json::array();
  for (const auto& field : op->selection) {
    ++route_counts_["graphql " + field.name];
    if (field.name == "__typename") {
      data[field.alias] = root_type;
      continue;
    }
    const auto input = input_argument(field, variables);
    const auto before = errors.size();
    const auto result = execute_root(field, input, root_type, errors);
    for (auto i = before; i < errors.size(); ++i) errors[i]["path"] = Json::array({field.alias});
    const auto& target = object_types().at(root_type).at(field.name);
    data[field.alias] = target.empty() ? result : project(result, field.selection, target);
  }
  Outcome out;
  Json response = Json::object();
  if (!errors.empty()) response["errors"] = errors;
  response["data"] = data;
  out.body = response.dump();
  return out;
}

Json Core::execute_root(const graphql::Field& field, const Json& input, const std::string& kind,
                        Json& errors) {
  const double t = now();
  auto error = [&](const std::string& message) {
    errors.push_back(Json{{"message", message}});
    return Json(nullptr);
  };
  if (kind == "Query") {
    if (field.name == "pod") {
      Pod* pod = find_live(input.value("podId", std::string()));
      return pod ? graphql_pod(*pod, t) : Json(nullptr);
    }
    if (field.name == "myself") {
      Json pods = Json::array();
      for (auto& pod : pods_) {
        if (pod.terminated_at) continue;
        advance(pod, t);
        pods.push_back(graphql_pod(pod, t));
      }
      return Json{{"id", "user_sim"}, {"pods", pods}};
    }
    if (field.name == "gpuTypes") {
      Json list = Json::array();
      const auto id = input.is_object() ? input.value("id", std::string()) : std::string();
      for (const auto& g : script_.gpu_types) {
        if (id.empty() || g.id == id) list.push_back(graphql_gpu(g));
      }
      return list;
    }
    return nullptr;
  }
  if (field.name == "podFindAndDeployOnDemand" || field.name == "podRentInterruptable") {
    const bool spot = field.name == "podRentInterruptable";
    const auto gpu_id = input.value("gpuTypeId", std::string());
    const auto* g = gpu(gpu_id);
    if (!g) return error("GPU type \"" + gpu_id + "\" not found");
    auto cloud = input.value("cloudType", std::string("ALL"));
    if (cloud == "ALL") cloud = g->secure_price > 0 ? "SECURE" : "COMMUNITY";
    const double price = cloud == "SECURE" ? g->secure_price : g->community_price;
    const double min_bid = cloud == "SECURE" ? g->secure_spot_price : g->community_spot_price;
    const int count = input.value("gpuCount", 1);
    if (!g->capacity || price <= 0 || count > g->max_count) return error(kCapacityText);
    const double bid = spot ? input.value("bidPerGpu", 0.0) : 0.0;
    if (spot && bid < min_bid) {
      return error("Your bid of $" + std::to_string(bid) + "/hr is below the minimum bid of $" +
                   std::to_string(min_bid) + "/hr; you would be outbid.");
    }
    Pod pod;
    pod.id = new_id();
    pod.machine_id = new_id().substr(0, 12);
    pod.name = input.value("name", std::string());
    pod.image = input.value("imageName", std::string());
    pod.template_id = input.value("templateId", std::string());
    pod.args = input.value("dockerArgs", std::string());
    pod.cloud = cloud;
    if (input.contains("env") && input["env"].is_array()) {
      for (const auto& kv : input["env"]) {
        if (kv.is_object()) pod.env[kv.value("key", "")] = kv.value("value", "");
      }
    }
    const auto ports = input.value("ports", std::string());
    std::size_t pos = 0;
    while (!ports.empty() && pos <= ports.size()) {
      auto end = ports.find(',', pos);
      if (end == std::string::npos) end = ports.size();
      if (end > pos) pod.ports.push_back(ports.substr(pos, end - pos));
      pos = end + 1;
    }
    pod.disk = input.value("containerDiskInGb", 50);
    const int volume = input.value("volumeInGb", 0);
    if (volume > 0) {
      pod.mounts["persistent"] = {
          {"size", volume}, {"path", input.value("volumeMountPath", std::string("/workspace"))}};
    }
    pod.gpu_id = gpu_id;
    pod.gpu_count = count;
    pod.api = "graphql";
    pod.spot = spot;
    pod.bid_per_gpu = bid;
    pod.price_per_gpu = price;
    pod.min_bid_per_gpu = min_bid;
    pod.created_at = t;
    start_run(pod, t);
    pods_.push_back(pod);
    return graphql_pod(pods_.back(), t);
  }
  Pod* pod = find_live(input.value("podId", std::string()));
  if (field.name == "podTerminate") {
    if (!pod) return error("Pod not found");
    stop_pod(*pod, t, "Terminated by user");
    pod->terminated_at = t;
    return nullptr;
  }
  if (!pod) return error("Pod not found");
  if (field.name == "podStop") {
    stop_pod(*pod, t, "Exited by user");
    return graphql_pod(*pod, t);
  }
  if (field.name == "podResume") {
    if (pod->spot) return error("Cannot resume a spot pod with podResume; use podBidResume");
    if (!pod->running) start_run(*pod, t);
    return graphql_pod(*pod, t);
  }
  if (field.name == "podBidResume") {
    if (!pod->spot) return error("podBidResume resumes spot pods only; use podResume");
    const double bid = input.value("bidPerGpu", 0.0);
    if (bid < pod->min_bid_per_gpu) {
      return error("Your bid of $" + std::to_string(bid) + "/hr is below the minimum bid of $" +
                   std::to_string(pod->min_bid_per_gpu) + "/hr; you would be outbid.");
    }
    pod->bid_per_gpu = bid;
    if (!pod->running) start_run(*pod, t);
    return graphql_pod(*pod, t);
  }
  return nullptr;
}

}  // namespace podflow::runpod_sim
