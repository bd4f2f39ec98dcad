// Loader behaviour seen by a user: what a valid file becomes, which errors a bad one reports, and
// how
// --param values are read.
#include "podflow/engine/loader.hpp"

#include <doctest/doctest.h>

#include <string>

#include "fake_operators.hpp"

using namespace podflow::engine;
using podflow::Json;
using namespace std::chrono_literals;

namespace {

const OperatorRegistry& registry() {
  static const OperatorRegistry instance = podflow::engine::testing::fake_registry();
  return instance;
}

Workflow load_ok(const std::string& text, const std::string& path = "workflows/test.yaml") {
  auto result = load_workflow_text(text, path, registry());
  if (auto* diagnostics = std::get_if<std::vector<Diagnostic>>(&result)) {
    std::string all;
    for (const auto& d : *diagnostics) all += d.to_string() + "\n";
    FAIL("unexpected diagnostics:\n" << all);
  }
  return std::get<Workflow>(std::move(result));
}

std::vector<std::string> load_errors(const std::string& text) {
  auto result = load_workflow_text(text, "w.yaml", registry());
  std::vector<std::string> out;
  if (auto* diagnostics = std::get_if<std::vector<Diagnostic>>(&result)) {
    for (const auto& d : *diagnostics) out.push_back(d.to_string());
  }
  return out;
}

ParamSpec param(std::string name, ValueType type) {
  ParamSpec spec;
  spec.name = std::move(name);
  spec.type = type;
  return spec;
}

constexpr const char* kFull = R"(name: fake_training
description: Train on a fake GPU.
timezone: UTC
catchup: all
overlap: queue
max_active_runs: 3
timeout: 12h
env_allow: [HF_TOKEN]
params:
  learning_rate: {type: number, default: 5.0e-5}
  batch_size: {type: integer, default: 16, minimum: 1, maximum: 512, description: per GPU}
  image: {type: string, secret: true}
  mode: {type: string, default: fast, enum: [fast, slow]}
  wait: {type: duration, default: 90}
defaults:
  retries: 2
  retry_delay: 30s
  retry_backoff: 3
  max_retry_delay: 10m
  retry_on: [network, capacity]
  timeout: 1h
  trigger_rule: all_done
on_failure: [notify]
on_success: [notify]
tasks:
  trigger:
    operator: fake.create
    pool: gpu
    description: make a pod
    with:
      image: "{{ params.image }}"
      gpu_count: "{{ params.batch_size }}"
      labels: {quoted: "16", plain: 16, float: 1.5, yes_text: yes, flag: true, nothing: null}
  monitor:
    operator: fake.wait
    depends: [trigger]
    timeout: 8h
    retries: 0
    retry_delay: 45
    retry_backoff: 1
    max_retry_delay: 1h30m
    retry_on: [timeout]
    trigger_rule: all_success
    with:
      pod_id: "{{ tasks.trigger.outputs.pod_id }}"
  notify:
    operator: noop
)";

}  // namespace

