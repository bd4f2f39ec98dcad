// Tests of the RunPod client against an in-process fake RunPod on 127.0.0.1:0 that records what it
// received, with answers recorded from RunPod (tests/testdata/runpod).
#include "podflow/operators/runpod_client.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "http_test_server.hpp"
#include "operator_runner.hpp"
#include "operators/runpod/client/requests.hpp"
#include "runpod_sample_specs.hpp"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using podflow::Json;
using podflow::engine::ErrorKind;
using podflow::runpod::Client;
using podflow::runpod::Config;
using podflow::runpod::LogLine;
using podflow::runpod::LogStreamEnd;
using podflow::runpod::LogStreamOptions;
using podflow::runpod::Pod;
using podflow::runpod::PodPoller;
using podflow::runpod::PodSpec;
using podflow::runpod::Result;
using podflow::runpod::RunPodError;
using podflow::runpod::SseParser;
using podflow::testing::make_held_open_response;
using podflow::testing::make_response;
using podflow::testing::RecordedRequest;
using podflow::testing::TestHttpServer;
using podflow::testing::TestResponse;

constexpr const char* kKey = "rpa_TESTKEY0123456789secret";

std::string testdata(const std::string& name) {
  std::ifstream in("../testdata/runpod/" + name);
  REQUIRE_MESSAGE(in.good(), "missing test data " << name);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<TestResponse> json_reply(unsigned status, const std::string& body) {
  auto response =
      make_response(status, body, status < 300 ? "application/json" : "application/problem+json");
  return response;
}

Config config_for(const TestHttpServer& server, bool graphql = true) {
  Config config;
  config.rest_url = server.url("");
  config.graphql_url = graphql ? server.url("/graphql") : std::string();
  config.api_key = kKey;
  config.timeout = 5s;
  return config;
}

template <typename T>
T run(asio::awaitable<T> call) {
  return podflow::testing::run_to_completion(std::move(call));
}

// By value: callers pass the temporary result of run().
template <typename T>
RunPodError error_of(const Result<T>& result) {
  REQUIRE_MESSAGE(result.index() == 1, "expected an error");
  return std::get<RunPodError>(result);
}

template <typename T>
T value_of(const Result<T>& result) {
  if (result.index() == 1) FAIL(std::get<RunPodError>(result).message);
  return std::get<T>(result);
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

PodSpec training_spec() { return podflow::testing::full_spec(); }

}  // namespace

TEST_CASE("RunPodClient.config_reads_the_environment" * doctest::timeout(30)) {
  const std::string key_file = "runpod_key_test.txt";
  {
    std::ofstream out(key_file);
    out << "  " << kKey << "\n\n";
  }
  {
    ScopedEnv rest("RUNPOD_REST_URL", "http://127.0.0.1:9/");
    ScopedEnv graphql("RUNPOD_GRAPHQL_URL", "off");
    ScopedEnv key("RUNPOD_API_KEY", nullptr);
    ScopedEnv file("RUNPOD_API_KEY_FILE", key_file.c_str());
    auto config = podflow::runpod::config_from_env();
    REQUIRE(config.index() == 0);
    const auto& read = std::get<Config>(config);
    CHECK(read.rest_url == "http://127.0.0.1:9");
    CHECK(read.graphql_url.empty());
    CHECK(read.api_key == kKey);
  }
  {
    ScopedEnv rest("RUNPOD_REST_URL", nullptr);
    ScopedEnv graphql("RUNPOD_GRAPHQL_URL", nullptr);
    ScopedEnv key("RUNPOD_API_KEY", " k1 ");
    auto config = podflow::runpod::config_from_env();
    REQUIRE(config.index() == 0);
    CHECK(std::get<Config>(config).rest_url == "https://api.runpod.io");
    CHECK(std::get<Config>(config).graphql_url == "https://api.runpod.io/graphql");
    CHECK(std::get<Config>(config).api_key == "k1");
  }
  {
    ScopedEnv key("RUNPOD_API_KEY", nullptr);
    ScopedEnv file("RUNPOD_API_KEY_FILE", nullptr);
    auto config = podflow::runpod::config_from_env();
    REQUIRE(config.index() == 1);
    CHECK(std::get<std::string>(config).find("RUNPOD_API_KEY") != std::string::npos);
  }
  std::remove(key_file.c_str());
}

TEST_CASE("RunPodClient.create_pod_posts_the_rest_v2_body_with_the_bearer_key" *
          doctest::timeout(30)) {
  TestHttpServer server(
      [](const RecordedRequest&) { return json_reply(201, testdata("rest_pod.json")); });
  Client client(config_for(server));
  auto result = run(client.create_pod(training_spec()));
  const Pod& pod = value_of(result);
  CHECK(pod.id == "7h9k2m4n6p");
  CHECK(pod.status == "RUNNING");
  CHECK(pod.cost_per_hr == doctest::Approx(0.44));
  CHECK(pod.gpu_type_id == "NVIDIA GeForce RTX 4090");
  CHECK(pod.has_runtime);
  CHECK(pod.uptime_seconds == 3600);
  CHECK(pod.api == "rest");

  auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].target == "/v2/pods");
  CHECK(requests[0].headers["authorization"] == std::string("Bearer ") + kKey);
  CHECK(requests[0].headers["content-type"] == "application/json");
  const Json body = Json::parse(requests[0].body);
  CHECK(body["name"] == "podflow-abc-run1-train-1");
  CHECK(body["image"] == "runpod/pytorch:2.4");
  CHECK(body["gpu"] == Json{{"id", "NVIDIA RTX A4000"},
                            {"count", 2},
                            {"allowedCudaVersions", Json::array({"12.4", "12.8"})}});
  CHECK(body["cloud"] == "COMMUNITY");
  CHECK(body["dataCenterIds"] == Json::array({"EU-RO-1", "US-KS-2"}));
  CHECK(body["env"]["QUOTE"] == "say \"hi\"\n");
  CHECK(body["disk"] == 40);
  CHECK(body["mounts"]["persistent"] == Json{{"size", 20}, {"path", "/workspace"}});
  CHECK(body["ports"] == Json::array({"8888/http", "22/tcp"}));
  CHECK(body["args"] == "python train.py --epochs 3");
  CHECK(body["startSsh"] == true);
}

