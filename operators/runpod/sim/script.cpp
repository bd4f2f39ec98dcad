// Script parsing with defaults: a missing key keeps the default, a wrong key or type is an error.
#include "script.hpp"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "podflow/operators/runpod_sim.hpp"

namespace podflow::runpod_sim {
namespace {

std::vector<GpuTypeSpec> default_gpu_types() {
  // Prices are illustrative defaults, not quotes; scripts set their own.
  return {
      {"NVIDIA GeForce RTX 4090", "RTX 4090", "ADA_24", 24, 0.69, 0.34, 0.35, 0.20, 8, true},
      {"NVIDIA RTX A4000", "RTX A4000", "AMPERE_16", 16, 0.25, 0.17, 0.12, 0.09, 8, true},
      {"NVIDIA A100-SXM4-80GB", "A100 SXM", "AMPERE_80", 80, 1.49, 1.19, 0.80, 0.60, 8, true},
      {"NVIDIA H100 80GB HBM3", "H100 SXM", "HOPPER_80", 80, 2.69, 2.29, 1.50, 1.25, 8, true},
  };
}

std::vector<std::string> default_lines() {
  return {"podflow.metric name=loss value=0.9 step=1", "podflow.metric name=loss value=0.5 step=2",
          "podflow.done status=ok exit=0"};
}

class Reader {
 public:
  std::string error;

  void keys(const Json& obj, const std::string& where, std::set<std::string> allowed) {
    if (!error.empty()) return;
    if (!obj.is_object()) {
      error = where + ": must be a mapping";
      return;
    }
    for (const auto& [key, value] : obj.items()) {
      if (!allowed.contains(key)) {
        error = where + ": unknown key '" + key + "'";
        return;
      }
    }
  }
  void number(const Json& obj, const char* key, double& out, const std::string& where) {
    if (!error.empty() || !obj.contains(key)) return;
    if (!obj[key].is_number() || obj[key].get<double>() < 0) {
      error = where + "." + key + ": must be a number >= 0";
      return;
    }
    out = obj[key].get<double>();
  }
  void integer(const Json& obj, const char* key, std::int64_t& out, const std::string& where) {
    if (!error.empty() || !obj.contains(key)) return;
    if (!obj[key].is_number_integer() || obj[key].get<std::int64_t>() < 0) {
      error = where + "." + key + ": must be an integer >= 0";
      return;
    }
    out = obj[key].get<std::int64_t>();
  }
  void text(const Json& obj, const char* key, std::string& out, const std::string& where) {
    if (!error.empty() || !obj.contains(key)) return;
    if (!obj[key].is_string()) {
      error = where + "." + key + ": must be a string";
      return;
    }
    out = obj[key].get<std::string>();
  }
  void flag(const Json& obj, const char* key, bool& out, const std::string& where) {
    if (!error.empty() || !obj.contains(key)) return;
    if (!obj[key].is_boolean()) {
      error = where + "." + key + ": must be true or false";
      return;
    }
    out = obj[key].get<bool>();
  }
};

Json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& item : node) out[item.first.as<std::string>()] = yaml_to_json(item.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const auto& item : node) out.push_back(yaml_to_json(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const auto& text = node.Scalar();
      if (node.Tag() == "!") return text;  // quoted: always a string
      if (text == "true") return true;
      if (text == "false") return false;
      if (text == "null" || text == "~") return nullptr;
      std::int64_t integer = 0;
      if (YAML::convert<std::int64_t>::decode(node, integer) &&
          text.find_first_of(".eE") == std::string::npos) {
        return integer;
      }
      double number = 0;
      if (YAML::convert<double>::decode(node, number)) return number;
      return text;
    }
    default:
      return nullptr;
  }
}

}  // namespace

