// Pod lifecycle, REST v2 routes, auth, rate limits, faults and the /__sim/state report.
#include "sim_core.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <regex>

namespace podflow::runpod_sim {
namespace {

constexpr std::size_t kMaxRecordedRequests = 10000;

constexpr const char* kCapacityText =
    "There are no longer any instances available with the requested specifications. Please "
    "refresh and try again.";

std::map<std::string, std::string> parse_query(const std::string& query) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos < query.size()) {
    auto end = query.find('&', pos);
    if (end == std::string::npos) end = query.size();
    const auto pair = query.substr(pos, end - pos);
    const auto eq = pair.find('=');
    std::string key = pair.substr(0, eq),
                value = eq == std::string::npos ? "" : pair.substr(eq + 1);
    std::string decoded;
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (value[i] == '+') {
        decoded += ' ';
      } else if (value[i] == '%' && i + 2 < value.size()) {
        decoded += static_cast<char>(std::stoi(value.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        decoded += value[i];
      }
    }
    out[key] = decoded;
    pos = end + 1;
  }
  return out;
}

std::string title_for(unsigned status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Error";
  }
}

// A minimal JSON-schema check for CreatePodRequest as the OpenAPI document defines it.
class BodyValidator {
 public:
  Json errors = Json::array();

  void add(const std::string& path, const std::string& message) {
    errors.push_back(path + ": " + message);
  }
  bool type(const Json& v, const std::string& path, const std::string& want) {
    const bool ok = (want == "string" && v.is_string()) ||
                    (want == "integer" && v.is_number_integer()) ||
                    (want == "boolean" && v.is_boolean()) || (want == "object" && v.is_object()) ||
                    (want == "array" && v.is_array());
    if (!ok)
      add(path,
          "value must be " +
              std::string(want == "integer" || want == "array" || want == "object" ? "an " : "a ") +
              want);
    return ok;
  }
  void minimum(const Json& v, const std::string& path, std::int64_t min) {
    if (type(v, path, "integer") && v.get<std::int64_t>() < min) {
      add(path, "value must be >= " + std::to_string(min));
    }
  }
  void min_length(const Json& v, const std::string& path) {
    if (type(v, path, "string") && v.get<std::string>().empty()) add(path, "length must be >= 1");
  }
  void cuda(const Json& v, const std::string& path) {
    static const std::regex pattern(R"(^\d+\.\d+$)");
    if (type(v, path, "string") && !std::regex_match(v.get<std::string>(), pattern)) {
      add(path, "value must match pattern '^\\d+\\.\\d+$'");
    }
  }
  void closed(const Json& obj, const std::string& path, std::initializer_list<const char*> allowed,
              std::initializer_list<const char*> required) {
    for (const auto& [key, value] : obj.items()) {
      if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }) ==
          allowed.end()) {
        add(path + "." + key, "property is not allowed");
      }
    }
    for (const char* key : required) {
      if (!obj.contains(key)) add(path, "missing required property '" + std::string(key) + "'");
    }
  }

  void create_pod(const Json& body) {
    if (!type(body, "$", "object")) return;
    closed(body, "$",
           {"args", "disk", "env", "image", "ports", "registry", "name", "cloud", "cpu",
            "dataCenterIds", "globalNetworking", "gpu", "mounts", "startJupyter", "startSsh",
            "templateId"},
           {"name"});
    if (!body.contains("templateId") && !body.contains("image")) {
      add("$", "missing required property 'image'");
    }
    for (const auto& [key, v] : body.items()) {
      const auto path = "$." + key;
      if (key == "args" || key == "image") {
        type(v, path, "string");
      } else if (key == "name" || key == "templateId") {
        min_length(v, path);
      } else if (key == "disk") {
        minimum(v, path, 1);
      } else if (key == "env") {
        if (type(v, path, "object")) {
          for (const auto& [k, item] : v.items()) type(item, path + "." + k, "string");
        }
      } else if (key == "ports" || key == "dataCenterIds") {
        if (type(v, path, "array")) {
          for (std::size_t i = 0; i < v.size(); ++i) {
            type(v[i], path + "[" + std::to_string(i) + "]", "string");
          }
        }
      } else if (key == "registry") {
        if (!v.is_null()) type(v, path, "string");
      } else if (key == "cloud") {
        if (!v.is_string() || (v != "SECURE" && v != "COMMUNITY")) {
          add(path, "value must be one of 'SECURE', 'COMMUNITY'");
        }
      } else if (key == "globalNetworking" || key == "startJupyter" || key == "startSsh") {
        type(v, path, "boolean");
      } else if (key == "gpu") {
        if (!type(v, path, "object")) continue;
        closed(v, path, {"id", "count", "allowedCudaVersions", "minCudaVersion"}, {"id"});
        if (v.contains("id")) type(v["id"], path + ".id", "string");
        if (v.contains("count")) minimum(v["count"], path + ".count", 1);
        if (v.contains("minCudaVersion")) cuda(v["minCudaVersion"], path + ".minCudaVersion");
        if (v.contains("allowedCudaVersions") &&
            type(v["allowedCudaVersions"], path + ".allowedCudaVersions", "array")) {
          for (std::size_t i = 0; i < v["allowedCudaVersions"].size(); ++i) {
            cuda(v["allowedCudaVersions"][i],
                 path + ".allowedCudaVersions[" + std::to_string(i) + "]");
          }
        }
      } else if (key == "cpu") {
        if (!type(v, path, "object")) continue;
        closed(v, path, {"id", "vcpuCount"}, {"id", "vcpuCount"});
        if (v.contains("id")) min_length(v["id"], path + ".id");
        if (v.contains("vcpuCount")) minimum(v["vcpuCount"], path + ".vcpuCount", 2);
      } else if (key == "mounts") {
        if (!type(v, path, "object")) continue;
        closed(v, path, {"persistent", "network"}, {});
        if (v.contains("persistent") && type(v["persistent"], path + ".persistent", "object")) {
          const auto& p = v["persistent"];
          closed(p, path + ".persistent", {"size", "path"}, {"size", "path"});
          if (p.contains("size")) minimum(p["size"], path + ".persistent.size", 10);
          if (p.contains("path")) type(p["path"], path + ".persistent.path", "string");
        }
        if (v.contains("network") && type(v["network"], path + ".network", "array")) {
          if (v["network"].size() > 1) add(path + ".network", "array must have at most 1 items");
          for (std::size_t i = 0; i < v["network"].size(); ++i) {
            const auto item_path = path + ".network[" + std::to_string(i) + "]";
            if (!type(v["network"][i], item_path, "object")) continue;
            closed(v["network"][i], item_path, {"volumeId", "path"}, {"volumeId", "path"});
          }
        }
      }
    }
  }
};