TEST_CASE("RunPodClient.get_list_and_find_by_name_read_recorded_payloads" * doctest::timeout(30)) {
  TestHttpServer server([](const RecordedRequest& request) -> std::optional<TestResponse> {
    if (request.target == "/v2/pods") return json_reply(200, testdata("rest_pods.json"));
    if (request.target == "/v2/pods/7h9k2m4n6p") return json_reply(200, testdata("rest_pod.json"));
    if (request.target.rfind("/v2/catalog/gpus", 0) == 0) {
      return json_reply(200, testdata("rest_gpus.json"));
    }
    return json_reply(404, testdata("rest_404.json"));
  });
  Client client(config_for(server));

  CHECK(value_of(run(client.get_pod("7h9k2m4n6p"))).name == "pytorch-training");
  CHECK(value_of(run(client.list_pods())).size() == 1);
  CHECK(value_of(run(client.list_pods(std::string("other")))).empty());
  auto found = value_of(run(client.find_pod_by_name("pytorch-training")));
  REQUIRE(found.has_value());
  CHECK(found->id == "7h9k2m4n6p");
  CHECK_FALSE(value_of(run(client.find_pod_by_name("pytorch"))).has_value());

  auto gpus = value_of(run(client.gpu_types()));
  REQUIRE(gpus.size() == 1);
  CHECK(gpus[0].id == "NVIDIA GeForce RTX 4090");
  CHECK(gpus[0].memory_gb == 24);
  CHECK(gpus[0].community_price == doctest::Approx(0.31));
  CHECK(gpus[0].availability == "HIGH");

  // An id cannot change the path.
  const auto& missing = error_of(run(client.get_pod("../pods")));
  CHECK(missing.not_found);
  CHECK(server.requests().back().target == "/v2/pods/..%2Fpods");
}

