// Template parsing and rendering: what a string becomes once a run's values are known.
#include "podflow/engine/template.hpp"

#include <doctest/doctest.h>

using namespace podflow::engine;
using podflow::Json;

namespace {

ParsedTemplate parsed(std::string_view text) {
  auto result = parse_template(text);
  REQUIRE_MESSAGE(std::holds_alternative<ParsedTemplate>(result),
                  std::get<TemplateParseError>(result).message);
  return std::get<ParsedTemplate>(std::move(result));
}

TemplateParseError parse_error(std::string_view text) {
  auto result = parse_template(text);
  REQUIRE(std::holds_alternative<TemplateParseError>(result));
  return std::get<TemplateParseError>(std::move(result));
}

TemplateScope scope() {
  TemplateScope s;
  s.params = Json{{"batch_size", 16}, {"lr", 5e-5}, {"name", "llama"}, {"tags", {"a", "b"}}};
  s.run = Json{{"id", "run-7"}, {"logical_date", "2026-03-29T01:00:00Z"}, {"workflow", "train"}};
  s.task_outputs["create"] = Json{{"pod_id", "pod-42"}, {"info", {{"gpu", "A100"}, {"n", 2}}}};
  s.env["HF_TOKEN"] = "hf_x";
  return s;
}

Json rendered(const Json& value) {
  auto result = render(value, scope());
  REQUIRE_MESSAGE(std::holds_alternative<Json>(result), std::get<TaskError>(result).message);
  return std::get<Json>(std::move(result));
}

TaskError render_error(const Json& value) {
  auto result = render(value, scope());
  REQUIRE(std::holds_alternative<TaskError>(result));
  return std::get<TaskError>(std::move(result));
}

}  // namespace

TEST_CASE("Template.plain_text_is_one_literal_part" * doctest::timeout(5)) {
  const auto t = parsed("echo hello }} world");
  REQUIRE(t.parts.size() == 1);
  CHECK(t.parts[0].literal == "echo hello }} world");
  CHECK_FALSE(t.has_refs());
  CHECK_FALSE(t.whole_value());
}

TEST_CASE("Template.parses_each_scope" * doctest::timeout(5)) {
  const auto t = parsed(
      "{{params.x}}-{{ run.logical_date }}/{{  tasks.a.outputs.info.gpu.name }}{{ env.HOME }}");
  REQUIRE(t.parts.size() == 6);
  CHECK(t.parts[0].ref->scope == TemplateRef::Scope::params);
  CHECK(t.parts[0].ref->name == "x");
  CHECK(t.parts[0].ref->offset == 0);
  CHECK(t.parts[1].literal == "-");
  CHECK(t.parts[2].ref->scope == TemplateRef::Scope::run);
  CHECK(t.parts[2].ref->name == "logical_date");
  CHECK(t.parts[2].ref->offset == 13);
  CHECK(t.parts[3].literal == "/");
  // The last two references sit next to each other with no literal in between.
  const auto t2 = parsed("{{ tasks.a.outputs.info.gpu.name }}{{ env.HOME }}");
  REQUIRE(t2.parts.size() == 2);
  const TemplateRef& task = *t2.parts[0].ref;
  CHECK(task.scope == TemplateRef::Scope::tasks);
  CHECK(task.name == "a");
  CHECK(task.output == "info");
  CHECK(task.path == std::vector<std::string>{"gpu", "name"});
  CHECK(t2.parts[1].ref->scope == TemplateRef::Scope::env);
  CHECK(t2.parts[1].ref->name == "HOME");
  CHECK(t.has_refs());
  CHECK_FALSE(t.whole_value());
}

TEST_CASE("Template.whole_value_allows_whitespace_inside_braces_only" * doctest::timeout(5)) {
  CHECK(parsed("{{ params.x }}").whole_value());
  CHECK(parsed("{{params.x}}").whole_value());
  CHECK_FALSE(parsed(" {{ params.x }}").whole_value());
  CHECK_FALSE(parsed("{{ params.x }}{{ params.y }}").whole_value());
}

TEST_CASE("Template.escape_is_literal_text" * doctest::timeout(5)) {
  const auto t = parsed("{{ '{{' }} RUNPOD_SECRET_x }}");
  CHECK_FALSE(t.has_refs());
  CHECK_FALSE(t.whole_value());
  CHECK(rendered("{{ '{{' }} RUNPOD_SECRET_x }}") == "{{ RUNPOD_SECRET_x }}");
  CHECK(rendered("{{ \"}}\" }}") == "}}");
}

TEST_CASE("Template.parse_errors_name_the_problem_and_offset" * doctest::timeout(5)) {
  auto e = parse_error("echo {{ params.x");
  CHECK(e.offset == 5);
  CHECK(e.message.find("unterminated '{{'") == 0);
  e = parse_error("a {{ secrets.key }}");
  CHECK(e.offset == 2);
  CHECK(e.message ==
        "unknown scope 'secrets' in '{{ secrets.key }}' (use params, run, tasks or env)");
  CHECK(parse_error("{{ params.a.b }}").message ==
        "bad path '{{ params.a.b }}': expected {{ params.NAME }}");
  CHECK(parse_error("{{ tasks.a.pod_id }}").message ==
        "bad path '{{ tasks.a.pod_id }}': expected {{ tasks.ID.outputs.KEY }}");
  CHECK(parse_error("{{ run.when }}").message ==
        "unknown run field 'when' in '{{ run.when }}' (run has id, logical_date, workflow)");
  CHECK(parse_error("{{ params.a b }}").message.find("unexpected character ' '") !=
        std::string::npos);
  CHECK(parse_error("{{ 'open }}").message == "unterminated string literal in '{{ 'open }}'");
  CHECK(parse_error("{{}}").message.find("empty template") == 0);
}