Json runtime_ports(const Json& ports, std::uint64_t seed) {
  Json out = Json::array();
  for (const auto& p : ports) {
    const auto text = p.get<std::string>();
    const auto slash = text.find('/');
    int private_port = 0;
    try {
      private_port = std::stoi(text.substr(0, slash));
    } catch (const std::exception&) {
      continue;
    }
    const auto kind = slash == std::string::npos ? "tcp" : text.substr(slash + 1);
    out.push_back(Json{
        {"private", private_port},
        {"public", kind == "tcp" ? Json(30000 + static_cast<int>(seed % 20000)) : Json(nullptr)},
        {"type", kind},
        {"ip", kind == "tcp" ? Json("127.0.0.1") : Json(nullptr)}});
  }
  return out;
}

// The request target with any api_key query value blanked, so /__sim/state never shows a key.
std::string redact_target(const std::string& target) {
  const auto at = target.find("api_key=");
  if (at == std::string::npos) return target;
  const auto end = target.find('&', at);
  return target.substr(0, at) + "api_key=REDACTED" +
         (end == std::string::npos ? "" : target.substr(end));
}

}  // namespace

Outcome problem(unsigned status, const std::string& detail, const Json& errors) {
  Json body = Json::object();
  body["detail"] = detail;
  if (!errors.is_null()) body["errors"] = errors;
  body["status"] = status;
  body["title"] = title_for(status);
  Outcome out;
  out.status = status;
  out.body = body.dump();
  out.content_type = "application/problem+json";
  return out;
}