TEST_CASE("RunPodClient.rest_errors_map_to_kinds" * doctest::timeout(30)) {
  struct Case {
    unsigned status;
    std::string body;
    ErrorKind kind;
    std::string text;
    bool not_found = false;
  };
  const std::vector<Case> cases = {
      {400, testdata("rest_400_capacity.json"), ErrorKind::capacity, "no longer any instances"},
      {429, testdata("rest_429.json"), ErrorKind::rate_limited, "rate limit exceeded"},
      {401, testdata("rest_401.json"), ErrorKind::auth, "missing bearer token"},
      {403, R"({"title":"Forbidden","status":403,"detail":"access denied"})", ErrorKind::auth,
       "access denied"},
      {404, testdata("rest_404.json"), ErrorKind::client, "resource not found", true},
      {422, testdata("rest_422_validation.json"), ErrorKind::client,
       "Request validation failed. ($.action: value must be one of"},
      {400, R"({"title":"Bad Request","status":400,"detail":"disk must be at least 1"})",
       ErrorKind::client, "disk must be at least 1"},
      {500, "upstream exploded", ErrorKind::server, "upstream exploded"},
      {503, R"({"title":"Service Unavailable","status":503,"detail":"try later"})",
       ErrorKind::server, "try later"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.status);
    TestHttpServer server([&](const RecordedRequest&) {
      auto response = json_reply(c.status, c.body);
      if (c.status == 429) response->set("Retry-After", "7");
      return response;
    });
    Client client(config_for(server));
    const auto& error = error_of(run(client.create_pod(training_spec())));
    CHECK(error.kind == c.kind);
    CHECK(error.http_status == static_cast<int>(c.status));
    CHECK(error.not_found == c.not_found);
    CHECK(error.message.find("RunPod create pod podflow-abc-run1-train-1: HTTP " +
                             std::to_string(c.status)) == 0);
    CHECK(error.message.find(c.text) != std::string::npos);
    if (c.status == 429) {
      CHECK(error.retry_after == std::chrono::milliseconds(7000));
    } else {
      CHECK_FALSE(error.retry_after.has_value());
    }
  }
}

TEST_CASE("RunPodClient.graphql_errors_map_to_kinds" * doctest::timeout(30)) {
  struct Case {
    unsigned status;
    std::string body;
    ErrorKind kind;
    std::string text;
  };
  const std::vector<Case> cases = {
      {200, testdata("graphql_capacity.json"), ErrorKind::capacity, "no longer any instances"},
      {200, testdata("graphql_unauthorized.json"), ErrorKind::auth, "Unauthorized"},
      {200, testdata("graphql_parse_failed.json"), ErrorKind::server, "Something went wrong"},
      {401, "Unauthorized", ErrorKind::auth, "HTTP 401"},
      {400, R"({"errors":[{"message":"Variable \"$input\" got invalid value"}]})",
       ErrorKind::client, "HTTP 400"},
      {429, "slow down", ErrorKind::rate_limited, "HTTP 429"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.body);
    TestHttpServer server([&](const RecordedRequest&) { return json_reply(c.status, c.body); });
    Client client(config_for(server));
    const auto& error = error_of(run(client.create_spot_pod(training_spec(), 0.25)));
    CHECK(error.kind == c.kind);
    CHECK(error.message.find("RunPod create spot pod podflow-abc-run1-train-1") == 0);
    CHECK(error.message.find(c.text) != std::string::npos);
  }
}