TEST_CASE("Template.whole_value_keeps_json_type" * doctest::timeout(5)) {
  CHECK(rendered("{{ params.batch_size }}") == Json(16));
  CHECK(rendered("{{ params.lr }}") == Json(5e-5));
  CHECK(rendered("{{ params.tags }}") == Json::array({"a", "b"}));
  CHECK(rendered("{{ tasks.create.outputs.info }}") == Json{{"gpu", "A100"}, {"n", 2}});
  CHECK(rendered("{{ tasks.create.outputs.info.n }}") == Json(2));
}

TEST_CASE("Template.mixed_text_renders_values_into_text" * doctest::timeout(5)) {
  CHECK(rendered("bs={{ params.batch_size }} name={{ params.name }}") == "bs=16 name=llama");
  CHECK(rendered("tags={{ params.tags }}") == "tags=[\"a\",\"b\"]");
  CHECK(rendered("{{ run.id }}@{{ run.workflow }} {{ run.logical_date }}") ==
        "run-7@train 2026-03-29T01:00:00Z");
  CHECK(rendered("token {{ env.HF_TOKEN }}") == "token hf_x");
}

TEST_CASE("Template.render_walks_arrays_and_objects" * doctest::timeout(5)) {
  const Json in = {{"pod", "{{ tasks.create.outputs.pod_id }}"},
                   {"list", {"{{ params.batch_size }}", 3, true, nullptr}},
                   {"nested", {{"gpu", "gpu: {{ tasks.create.outputs.info.gpu }}"}}}};
  const Json out = rendered(in);
  CHECK(out["pod"] == "pod-42");
  CHECK(out["list"] == Json{16, 3, true, nullptr});
  CHECK(out["nested"]["gpu"] == "gpu: A100");
}

TEST_CASE("Template.missing_values_fail_with_bad_input" * doctest::timeout(5)) {
  auto e = render_error("{{ tasks.create.outputs.podid }}");
  CHECK(e.kind == ErrorKind::bad_input);
  CHECK(e.message ==
        "template {{ tasks.create.outputs.podid }}: task 'create' has no output 'podid'");
  CHECK(render_error("x {{ tasks.wait.outputs.status }}").message ==
        "template {{ tasks.wait.outputs.status }}: task 'wait' has no outputs (it has not "
        "succeeded)");
  CHECK(render_error("{{ tasks.create.outputs.info.cpu }}").message ==
        "template {{ tasks.create.outputs.info.cpu }}: output 'info' of task 'create' has no key "
        "'cpu'");
  CHECK(render_error({{"a", {"{{ params.missing }}"}}}).message ==
        "template {{ params.missing }}: param 'missing' has no value");
  CHECK(render_error("{{ env.AWS_KEY }}").message ==
        "template {{ env.AWS_KEY }}: environment variable 'AWS_KEY' is not set (or not listed in "
        "env_allow)");
  CHECK(render_error("{{ oops").kind == ErrorKind::bad_input);
}

TEST_CASE("Template.default_fills_in_what_cannot_be_resolved" * doctest::timeout(5)) {
  // A failed upstream has no outputs: an all_done reporter still renders.
  CHECK(rendered("{{ tasks.wait.outputs.final_status | default('unknown') }}") == "unknown");
  CHECK(rendered("{{ tasks.wait.outputs.cost_usd | default(0) }}") == Json(0));
  CHECK(rendered("{{ tasks.wait.outputs.x|default(null) }}") == Json(nullptr));
  CHECK(rendered("status={{ tasks.wait.outputs.final_status | default(\"n/a\") }}") ==
        "status=n/a");
  // A value that resolves ignores its default and keeps its type.
  CHECK(rendered("{{ params.batch_size | default(1) }}") == Json(16));
  CHECK(rendered("{{ tasks.create.outputs.pod_id | default('|') }}") == "pod-42");
  CHECK(parsed("{{ params.lr | default(0.1) }}").parts[0].ref->fallback == Json(0.1));
}

TEST_CASE("Template.bad_filters_are_parse_errors" * doctest::timeout(5)) {
  CHECK(parse_error("{{ params.lr | upper }}").message ==
        "unknown filter 'upper' in '{{ params.lr | upper }}'; the one filter is default(VALUE), "
        "VALUE a quoted string, a number, true, false or null");
  CHECK(
      parse_error("{{ params.lr | default([1]) }}").message.starts_with("bad default value '[1]'"));
  CHECK(parse_error("{{ params.lr | default(oops) }}")
            .message.starts_with("bad default value 'oops'"));
  CHECK(parse_error("{{ 'x' | default('y') }}").message ==
        "a literal needs no default in '{{ 'x' | default('y') }}'");
}