void Core::configure(Script script) {
  Lock lock(mutex_);
  script_ = std::move(script);
  fault_counters_.assign(script_.faults.size(), FaultCounter{});
  start_ = std::chrono::steady_clock::now();
  wall_start_ = std::chrono::system_clock::now();
}

double Core::now() const {
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
  return elapsed.count() * script_.time_scale;
}

std::string Core::iso(double sim_seconds) const {
  const auto at = wall_start_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                    std::chrono::duration<double>(sim_seconds));
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(millis / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis % 1000));
  return text;
}

std::string Core::new_id() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id;
  for (int i = 0; i < 14; ++i) id += kAlphabet[random_() % (sizeof kAlphabet - 1)];
  return id;
}

const GpuTypeSpec* Core::gpu(const std::string& id) const {
  for (const auto& g : script_.gpu_types) {
    if (g.id == id) return &g;
  }
  return nullptr;
}

Pod* Core::find_live(const std::string& id) {
  for (auto& pod : pods_) {
    if (pod.id == id && !pod.terminated_at) {
      advance(pod, now());
      return &pod;
    }
  }
  return nullptr;
}

void Core::add_log(Pod& pod, double at, std::string source, std::string line) {
  pod.logs.push_back(LogEntry{pod.next_seq++, at, std::move(source), std::move(line)});
}

void Core::start_run(Pod& pod, double at) {
  pod.running = true;
  pod.run_started_at = at;
  pod.container_started_at.reset();
  pod.cycle_started_at.reset();
  pod.stopped_at.reset();
  pod.next_line = 0;
  pod.last_status_change = "Rented by User: " + iso(at);
}

void Core::stop_pod(Pod& pod, double at, const std::string& reason) {
  if (!pod.running) return;
  pod.running = false;
  pod.stopped_at = at;
  pod.last_status_change = reason + ": " + iso(at);
  add_log(pod, at, "system", "stop container");
}

// A tiny discrete-event loop: applies, in time order, every scripted event due by `until`.
void Core::advance(Pod& pod, double until) {
  const auto& l = script_.lifecycle;
  while (pod.running) {
    double next = 0;
    enum class Event { start, line, exit, none } event = Event::none;
    if (!pod.container_started_at) {
      next = pod.run_started_at + l.start_seconds;
      event = Event::start;
    } else if (pod.cycle_started_at) {
      if (pod.next_line < l.lines.size()) {
        next = *pod.cycle_started_at +
               static_cast<double>(pod.next_line + 1) * l.line_interval_seconds;
        event = Event::line;
      } else if (l.on_exit != OnExit::keep_running) {
        next = *pod.cycle_started_at + std::max(l.run_seconds, static_cast<double>(l.lines.size()) *
                                                                   l.line_interval_seconds);
        event = Event::exit;
      }
    }
    if (pod.spot && l.preempt_after_seconds &&
        (l.preempt_times < 0 || pod.preemptions < l.preempt_times)) {
      const double preempt_at = pod.run_started_at + *l.preempt_after_seconds;
      if (preempt_at <= until && (event == Event::none || preempt_at <= next)) {
        stop_pod(pod, preempt_at, "Outbid");
        ++pod.preemptions;
        return;
      }
    }
    if (event == Event::none || next > until) return;
    switch (event) {
      case Event::start:
        pod.container_started_at = next;
        pod.cycle_started_at = next;
        ++pod.container_starts;
        add_log(pod, next, "system", "start container");
        break;
      case Event::line:
        add_log(pod, next, "container", l.lines[pod.next_line]);
        ++pod.next_line;
        break;
      case Event::exit:
        if (l.on_exit == OnExit::stop_pod) {
          // The training program stops its own pod, as DESIGN.md section 6 asks.
          stop_pod(pod, next, "Exited by user");
        } else {
          // The container exited without stopping the pod: RunPod starts it again.
          add_log(pod, next, "system", "container exited with code 0");
          pod.cycle_started_at = next + l.restart_delay_seconds;
          pod.next_line = 0;
          ++pod.container_starts;
          add_log(pod, *pod.cycle_started_at, "system", "start container");
        }
        break;
      case Event::none:
        break;
    }
  }
}