TEST_CASE("RunPodClient.spot_create_sends_the_document_and_variables" * doctest::timeout(30)) {
  TestHttpServer server([](const RecordedRequest&) {
    return json_reply(200, testdata("graphql_spot_created.json"));
  });
  Client client(config_for(server));
  const Pod& pod = value_of(run(client.create_spot_pod(training_spec(), 0.25)));
  CHECK(pod.id == "spot123abc");
  CHECK(pod.api == "graphql");
  CHECK(pod.cost_per_hr == doctest::Approx(0.2));
  CHECK(pod.gpu_type_id == "NVIDIA RTX A4000");

  auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].target == "/graphql");
  CHECK(requests[0].headers["authorization"] == std::string("Bearer ") + kKey);
  const Json body = Json::parse(requests[0].body);
  CHECK(body["query"] == std::string(podflow::runpod::detail::kCreateSpotPodDocument));
  const Json& input = body["variables"]["input"];
  CHECK(input["bidPerGpu"] == 0.25);
  CHECK(input["gpuTypeId"] == "NVIDIA RTX A4000");
  CHECK(input["cloudType"] == "COMMUNITY");
  CHECK(input["ports"] == "8888/http,22/tcp");
  CHECK(input["terminateAfter"] == "2026-06-02T12:00:00Z");
  CHECK(input["dataCenterId"] == "EU-RO-1");  // GraphQL takes one data center
  CHECK(input["env"] == Json::array({Json{{"key", "QUOTE"}, {"value", "say \"hi\"\n"}},
                                     Json{{"key", "RUN_ID"}, {"value", "run1"}}}));
}

TEST_CASE("RunPodClient.actions_terminate_and_bid_resume" * doctest::timeout(30)) {
  TestHttpServer server([](const RecordedRequest& request) -> std::optional<TestResponse> {
    if (request.method == "DELETE" && request.target == "/v2/pods/7h9k2m4n6p") {
      return make_response(204, "");
    }
    if (request.method == "DELETE") return json_reply(404, testdata("rest_404.json"));
    if (request.target == "/v2/pods/7h9k2m4n6p/action") {
      return json_reply(200, testdata("rest_pod.json"));
    }
    if (request.target == "/graphql") {
      return json_reply(200, R"({"data":{"podBidResume":{"id":"spot1","desiredStatus":"RUNNING",
                                 "costPerHr":0.3}}})");
    }
    return json_reply(404, testdata("rest_404.json"));
  });
  Client client(config_for(server));
  CHECK(value_of(run(client.stop_pod("7h9k2m4n6p"))).id == "7h9k2m4n6p");
  CHECK(value_of(run(client.start_pod("7h9k2m4n6p"))).id == "7h9k2m4n6p");
  CHECK_FALSE(value_of(run(client.terminate_pod("7h9k2m4n6p"))).already_gone);
  CHECK(value_of(run(client.terminate_pod("gone1"))).already_gone);
  const Pod& resumed = value_of(run(client.bid_resume("spot1", 0.3, 1)));
  CHECK(resumed.status == "RUNNING");

  auto requests = server.requests();
  REQUIRE(requests.size() == 5);
  CHECK(Json::parse(requests[0].body) == Json{{"action", "stop"}});
  CHECK(Json::parse(requests[1].body) == Json{{"action", "start"}});
  CHECK(requests[2].method == "DELETE");
  const Json resume = Json::parse(requests[4].body);
  CHECK(resume["query"] == std::string(podflow::runpod::detail::kBidResumeDocument));
  CHECK(resume["variables"] == Json{{"podId", "spot1"}, {"bidPerGpu", 0.3}, {"gpuCount", 1}});
}

TEST_CASE("RunPodClient.pod_facts_degrade_with_a_warning" * doctest::timeout(30)) {
  std::string answer = testdata("graphql_pod_facts.json");
  TestHttpServer server([&](const RecordedRequest&) { return json_reply(200, answer); });
  std::vector<std::string> warnings;
  auto warn = [&](std::string_view text) { warnings.emplace_back(text); };

  Client client(config_for(server), warn);
  auto facts = value_of(run(client.pod_facts("7h9k2m4n6p")));
  CHECK(facts.machine_id == "m8xk2p");
  CHECK(facts.pod_type == "INTERRUPTABLE");
  CHECK(facts.last_status_change.rfind("Outbid:", 0) == 0);
  CHECK(facts.warning.empty());
  CHECK(Json::parse(server.requests().at(0).body)["variables"] == Json{{"podId", "7h9k2m4n6p"}});

  answer = testdata("graphql_pod_null.json");
  facts = value_of(run(client.pod_facts("7h9k2m4n6p")));
  CHECK(facts.machine_id.empty());
  CHECK(facts.warning.find("gone") != std::string::npos);

  Client without_graphql(config_for(server, /*graphql=*/false), warn);
  const auto before = server.requests().size();
  facts = value_of(run(without_graphql.pod_facts("7h9k2m4n6p")));
  CHECK(facts.warning.find("GraphQL API is off") != std::string::npos);
  CHECK(server.requests().size() == before);
  const auto& spot = error_of(run(without_graphql.create_spot_pod(training_spec(), 0.2)));
  CHECK(spot.kind == ErrorKind::bad_input);
  CHECK(spot.message.find("GraphQL") != std::string::npos);
  CHECK(warnings.size() == 2);
}