TEST_CASE("Loader.full_workflow_loads_every_field" * doctest::timeout(10)) {
  const Workflow wf = load_ok(kFull);
  CHECK(wf.name == "fake_training");
  CHECK(wf.description == "Train on a fake GPU.");
  CHECK(wf.timezone == "UTC");
  CHECK(wf.catchup == Catchup::all);
  CHECK(wf.overlap == Overlap::queue);
  CHECK(wf.max_active_runs == 3);
  CHECK(wf.timeout == Millis(12h));
  CHECK(wf.env_allow == std::vector<std::string>{"HF_TOKEN"});
  CHECK(wf.on_failure == std::vector<std::string>{"notify"});
  CHECK(wf.on_success == std::vector<std::string>{"notify"});
  CHECK(wf.source_text == kFull);
  CHECK(wf.source_path == "workflows/test.yaml");

  REQUIRE(wf.params.size() == 5);
  const ParamSpec* lr = wf.find_param("learning_rate");
  REQUIRE(lr);
  CHECK(lr->type == ValueType::number);
  CHECK(*lr->default_value == Json(5.0e-5));
  const ParamSpec* batch = wf.find_param("batch_size");
  REQUIRE(batch);
  CHECK(*batch->default_value == Json(16));
  CHECK(batch->minimum == 1.0);
  CHECK(batch->maximum == 512.0);
  CHECK(batch->description == "per GPU");
  CHECK(batch->pos.line == 11);
  const ParamSpec* image = wf.find_param("image");
  CHECK(image->secret);
  CHECK_FALSE(image->default_value.has_value());  // required at run time
  CHECK(wf.find_param("mode")->allowed == std::vector<Json>{"fast", "slow"});
  CHECK(*wf.find_param("wait")->default_value == Json("1m30s"));

  REQUIRE(wf.tasks.size() == 3);
  const TaskSpec& trigger = wf.tasks[0];
  CHECK(trigger.id == "trigger");
  CHECK(trigger.operator_name == "fake.create");
  REQUIRE(trigger.op);
  CHECK(trigger.op->name() == "fake.create");
  CHECK(trigger.pool == "gpu");
  CHECK(trigger.description == "make a pod");
  CHECK(trigger.pos.file == "workflows/test.yaml");
  CHECK(trigger.pos.line == 26);
  CHECK(trigger.pos.column == 3);
  // Defaults block applied to a task that sets nothing itself.
  CHECK(trigger.retry.retries == 2);
  CHECK(trigger.retry.retry_delay == Millis(30s));
  CHECK(trigger.retry.retry_backoff == 3.0);
  CHECK(trigger.retry.max_retry_delay == Millis(10min));
  CHECK(trigger.retry.retry_on == std::vector<ErrorKind>{ErrorKind::network, ErrorKind::capacity});
  CHECK(trigger.timeout == Millis(1h));
  CHECK(trigger.trigger_rule == TriggerRule::all_done);
  // Arguments as JSON, templates unrendered, schema defaults filled in.
  CHECK(trigger.with["image"] == "{{ params.image }}");
  CHECK(trigger.with["gpu_count"] == "{{ params.batch_size }}");
  CHECK(trigger.with["spot"] == false);
  CHECK(trigger.with["ready_timeout"] == "10m");
  CHECK_FALSE(trigger.with.contains("max_price"));
  const Json& labels = trigger.with["labels"];
  CHECK(labels["quoted"] == "16");
  CHECK(labels["plain"] == 16);
  CHECK(labels["float"] == 1.5);
  CHECK(labels["yes_text"] == "yes");
  CHECK(labels["flag"] == true);
  CHECK(labels["nothing"].is_null());

  // A task's own settings win over the defaults block.
  const TaskSpec& monitor = wf.tasks[1];
  CHECK(monitor.depends == std::vector<std::string>{"trigger"});
  CHECK(monitor.timeout == Millis(8h));
  CHECK(monitor.retry.retries == 0);
  CHECK(monitor.retry.retry_delay == Millis(45s));
  CHECK(monitor.retry.retry_backoff == 1.0);
  CHECK(monitor.retry.max_retry_delay == Millis(90min));
  CHECK(monitor.retry.retry_on == std::vector<ErrorKind>{ErrorKind::timeout});
  CHECK(monitor.trigger_rule == TriggerRule::all_success);
  CHECK(monitor.with["pod_id"] == "{{ tasks.trigger.outputs.pod_id }}");
  CHECK(wf.tasks[2].with == Json::object());
}

TEST_CASE("Loader.minimal_workflow_takes_name_from_file_and_built_in_defaults" *
          doctest::timeout(10)) {
  const Workflow wf = load_ok("tasks:\n  only:\n    operator: noop\n", "dir/nightly-report.yaml");
  CHECK(wf.name == "nightly-report");
  CHECK(wf.schedule.empty());
  CHECK(wf.timezone == "UTC");
  CHECK(wf.catchup == Catchup::latest);
  CHECK(wf.overlap == Overlap::skip);
  CHECK(wf.max_active_runs == 1);
  CHECK_FALSE(wf.timeout.has_value());
  REQUIRE(wf.tasks.size() == 1);
  CHECK(wf.tasks[0].retry.retries == 0);
  CHECK(wf.tasks[0].retry.retry_delay == Millis(30s));
  CHECK(wf.tasks[0].trigger_rule == TriggerRule::all_success);
  CHECK_FALSE(wf.tasks[0].timeout.has_value());
}