std::string Core::rest_status(const Pod& pod, double t) const {
  if (pod.terminated_at) return "TERMINATED";
  if (!pod.running) return "EXITED";
  if (pod.created_at == pod.run_started_at &&
      t < pod.run_started_at + script_.lifecycle.provision_seconds) {
    return "PROVISIONING";
  }
  return "RUNNING";
}

bool Core::has_runtime(const Pod& pod, double t) const {
  return pod.running && !pod.terminated_at && pod.cycle_started_at && *pod.cycle_started_at <= t;
}

double Core::cost_per_hr(const Pod& pod) const {
  if (!pod.running || pod.terminated_at) return 0.0;  // RunPod reports 0.0 once EXITED
  return (pod.spot ? pod.bid_per_gpu : pod.price_per_gpu) * pod.gpu_count;
}

Json Core::rest_pod(const Pod& pod, double t) const {
  const auto status = rest_status(pod, t);
  Json actions = Json::array();
  if (status == "RUNNING") {
    actions = {"stop", "restart", "terminate"};
  } else if (status == "EXITED" || status == "ERROR") {
    actions = {"start", "terminate"};
  } else if (status == "PROVISIONING" || status == "STARTING") {
    actions = {"stop", "terminate"};
  }
  Json runtime = nullptr;
  if (has_runtime(pod, t)) {
    runtime = Json{{"uptime", static_cast<std::int64_t>(t - *pod.cycle_started_at)},
                   {"gpus", Json::array()},
                   {"cpu", {{"util", 12}}},
                   {"memory", {{"util", 30}}},
                   {"ports", runtime_ports(pod.ports, std::hash<std::string>{}(pod.id))}};
    for (int i = 0; i < pod.gpu_count; ++i) {
      runtime["gpus"].push_back({{"util", 95}, {"memoryUtil", 60}});
    }
  }
  Json ssh = {{"proxy",
               {{"host", "ssh.runpod.io"},
                {"port", 22},
                {"username", pod.id + "-sim"},
                {"command", "ssh " + pod.id + "-sim@ssh.runpod.io"}}},
              {"direct", nullptr}};
  return Json{{"id", pod.id},
              {"name", pod.name},
              {"image", pod.image},
              {"args", pod.args},
              {"disk", pod.disk},
              {"ports", pod.ports},
              {"env", pod.env},
              {"registry", nullptr},
              {"status", status},
              {"actions", actions},
              {"mounts", pod.mounts},
              {"gpu", {{"id", pod.gpu_id}, {"count", pod.gpu_count}}},
              {"cloud", pod.cloud},
              {"dataCenterId", pod.data_center},
              {"cudaVersion", "12.8"},
              {"ssh", ssh},
              {"template", pod.template_id.empty() ? Json(nullptr) : Json(pod.template_id)},
              {"cost", cost_per_hr(pod)},
              {"locked", false},
              {"globalNetworking", {{"enabled", false}}},
              {"runtime", runtime},
              {"createdAt", iso(pod.created_at)},
              {"startedAt",
               pod.container_started_at ? Json(iso(*pod.container_started_at)) : Json(nullptr)}};
}