TEST_CASE("RunPodClient.network_failures_map_to_kinds" * doctest::timeout(30)) {
  SUBCASE("refused") {
    unsigned short port = 0;
    {
      TestHttpServer closed([](const RecordedRequest&) { return make_response(200, ""); });
      port = closed.port();
    }
    Config config;
    config.rest_url = "http://127.0.0.1:" + std::to_string(port);
    config.api_key = kKey;
    const auto& error = error_of(run(Client(config).get_pod("p1")));
    CHECK(error.kind == ErrorKind::network);
    CHECK(error.message.find("RunPod get pod p1 failed while connecting") == 0);
  }
  SUBCASE("silent server times out") {
    TestHttpServer server([](const RecordedRequest&) { return std::nullopt; });
    Config config = config_for(server);
    config.timeout = 300ms;
    const auto& error = error_of(run(Client(config).list_pods()));
    CHECK(error.kind == ErrorKind::timeout);
    CHECK(error.message.find("timed out after 300ms") != std::string::npos);
  }
  SUBCASE("plain http only to loopback") {
    Config config;
    config.rest_url = "http://192.0.2.1:8080";  // TEST-NET-1: never reached
    config.api_key = kKey;
    const auto& error = error_of(run(Client(config).get_pod("p1")));
    CHECK(error.kind == ErrorKind::bad_input);
    CHECK(error.message.find("only allowed to loopback") != std::string::npos);
  }
}

TEST_CASE("RunPodClient.api_key_never_in_urls_errors_or_warnings" * doctest::timeout(30)) {
  // A hostile or broken server that echoes the request headers into its error body.
  TestHttpServer server([](const RecordedRequest& request) {
    std::string echo;
    for (const auto& [name, value] : request.headers) echo += name + ": " + value + "\n";
    return json_reply(request.target == "/graphql" ? 200 : 400,
                      request.target == "/graphql"
                          ? Json{{"errors", Json::array({Json{{"message", echo}}})}}.dump()
                          : echo);
  });
  std::vector<std::string> texts;
  Client client(config_for(server), [&](std::string_view text) { texts.emplace_back(text); });
  texts.push_back(error_of(run(client.create_pod(training_spec()))).message);
  texts.push_back(error_of(run(client.get_pod("p1"))).message);
  texts.push_back(error_of(run(client.create_spot_pod(training_spec(), 0.2))).message);
  texts.push_back(
      error_of(run(client.stream_logs("p1", {}, [](const LogLine&) { return true; }))).message);
  run(client.pod_facts("p1"));
  PodSpec spec = training_spec();
  spec.terminate_after = "2026-01-01T00:00:00Z";
  run(client.create_pod(spec));
  CHECK(texts.size() >= 5);
  for (const auto& text : texts) {
    CAPTURE(text);
    CHECK(text.find(kKey) == std::string::npos);
  }
  // The echo did reach the messages, and was cut out.
  CHECK(std::any_of(texts.begin(), texts.end(), [](const std::string& text) {
    return text.find("[redacted]") != std::string::npos;
  }));
  for (const auto& request : server.requests()) {
    CHECK(request.target.find(kKey) == std::string::npos);
    CHECK(request.headers.at("authorization") == std::string("Bearer ") + kKey);
  }
}