TEST_CASE("Loader.reports_every_error_at_once_in_file_order" * doctest::timeout(10)) {
  const auto errors = load_errors(
      "catchup: never\n"
      "tasks:\n"
      "  a:\n"
      "    operator: noop\n"
      "    retries: -1\n"
      "  b:\n"
      "    operator: shel\n"
      "    depends: [a, c]\n");
  REQUIRE(errors.size() == 4);
  CHECK(errors[0] == "w.yaml:1:10: catchup must be one of none | latest | all, got 'never'");
  CHECK(errors[1] == "w.yaml:5:14: tasks.a.retries must be 0 or more, got -1");
  CHECK(errors[2] == "w.yaml:7:15: task 'b' uses unknown operator 'shel' (did you mean 'shell'?)");
  CHECK(errors[3] == "w.yaml:8:18: task 'b' depends on unknown task 'c'");
}

TEST_CASE("Loader.template_errors_point_at_the_reference" * doctest::timeout(10)) {
  const auto errors = load_errors(
      "tasks:\n"
      "  a:\n"
      "    operator: shell\n"
      "    with:\n"
      "      command: echo {{ params.nope }}\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] ==
        "w.yaml:5:21: tasks.a.with.command reads unknown param 'nope'; declare it under params:");
}

TEST_CASE("Loader.upstream_is_transitive" * doctest::timeout(10)) {
  const Workflow wf = load_ok(
      "tasks:\n"
      "  a: {operator: fake.create, with: {image: x}}\n"
      "  b: {operator: noop, depends: [a]}\n"
      "  c: {operator: noop, depends: [b]}\n"
      "  d:\n"
      "    operator: fake.wait\n"
      "    depends: [c]\n"
      "    with: {pod_id: \"{{ tasks.a.outputs.pod_id }}\", poll: \"{{ tasks.a.outputs.cost "
      "}}\"}\n");
  CHECK(wf.tasks.size() == 4);
  const auto errors = load_errors(
      "tasks:\n"
      "  a: {operator: fake.create, with: {image: x}}\n"
      "  b: {operator: noop}\n"
      "  d:\n"
      "    operator: fake.wait\n"
      "    depends: [b]\n"
      "    with: {pod_id: \"{{ tasks.a.outputs.pod_id }}\"}\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] ==
        "w.yaml:7:21: task 'd' reads outputs of 'a', which is not upstream of it; add 'a' to "
        "depends");
}

TEST_CASE("Loader.missing_file_is_a_diagnostic" * doctest::timeout(10)) {
  auto result = load_workflow_file("/nonexistent/dir/x.yaml", registry());
  REQUIRE(std::holds_alternative<std::vector<Diagnostic>>(result));
  CHECK(std::get<std::vector<Diagnostic>>(result)[0].to_string() ==
        "/nonexistent/dir/x.yaml: cannot read the workflow file; check that it exists");
}