Json Core::rest_gpu(const GpuTypeSpec& g, bool with_availability) const {
  Json out = {{"id", g.id},
              {"name", g.name},
              {"pool", g.pool.empty() ? Json(nullptr) : Json(g.pool)},
              {"manufacturer", g.id.rfind("AMD", 0) == 0 ? "AMD" : "NVIDIA"},
              {"memory", g.memory_gb},
              {"secure", g.secure_price > 0},
              {"community", g.community_price > 0},
              {"price", {{"secure", g.secure_price}, {"community", g.community_price}}},
              {"maxCount", {{"secure", g.max_count}, {"community", g.max_count}}}};
  if (with_availability) {
    out["availability"] = g.capacity ? "HIGH" : "NONE";
    out["dataCenters"] = Json::array(
        {{{"id", "SIM-LOCAL-1"}, {"name", "Simulator"}, {"availability", out["availability"]}}});
  }
  return out;
}

Outcome Core::handle(const IncomingRequest& request) {
  Lock lock(mutex_);
  const auto q = request.target.find('?');
  const auto path = request.target.substr(0, q);
  const auto query = parse_query(q == std::string::npos ? "" : request.target.substr(q + 1));
  const bool has_auth = request.headers.contains("authorization");

  if (path == "/__sim/state" && request.method == "GET") {
    Outcome out;
    out.body = state_locked().dump();
    return out;
  }

  // Route key: the OpenAPI path template, so counts and faults name routes, not pod ids.
  std::string route = request.method + " " + path;
  static const std::regex pod_path(R"(^/v2/pods/([^/]+)(/logs|/action)?$)");
  static const std::regex gpu_path(R"(^/v2/catalog/gpus/([^/]+)$)");
  std::smatch match;
  if (std::regex_match(path, match, pod_path)) {
    route = request.method + " /v2/pods/{id}" + match[2].str();
  } else if (std::regex_match(path, match, gpu_path)) {
    route = request.method + " /v2/catalog/gpus/{id}";
  }
  // Bounded so a long-running `podflow runpod-sim` does not grow without limit.
  if (requests_.size() >= kMaxRecordedRequests) {
    requests_.erase(requests_.begin());
    ++requests_dropped_;
  }
  requests_.push_back(Json{{"method", request.method},
                           {"path", redact_target(request.target)},
                           {"route", route},
                           {"authorization", has_auth},
                           {"at", iso(now())}});
  ++route_counts_[route];
  ++request_count_;

  const bool graphql = path == "/graphql";
  auto key = std::string();
  if (has_auth) {
    const auto& value = request.headers.at("authorization");
    if (value.rfind("Bearer ", 0) == 0) key = value.substr(7);
  } else if (graphql && query.contains("api_key")) {
    key = query.at("api_key");  // GraphQL still accepts ?api_key= (reference notes 1.1)
  }
  if (key != api_key_) {
    if (graphql) {
      Outcome out;
      out.status = 401;
      out.body = Json{{"errors", {{{"message", "Unauthorized"}}}}}.dump();
      return out;
    }
    return problem(401, key.empty() ? "missing bearer token" : "invalid bearer token");
  }

  if (script_.rate_limit_every > 0 && request_count_ % script_.rate_limit_every == 0) {
    ++rate_limited_;
    auto out = problem(429, "rate limit exceeded for the minute window");
    out.headers.emplace_back("Retry-After", std::to_string(script_.retry_after_seconds));
    out.headers.emplace_back("RateLimit",
                             "\"minute\";r=0;t=" + std::to_string(script_.retry_after_seconds));
    out.headers.emplace_back("RateLimit-Policy", "\"minute\";q=60;w=60");
    return out;
  }

  const FaultSpec* fault = nullptr;
  for (std::size_t i = 0; i < script_.faults.size(); ++i) {
    const auto& f = script_.faults[i];
    if (f.route != route) continue;
    auto& counter = fault_counters_[i];
    ++counter.matched;
    if (counter.matched <= f.skip) continue;
    if (f.times >= 0 && counter.applied >= f.times) continue;
    ++counter.applied;
    fault = &f;
    break;
  }
  if (fault && fault->status != 0 && !fault->after_handling) {
    auto out = problem(fault->status, "Something went wrong.");
    out.delay_ms = fault->delay_ms;
    return out;
  }

  Outcome out = graphql ? handle_graphql(request, route) : route_rest(request, path, query, route);
  if (fault) {
    out.delay_ms = fault->delay_ms;
    if (fault->status != 0) {
      // The work is done (a create made its pod) but the client sees a failure.
      const auto delay = out.delay_ms;
      out = problem(fault->status, "Something went wrong.");
      out.delay_ms = delay;
    }
  }
  return out;
}