TEST_CASE("Sse.parses_events_split_anywhere" * doctest::timeout(30)) {
  const std::string stream =
      "\xEF\xBB\xBF: keep-alive comment\r\n"
      "retry: 2500\r\n"
      "id: 1\r\n"
      "data: {\"line\":\"a\"}\r\n"
      "\r\n"
      "event: ping\n"
      "data: ignored\n"
      "\n"
      "id: 2\r"
      "data: first\r"
      "data:second\r"
      "\r"
      "data: no id change\n"
      "\n"
      "data: unfinished";
  for (std::size_t step : {std::size_t{1}, std::size_t{2}, std::size_t{7}, stream.size()}) {
    CAPTURE(step);
    SseParser parser;
    std::vector<SseParser::Event> events;
    for (std::size_t at = 0; at < stream.size(); at += step) {
      parser.feed(std::string_view(stream).substr(at, step), [&](const SseParser::Event& event) {
        events.push_back(event);
        return true;
      });
    }
    REQUIRE(events.size() == 4);
    CHECK(events[0].id == "1");
    CHECK(events[0].type == "message");
    CHECK(events[0].data == "{\"line\":\"a\"}");
    CHECK(events[1].type == "ping");
    CHECK(events[2].id == "2");
    CHECK(events[2].data == "first\nsecond");
    CHECK(events[3].id == "2");
    CHECK(parser.last_event_id() == "2");
    CHECK(parser.retry() == std::chrono::milliseconds(2500));
  }
}

TEST_CASE("RunPodClient.log_stream_delivers_lines_and_resumes_after_last_event_id" *
          doctest::timeout(30)) {
  auto event = [](const std::string& ts, const std::string& line) {
    return "id: " + ts +
           "\ndata: " + Json{{"source", "container"}, {"line", line}, {"ts", ts}}.dump() + "\n\n";
  };
  const std::vector<std::string> events = {
      event("2026-06-01T12:00:01Z", "epoch 1"),
      ": heartbeat\n\n" +
          event("2026-06-01T12:00:02Z", "podflow.metric name=loss value=0.5 step=1"),
      event("2026-06-01T12:00:03Z", "two\nlines"),
  };
  TestHttpServer server([&](const RecordedRequest& request) {
    std::size_t first = 0;
    if (auto it = request.headers.find("last-event-id"); it != request.headers.end()) {
      while (first < events.size() &&
             events[first].find("id: " + it->second) == std::string::npos) {
        ++first;
      }
      ++first;
    }
    std::string body;
    for (std::size_t i = first; i < events.size(); ++i) body += events[i];
    auto response = make_response(200, body, "text/event-stream");
    return std::optional<TestResponse>(response);
  });
  Client client(config_for(server));

  std::vector<LogLine> lines;
  LogStreamOptions options;
  options.tail = 100;
  auto first = value_of(run(client.stream_logs("p1", options, [&](const LogLine& line) {
    lines.push_back(line);
    return lines.size() < 2;  // stop after the metric line
  })));
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].text == "epoch 1");
  CHECK(lines[0].source == "container");
  CHECK(lines[1].text == "podflow.metric name=loss value=0.5 step=1");
  CHECK(first.stopped_by_callback);
  CHECK(first.last_event_id == "2026-06-01T12:00:02Z");
  CHECK(server.requests().at(0).target == "/v2/pods/p1/logs?tail=100");
  CHECK(server.requests().at(0).headers.count("last-event-id") == 0);

  lines.clear();
  options.last_event_id = first.last_event_id;
  auto second = value_of(run(client.stream_logs("p1", options, [&](const LogLine& line) {
    lines.push_back(line);
    return true;
  })));
  CHECK(server.requests().at(1).headers["last-event-id"] == "2026-06-01T12:00:02Z");
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].text == "two");
  CHECK(lines[1].text == "lines");
  CHECK(lines[1].event_id == "2026-06-01T12:00:03Z");
  CHECK_FALSE(second.stopped_by_callback);
  CHECK(second.last_event_id == "2026-06-01T12:00:03Z");
}