TEST_CASE("Loader.parse_param_value_reads_each_type" * doctest::timeout(10)) {
  using Result = std::variant<Json, std::string>;
  auto ok = [](const ParamSpec& spec, std::string_view text) {
    Result r = parse_param_value(spec, text);
    REQUIRE_MESSAGE(std::holds_alternative<Json>(r), std::get<std::string>(r));
    return std::get<Json>(r);
  };
  auto bad = [](const ParamSpec& spec, std::string_view text) {
    Result r = parse_param_value(spec, text);
    REQUIRE(std::holds_alternative<std::string>(r));
    return std::get<std::string>(r);
  };
  const ParamSpec integer = param("batch_size", ValueType::integer);
  CHECK(ok(integer, "16") == Json(16));
  CHECK(ok(integer, "-3") == Json(-3));
  CHECK(bad(integer, "abc") == "param 'batch_size' must be an integer, got 'abc'");
  CHECK(bad(integer, "1.5") == "param 'batch_size' must be an integer, got '1.5'");
  CHECK(bad(integer, "") == "param 'batch_size' must be an integer, got ''");

  const ParamSpec number = param("lr", ValueType::number);
  CHECK(ok(number, "5e-5") == Json(5e-5));
  CHECK(ok(number, "2") == Json(2.0));
  CHECK(bad(number, "nan") == "param 'lr' must be a number, got 'nan'");
  CHECK(bad(number, "1.0x") == "param 'lr' must be a number, got '1.0x'");

  const ParamSpec flag = param("dry_run", ValueType::boolean);
  CHECK(ok(flag, "true") == Json(true));
  CHECK(ok(flag, "yes") == Json(true));
  CHECK(ok(flag, "1") == Json(true));
  CHECK(ok(flag, "no") == Json(false));
  CHECK(ok(flag, "0") == Json(false));
  CHECK(ok(flag, "false") == Json(false));
  CHECK(bad(flag, "maybe") == "param 'dry_run' must be true or false, got 'maybe'");

  CHECK(ok(param("ids", ValueType::array), "[1, \"a\"]") == Json::array({1, "a"}));
  CHECK(bad(param("ids", ValueType::array), "{\"a\": 1}") ==
        "param 'ids' must be a JSON array like [1, 2], got '{\"a\": 1}'");
  CHECK(ok(param("cfg", ValueType::object), "{\"a\": 1}") == Json{{"a", 1}});
  CHECK(bad(param("cfg", ValueType::object), "{oops") ==
        "param 'cfg' must be a JSON object like {\"k\": 1}, got '{oops'");

  const ParamSpec wait = param("wait", ValueType::duration);
  CHECK(ok(wait, "90m") == Json("1h30m"));
  CHECK(ok(wait, "30") == Json("30s"));
  CHECK(bad(wait, "soon") == "param 'wait' must be a duration like 30s, 10m or 1h30m, got 'soon'");

  CHECK(ok(param("name", ValueType::string), " 16 ") == Json(" 16 "));
}

TEST_CASE("Loader.param_values_respect_minimum_maximum_and_enum" * doctest::timeout(10)) {
  ParamSpec batch = param("batch_size", ValueType::integer);
  batch.minimum = 1;
  batch.maximum = 64;
  CHECK(std::get<std::string>(parse_param_value(batch, "0")) ==
        "param 'batch_size' must be at least 1, got 0");
  CHECK(std::get<std::string>(parse_param_value(batch, "65")) ==
        "param 'batch_size' must be at most 64, got 65");
  CHECK(std::get<Json>(parse_param_value(batch, "64")) == Json(64));

  ParamSpec mode = param("mode", ValueType::string);
  mode.allowed = {"fast", "slow"};
  CHECK(std::get<std::string>(parse_param_value(mode, "medium")) ==
        "param 'mode' must be one of 'fast', 'slow', got 'medium'");
  CHECK_FALSE(check_param_value(mode, Json("fast")).has_value());
  CHECK(check_param_value(mode, Json(3)) == "param 'mode' must be a string, got 3");
  CHECK(check_param_value(batch, Json(2.5)) == "param 'batch_size' must be an integer, got 2.5");
}

TEST_CASE("Loader.refused_secret_params_never_show_their_value" * doctest::timeout(10)) {
  ParamSpec pin = param("pin", ValueType::integer);
  pin.secret = true;
  pin.minimum = 1000;
  CHECK(std::get<std::string>(parse_param_value(pin, "hunter2")) ==
        "param 'pin' must be an integer, got a value that is not shown (secret param)");
  CHECK(std::get<std::string>(parse_param_value(pin, "42")) ==
        "param 'pin' must be at least 1000, got ***");
  ParamSpec region = param("region", ValueType::string);
  region.secret = true;
  region.allowed = {"eu", "us"};
  CHECK(std::get<std::string>(parse_param_value(region, "mars-base-7")) ==
        "param 'region' must be one of 'eu', 'us', got ***");
}