Outcome Core::route_rest(const IncomingRequest& request, const std::string& path,
                         const std::map<std::string, std::string>& query, std::string& route) {
  const auto& m = request.method;
  const double t = now();
  if (path == "/v2/pods") {
    if (m == "POST") return create_pod_rest(request.body);
    if (m == "GET") {
      Json list = Json::array();
      for (auto& pod : pods_) {
        if (pod.terminated_at) continue;
        advance(pod, t);
        list.push_back(rest_pod(pod, t));
      }
      Outcome out;
      out.body = Json{{"pods", list}}.dump();
      return out;
    }
    auto out = problem(405, "method not allowed");
    out.headers.emplace_back("Allow", "GET, POST");
    return out;
  }
  if (path == "/v2/catalog/gpus" && m == "GET") return list_gpus(query);
  if (route == "GET /v2/catalog/gpus/{id}") {
    const auto id = path.substr(std::string("/v2/catalog/gpus/").size());
    const auto decoded = parse_query("x=" + id).at("x");
    if (const auto* g = gpu(decoded)) {
      Outcome out;
      out.body = rest_gpu(*g, false).dump();
      return out;
    }
    return problem(404, "gpu type not found");
  }
  if (path.rfind("/v2/pods/", 0) == 0) {
    auto rest = path.substr(9);
    const auto slash = rest.find('/');
    const auto id = rest.substr(0, slash);
    const auto sub = slash == std::string::npos ? "" : rest.substr(slash);
    Pod* pod = find_live(id);
    if (!pod) return problem(404, "pod not found");
    if (sub.empty() && m == "GET") {
      Outcome out;
      out.body = rest_pod(*pod, t).dump();
      return out;
    }
    if (sub.empty() && m == "DELETE") {
      stop_pod(*pod, t, "Terminated by user");
      pod->terminated_at = t;
      Outcome out;
      out.status = 204;
      return out;
    }
    if (sub == "/action" && m == "POST") return pod_action(id, request.body);
    if (sub == "/logs" && m == "GET") {
      LogStreamRequest log;
      log.pod_id = id;
      if (query.contains("source")) {
        log.source = query.at("source");
        if (log.source != "container" && log.source != "system") {
          return problem(422, "Request validation failed.",
                         Json::array({"$.source: value must be one of 'container', 'system'"}));
        }
      }
      if (query.contains("since")) log.since = query.at("since");
      std::size_t tail = 100;
      if (query.contains("tail")) {
        try {
          tail = std::stoul(query.at("tail"));
        } catch (const std::exception&) {
          return problem(422, "Request validation failed.",
                         Json::array({"$.tail: value must be an integer"}));
        }
      }
      if (request.headers.contains("last-event-id")) {
        const auto& last = request.headers.at("last-event-id");
        const auto cut = last.find('/');
        if (cut != std::string::npos) {
          try {
            log.after_seq = std::stoull(last.substr(cut + 1));
          } catch (const std::exception&) {
            log.after_ts = last.substr(0, cut);
          }
        } else {
          log.after_ts = last;
        }
      } else if (pod->logs.size() > tail) {
        log.after_seq = pod->logs[pod->logs.size() - tail - 1].seq;
      }
      Outcome out;
      out.stream_logs = log;
      return out;
    }
    return problem(405, "method not allowed");
  }
  return problem(404, "no route for " + m + " " + path);
}