TEST_CASE("RunPodClient.silent_log_stream_times_out_and_cancel_stops_it" * doctest::timeout(30)) {
  TestHttpServer server([](const RecordedRequest&) {
    return std::optional<TestResponse>(make_held_open_response("id: 1\ndata: hello\n\n"));
  });
  Client client(config_for(server));
  SUBCASE("read deadline") {
    LogStreamOptions options;
    options.read_timeout = 300ms;
    std::vector<std::string> lines;
    const auto started = std::chrono::steady_clock::now();
    const auto& error = error_of(run(client.stream_logs("p1", options, [&](const LogLine& line) {
      lines.push_back(line.text);
      return true;
    })));
    CHECK(lines == std::vector<std::string>{"hello"});
    CHECK(error.kind == ErrorKind::timeout);
    CHECK(error.message.find("timed out after 300ms while reading the response stream") !=
          std::string::npos);
    CHECK(std::chrono::steady_clock::now() - started < 5s);
  }
  SUBCASE("cancellation") {
    asio::io_context io;
    asio::cancellation_signal cancel;
    std::optional<Result<LogStreamEnd>> out;
    asio::co_spawn(io,
                   client.stream_logs("p1", {},
                                      [&](const LogLine&) {
                                        // Cancel once the stream is live and waiting for more.
                                        asio::post(io, [&] {
                                          cancel.emit(asio::cancellation_type::terminal);
                                        });
                                        return true;
                                      }),
                   asio::bind_cancellation_slot(cancel.slot(), [&](const std::exception_ptr& error,
                                                                   Result<LogStreamEnd> result) {
                     if (error) std::rethrow_exception(error);
                     out.emplace(std::move(result));
                   }));
    io.run();
    REQUIRE(out.has_value());
    CHECK(error_of(*out).kind == ErrorKind::cancelled);
  }
}

namespace {

// Runs an io_context on its own thread for the poller.
struct IoThread {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::thread thread{[this] { io.run(); }};
  ~IoThread() {
    work.reset();
    io.stop();
    thread.join();
  }
};

}  // namespace

TEST_CASE("PodPoller.hundred_subscribers_share_one_list_call_per_interval" * doctest::timeout(30)) {
  Json pods = Json::array();
  const Json example = Json::parse(testdata("rest_pod.json"));
  for (int i = 0; i < 100; ++i) {
    Json pod = example;
    pod["id"] = "pod" + std::to_string(i);
    pods.push_back(pod);
  }
  const std::string list_body = Json{{"pods", pods}}.dump();
  TestHttpServer server([&](const RecordedRequest& request) {
    if (request.target == "/v2/pods") return json_reply(200, list_body);
    return json_reply(404, testdata("rest_404.json"));
  });
  auto client = std::make_shared<const Client>(config_for(server));

  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::string, int> updates;
  std::vector<PodPoller::Subscription> subscriptions;
  {
    IoThread io;
    auto poller = PodPoller::shared(io.io.get_executor(), client);
    CHECK(PodPoller::shared(io.io.get_executor(), client) == poller);
    for (int i = 0; i < 100; ++i) {
      const std::string id = "pod" + std::to_string(i);
      subscriptions.push_back(poller->subscribe(id, 100ms, [&, id](const Result<Pod>& result) {
        REQUIRE(podflow::runpod::ok(result));
        CHECK(std::get<Pod>(result).id == id);
        CHECK(std::get<Pod>(result).status == "RUNNING");
        {
          std::lock_guard lock(mutex);
          ++updates[id];
        }
        changed.notify_all();
      }));
    }
    std::unique_lock lock(mutex);
    const bool all_three = changed.wait_for(lock, 20s, [&] {
      if (updates.size() < 100) return false;
      for (const auto& [id, count] : updates) {
        if (count < 3) return false;
      }
      return true;
    });
    REQUIRE(all_three);
    lock.unlock();
    subscriptions.clear();
    lock.lock();
    int most = 0;
    int fewest = 1 << 30;
    for (const auto& [id, count] : updates) {
      most = std::max(most, count);
      fewest = std::min(fewest, count);
    }
    const auto lists = static_cast<int>(poller->list_calls());
    // One list call per tick serves all 100: as many list calls as the busiest subscriber's
    // updates (one more if a tick was under way), and every subscriber is served on every tick
    // after the one it joined at (less one for a tick cut short by the unsubscribing).
    CHECK(lists >= most);
    CHECK(lists <= most + 1);
    CHECK(fewest >= most - 2);
  }
  for (const auto& request : server.requests()) CHECK(request.target == "/v2/pods");
}