std::optional<std::string> parse_script(const Json& json, Script& out) {
  out = Script{};
  out.gpu_types = default_gpu_types();
  out.lifecycle.lines = default_lines();
  if (json.is_null()) return std::nullopt;
  Reader r;
  r.keys(json, "script", {"time_scale", "gpu_types", "pod", "rate_limit", "faults"});
  r.number(json, "time_scale", out.time_scale, "script");
  if (r.error.empty() && out.time_scale <= 0) r.error = "script.time_scale: must be > 0";
  if (r.error.empty() && json.contains("gpu_types")) {
    out.gpu_types.clear();
    if (!json["gpu_types"].is_array()) r.error = "script.gpu_types: must be a list";
    for (std::size_t i = 0; r.error.empty() && i < json["gpu_types"].size(); ++i) {
      const auto& g = json["gpu_types"][i];
      const auto where = "script.gpu_types[" + std::to_string(i) + "]";
      r.keys(g, where,
             {"id", "name", "pool", "memory_gb", "price", "spot_price", "max_count", "capacity"});
      GpuTypeSpec spec;
      r.text(g, "id", spec.id, where);
      if (r.error.empty() && spec.id.empty()) r.error = where + ".id: required";
      spec.name = spec.id;
      r.text(g, "name", spec.name, where);
      r.text(g, "pool", spec.pool, where);
      std::int64_t memory = spec.memory_gb, max_count = spec.max_count;
      r.integer(g, "memory_gb", memory, where);
      r.integer(g, "max_count", max_count, where);
      spec.memory_gb = static_cast<int>(memory);
      spec.max_count = static_cast<int>(max_count);
      for (const char* key : {"price", "spot_price"}) {
        if (!r.error.empty() || !g.contains(key)) continue;
        r.keys(g[key], where + "." + key, {"secure", "community"});
        const bool spot = std::string(key) == "spot_price";
        r.number(g[key], "secure", spot ? spec.secure_spot_price : spec.secure_price,
                 where + "." + key);
        r.number(g[key], "community", spot ? spec.community_spot_price : spec.community_price,
                 where + "." + key);
      }
      r.flag(g, "capacity", spec.capacity, where);
      out.gpu_types.push_back(spec);
    }
  }
  if (r.error.empty() && json.contains("pod")) {
    const auto& p = json["pod"];
    r.keys(p, "script.pod",
           {"provision_seconds", "start_seconds", "line_interval_seconds", "run_seconds",
            "restart_delay_seconds", "on_exit", "preempt_after_seconds", "preempt_times", "lines"});
    auto& l = out.lifecycle;
    r.number(p, "provision_seconds", l.provision_seconds, "script.pod");
    r.number(p, "start_seconds", l.start_seconds, "script.pod");
    r.number(p, "line_interval_seconds", l.line_interval_seconds, "script.pod");
    r.number(p, "run_seconds", l.run_seconds, "script.pod");
    r.number(p, "restart_delay_seconds", l.restart_delay_seconds, "script.pod");
    if (r.error.empty() && p.contains("preempt_after_seconds") &&
        !p["preempt_after_seconds"].is_null()) {
      double after = 0;
      r.number(p, "preempt_after_seconds", after, "script.pod");
      l.preempt_after_seconds = after;
    }
    if (r.error.empty() && p.contains("preempt_times")) {
      double times = 0;
      r.number(p, "preempt_times", times, "script.pod");
      if (r.error.empty() &&
          (times < 0 || times != static_cast<double>(static_cast<std::int64_t>(times)))) {
        r.error = "script.pod.preempt_times: must be a whole number >= 0";
      }
      l.preempt_times = static_cast<std::int64_t>(times);
    }
    std::string on_exit = "stop_pod";
    r.text(p, "on_exit", on_exit, "script.pod");
    if (on_exit == "stop_pod") {
      l.on_exit = OnExit::stop_pod;
    } else if (on_exit == "restart") {
      l.on_exit = OnExit::restart;
    } else if (on_exit == "keep_running") {
      l.on_exit = OnExit::keep_running;
    } else if (r.error.empty()) {
      r.error = "script.pod.on_exit: must be stop_pod, restart or keep_running";
    }
    if (r.error.empty() && p.contains("lines")) {
      l.lines.clear();
      if (!p["lines"].is_array()) r.error = "script.pod.lines: must be a list of strings";
      for (const auto& line : p["lines"]) {
        if (!line.is_string()) {
          r.error = "script.pod.lines: must be a list of strings";
          break;
        }
        l.lines.push_back(line.get<std::string>());
      }
    }
    if (r.error.empty() && l.start_seconds < l.provision_seconds) {
      r.error = "script.pod.start_seconds: must be >= provision_seconds";
    }
  }
  if (r.error.empty() && json.contains("rate_limit")) {
    r.keys(json["rate_limit"], "script.rate_limit", {"every", "retry_after_seconds"});
    r.integer(json["rate_limit"], "every", out.rate_limit_every, "script.rate_limit");
    r.integer(json["rate_limit"], "retry_after_seconds", out.retry_after_seconds,
              "script.rate_limit");
  }
  if (r.error.empty() && json.contains("faults")) {
    if (!json["faults"].is_array()) r.error = "script.faults: must be a list";
    for (std::size_t i = 0; r.error.empty() && i < json["faults"].size(); ++i) {
      const auto& f = json["faults"][i];
      const auto where = "script.faults[" + std::to_string(i) + "]";
      r.keys(f, where, {"route", "status", "delay_ms", "skip", "times", "after_handling"});
      FaultSpec spec;
      r.text(f, "route", spec.route, where);
      std::int64_t status = 0;
      r.integer(f, "status", status, where);
      spec.status = static_cast<unsigned>(status);
      r.integer(f, "delay_ms", spec.delay_ms, where);
      r.integer(f, "skip", spec.skip, where);
      if (r.error.empty() && f.contains("times")) r.integer(f, "times", spec.times, where);
      r.flag(f, "after_handling", spec.after_handling, where);
      if (r.error.empty() && spec.route.empty()) r.error = where + ".route: required";
      if (r.error.empty() && status != 0 && (status < 400 || status > 599)) {
        r.error = where + ".status: must be 400..599";
      }
      out.faults.push_back(spec);
    }
  }
  if (!r.error.empty()) return r.error;
  return std::nullopt;
}

std::string validate_script(const Json& script) {
  Script parsed;
  return parse_script(script, parsed).value_or("");
}

ScriptLoad load_script_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return {nullptr, path.string() + ": cannot open the script file"};
  std::stringstream text;
  text << in.rdbuf();
  try {
    const auto node = YAML::Load(text.str());
    auto json = yaml_to_json(node);
    if (auto error = validate_script(json); !error.empty()) {
      return {nullptr, path.string() + ": " + error};
    }
    return {std::move(json), ""};
  } catch (const YAML::Exception& e) {
    return {nullptr, path.string() + ":" + std::to_string(e.mark.line + 1) + ":" +
                         std::to_string(e.mark.column + 1) + ": " + e.msg};
  }
}

}  // namespace podflow::runpod_sim