Outcome Core::create_pod_rest(const std::string& body_text) {
  const auto body = Json::parse(body_text, nullptr, false);
  if (body.is_discarded()) return problem(400, "request body is not valid JSON");
  BodyValidator validator;
  validator.create_pod(body);
  if (!validator.errors.empty()) {
    return problem(422, "Request validation failed.", validator.errors);
  }
  if (!body.contains("gpu")) {
    return problem(400, "the simulator serves GPU pods only: set gpu.id");
  }
  const auto gpu_id = body["gpu"]["id"].get<std::string>();
  const auto* g = gpu(gpu_id);
  if (!g) return problem(400, "gpu type '" + gpu_id + "' not found");
  const auto cloud = body.value("cloud", std::string("SECURE"));
  const double price = cloud == "SECURE" ? g->secure_price : g->community_price;
  if (!g->capacity || price <= 0) return problem(400, kCapacityText);
  const int count = body["gpu"].value("count", 1);
  if (count > g->max_count) return problem(400, kCapacityText);

  const double t = now();
  Pod pod;
  pod.id = new_id();
  pod.machine_id = new_id().substr(0, 12);
  pod.name = body["name"].get<std::string>();
  pod.image = body.value("image", std::string());
  pod.args = body.value("args", std::string());
  pod.template_id = body.value("templateId", std::string());
  pod.cloud = cloud;
  pod.env = body.value("env", Json::object());
  pod.ports = body.value("ports", Json::array());
  pod.mounts = body.value("mounts", Json::object());
  pod.disk = body.value("disk", 50);
  pod.gpu_id = gpu_id;
  pod.gpu_count = count;
  pod.api = "rest";
  pod.price_per_gpu = price;
  pod.min_bid_per_gpu = cloud == "SECURE" ? g->secure_spot_price : g->community_spot_price;
  pod.created_at = t;
  start_run(pod, t);
  pods_.push_back(pod);
  Outcome out;
  out.status = 201;
  out.body = rest_pod(pods_.back(), t).dump();
  return out;
}

Outcome Core::pod_action(const std::string& id, const std::string& body_text) {
  const auto body = Json::parse(body_text, nullptr, false);
  if (body.is_discarded()) return problem(400, "request body is not valid JSON");
  Json errors = Json::array();
  if (!body.is_object()) {
    errors.push_back("$: value must be an object");
  } else {
    for (const auto& [key, v] : body.items()) {
      if (key != "action") errors.push_back("$." + key + ": property is not allowed");
    }
    if (!body.contains("action")) {
      errors.push_back("$: missing required property 'action'");
    } else if (!body["action"].is_string() ||
               (body["action"] != "start" && body["action"] != "stop" &&
                body["action"] != "restart" && body["action"] != "terminate")) {
      errors.push_back("$.action: value must be one of 'start', 'stop', 'restart', 'terminate'");
    }
  }
  if (!errors.empty()) return problem(422, "Request validation failed.", errors);
  const double t = now();
  Pod* pod = find_live(id);
  const auto action = body["action"].get<std::string>();
  const auto status = rest_status(*pod, t);
  const auto actions = rest_pod(*pod, t)["actions"];
  if (std::find(actions.begin(), actions.end(), action) == actions.end()) {
    return problem(409, "action '" + action + "' is not valid for a pod in status " + status);
  }
  if (action == "terminate") {
    stop_pod(*pod, t, "Terminated by user");
    pod->terminated_at = t;
    Outcome out;
    out.status = 204;
    return out;
  }
  if (action == "stop") {
    stop_pod(*pod, t, "Exited by user");
  } else if (action == "start") {
    if (pod->spot) {
      return problem(400, "spot pods resume with a bid (GraphQL podBidResume)");
    }
    start_run(*pod, t);
  } else if (action == "restart") {
    add_log(*pod, t, "system", "restart container");
    const auto created = pod->created_at;
    start_run(*pod, t);
    pod->created_at = created;
  }
  Outcome out;
  out.body = rest_pod(*pod, t).dump();
  return out;
}