TEST_CASE("PodPoller.pod_missing_from_the_list_is_fetched_alone" * doctest::timeout(30)) {
  TestHttpServer server([](const RecordedRequest& request) {
    if (request.target == "/v2/pods") return json_reply(200, R"({"pods":[]})");
    if (request.target == "/v2/pods/7h9k2m4n6p") return json_reply(200, testdata("rest_pod.json"));
    return json_reply(404, testdata("rest_404.json"));
  });
  auto client = std::make_shared<const Client>(config_for(server));
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<Result<Pod>> seen;
  IoThread io;
  auto poller = std::make_shared<PodPoller>(io.io.get_executor(), client);
  auto record = [&](const Result<Pod>& result) {
    {
      std::lock_guard lock(mutex);
      seen.push_back(result);
    }
    changed.notify_all();
  };
  auto live = poller->subscribe("7h9k2m4n6p", 50ms, record);
  auto gone = poller->subscribe("gone1", 50ms, record);
  std::unique_lock lock(mutex);
  bool saw_live = false;
  bool saw_gone = false;
  // Either subscriber may be answered first; wait for both.
  changed.wait_for(lock, 20s, [&] {
    for (const auto& result : seen) {
      if (podflow::runpod::ok(result)) {
        saw_live = saw_live || std::get<Pod>(result).id == "7h9k2m4n6p";
      } else {
        saw_gone = saw_gone || std::get<RunPodError>(result).not_found;
      }
    }
    return saw_live && saw_gone;
  });
  CHECK(saw_live);
  CHECK(saw_gone);
}

TEST_CASE("PodPoller.a_429_holds_every_list_call_until_retry_after" * doctest::timeout(30)) {
  // The first list call is refused for one second; polling every 20ms must still wait it out.
  std::mutex mutex;
  std::vector<std::chrono::steady_clock::time_point> list_times;
  TestHttpServer server([&](const RecordedRequest& request) {
    std::size_t calls = 0;
    {
      std::lock_guard lock(mutex);
      list_times.push_back(std::chrono::steady_clock::now());
      calls = list_times.size();
    }
    if (request.target != "/v2/pods") return json_reply(404, testdata("rest_404.json"));
    if (calls == 1) {
      auto response = json_reply(429, R"({"detail":"rate limited","status":429})");
      response->set("Retry-After", "1");
      return response;
    }
    return json_reply(200,
                      Json{{"pods", Json::array({Json::parse(testdata("rest_pod.json"))})}}.dump());
  });
  auto client = std::make_shared<const Client>(config_for(server));
  std::condition_variable changed;
  int answers = 0;
  bool saw_rate_limit = false;
  IoThread io;
  auto poller = std::make_shared<PodPoller>(io.io.get_executor(), client);
  auto subscription = poller->subscribe("7h9k2m4n6p", 20ms, [&](const Result<Pod>& result) {
    {
      std::lock_guard lock(mutex);
      if (!podflow::runpod::ok(result)) {
        saw_rate_limit = std::get<RunPodError>(result).kind == ErrorKind::rate_limited;
      }
      ++answers;
    }
    changed.notify_all();
  });
  std::unique_lock lock(mutex);
  REQUIRE(changed.wait_for(lock, 20s, [&] { return answers >= 2; }));
  CHECK(saw_rate_limit);
  REQUIRE(list_times.size() >= 2);
  CHECK(list_times[1] - list_times[0] >= 1s);
}