Outcome Core::list_gpus(const std::map<std::string, std::string>& query) {
  const bool availability = query.contains("include") && query.at("include") == "AVAILABILITY";
  if (query.contains("include") && !availability) {
    return problem(422, "Request validation failed.",
                   Json::array({"$.include[0]: value must be one of 'AVAILABILITY'"}));
  }
  if (availability && !query.contains("product")) {
    return problem(400, "include=AVAILABILITY requires product");
  }
  const auto cloud = query.contains("cloud") ? query.at("cloud") : "";
  Json list = Json::array();
  for (const auto& g : script_.gpu_types) {
    if (cloud == "SECURE" && g.secure_price <= 0) continue;
    if (cloud == "COMMUNITY" && g.community_price <= 0) continue;
    list.push_back(rest_gpu(g, availability));
  }
  Outcome out;
  out.body = Json{{"gpus", list}}.dump();
  return out;
}

LogBatch Core::next_log_events(LogStreamRequest& request) {
  Lock lock(mutex_);
  LogBatch batch;
  Pod* pod = nullptr;
  for (auto& p : pods_) {
    if (p.id == request.pod_id) pod = &p;
  }
  if (!pod) {
    batch.finished = true;
    return batch;
  }
  if (!pod->terminated_at) advance(*pod, now());
  for (const auto& entry : pod->logs) {
    if (entry.seq <= request.after_seq) continue;
    const auto ts = iso(entry.at);
    request.after_seq = entry.seq;
    if (request.after_ts && ts <= *request.after_ts) continue;
    if (request.since && ts < *request.since) continue;
    if (!request.source.empty() && entry.source != request.source) continue;
    char seq[32];
    std::snprintf(seq, sizeof seq, "%012llu", static_cast<unsigned long long>(entry.seq));
    batch.text += "id: " + ts + "/" + seq + "\ndata: " +
                  Json{{"ts", ts}, {"source", entry.source}, {"line", entry.line}}.dump() + "\n\n";
  }
  batch.finished = !pod->running || pod->terminated_at.has_value();
  return batch;
}

Json Core::state() {
  Lock lock(mutex_);
  return state_locked();
}

Json Core::state_locked() {
  const double t = now();
  Json pods = Json::array();
  for (auto& pod : pods_) {
    // Reporting advances the lifecycle, so "no pod left running" reflects the current time.
    if (!pod.terminated_at) advance(pod, t);
    pods.push_back(Json{
        {"id", pod.id},
        {"name", pod.name},
        {"status", rest_status(pod, t)},
        {"desiredStatus", pod.terminated_at ? "TERMINATED" : (pod.running ? "RUNNING" : "EXITED")},
        {"lastStatusChange", pod.last_status_change},
        {"api", pod.api},
        {"gpu", {{"id", pod.gpu_id}, {"count", pod.gpu_count}}},
        {"cloud", pod.cloud},
        {"pricing", pod.spot ? "spot" : "on_demand"},
        {"bidPerGpu", pod.spot ? Json(pod.bid_per_gpu) : Json(nullptr)},
        {"pricePerGpu", pod.price_per_gpu},
        {"costPerHr", cost_per_hr(pod)},
        {"containerStarts", pod.container_starts},
        {"preemptions", pod.preemptions},
        {"logLines", pod.logs.size()},
        {"createdAt", iso(pod.created_at)},
        {"terminatedAt", pod.terminated_at ? Json(iso(*pod.terminated_at)) : Json(nullptr)}});
  }
  Json counts = Json::object();
  for (const auto& [route, n] : route_counts_) counts[route] = n;
  return Json{{"time_scale", script_.time_scale},
              {"now", iso(t)},
              {"pods", pods},
              {"request_counts", counts},
              {"rate_limited", rate_limited_},
              {"requests", requests_},
              {"requests_dropped", requests_dropped_}};
}

}  // namespace podflow::runpod_sim
