// Tests for the RunPod simulator, driven in-process over real HTTP like a RunPod client would.
#include "podflow/operators/runpod_sim.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using podflow::Json;
using podflow::runpod_sim::RunPodSimulator;
using podflow::runpod_sim::SimulatorOptions;

constexpr const char* kKey = "test-key-123";
constexpr const char* kCapacity =
    "There are no longer any instances available with the requested specifications. Please "
    "refresh and try again.";

struct Reply {
  unsigned status = 0;
  std::string body;
  std::string content_type;
  std::string retry_after;
  Json json() const { return Json::parse(body, nullptr, false); }
};

// Starts a simulator with a script and stops it at scope exit.
struct Sim {
  RunPodSimulator sim;
  explicit Sim(Json script = nullptr)
      : sim(SimulatorOptions{.listen_address = "127.0.0.1",
                             .port = 0,
                             .api_key = kKey,
                             .script = std::move(script)}) {
    auto error = sim.start();
    REQUIRE_MESSAGE(!error, error.value_or(""));
  }

  Reply call(const std::string& method, const std::string& target, const std::string& body = "",
             const char* key = kKey, const std::string& last_event_id = "") {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(20));
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), sim.port()));
    http::request<http::string_body> request(http::string_to_verb(method), target, 11);
    request.set(http::field::host, "127.0.0.1");
    if (key) request.set(http::field::authorization, std::string("Bearer ") + key);
    if (!last_event_id.empty()) request.set("Last-Event-ID", last_event_id);
    if (!body.empty()) {
      request.set(http::field::content_type, "application/json");
      request.body() = body;
    }
    request.prepare_payload();
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    http::read(stream, buffer, parser);
    const auto& response = parser.get();
    return Reply{response.result_int(), response.body(),
                 std::string(response[http::field::content_type]),
                 std::string(response["Retry-After"])};
  }

  Reply graphql(const std::string& query, const Json& variables = Json::object(),
                const char* key = kKey) {
    return call("POST", "/graphql", Json{{"query", query}, {"variables", variables}}.dump(), key);
  }

  // Reads a log stream until `done` holds for the text received so far (or the stream ends).
  std::string read_logs_until(const std::string& pod_id,
                              const std::function<bool(const std::string&)>& done) {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(20));
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), sim.port()));
    const std::string request = "GET /v2/pods/" + pod_id +
                                "/logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kKey +
                                "\r\n\r\n";
    asio::write(stream, asio::buffer(request));
    std::string text;
    char data[4096];
    while (!done(text)) {
      beast::error_code ec;
      const auto n = stream.read_some(asio::buffer(data), ec);
      if (ec) break;
      text.append(data, n);
    }
    return text;
  }
};

Json create_body(const std::string& name, const std::string& gpu = "NVIDIA GeForce RTX 4090") {
  return Json{{"name", name},
              {"image", "runpod/pytorch:2.4"},
              {"gpu", {{"id", gpu}, {"count", 1}}},
              {"ports", {"22/tcp"}},
              {"env", {{"PODFLOW_RUN", "r1"}}}};
}

// A script that runs a pod to completion quickly: 1 simulated second is 20 ms.
Json fast_script(Json pod = Json::object()) {
  Json defaults = {
      {"provision_seconds", 1},
      {"start_seconds", 2},
      {"line_interval_seconds", 1},
      {"lines",
       {"podflow.metric name=loss value=0.9 step=1", "podflow.metric name=loss value=0.5 step=2",
        "podflow.done status=ok exit=0"}}};
  for (const auto& [k, v] : pod.items()) defaults[k] = v;
  return Json{{"time_scale", 50}, {"pod", defaults}};
}

bool stream_ended(const std::string& text) {
  return text.find("\r\n0\r\n\r\n") != std::string::npos;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("RunPodSim.create_get_list_delete_follow_the_openapi_shapes" * doctest::timeout(30)) {
  Sim s;
  auto created = s.call("POST", "/v2/pods", create_body("podflow-a").dump());
  REQUIRE(created.status == 201);
  const auto pod = created.json();
  for (const char* key : {"id",           "name",
                          "status",       "actions",
                          "image",        "args",
                          "disk",         "mounts",
                          "ports",        "env",
                          "registry",     "cloud",
                          "dataCenterId", "cudaVersion",
                          "ssh",          "template",
                          "cost",         "locked",
                          "runtime",      "createdAt",
                          "startedAt",    "globalNetworking"}) {
    CHECK_MESSAGE(pod.contains(key), key);
  }
  CHECK(pod["name"] == "podflow-a");
  CHECK(pod["status"] == "PROVISIONING");
  CHECK(pod["cloud"] == "SECURE");
  CHECK(pod["gpu"] == Json{{"id", "NVIDIA GeForce RTX 4090"}, {"count", 1}});
  CHECK(pod["cost"].get<double>() > 0);
  CHECK(pod["env"]["PODFLOW_RUN"] == "r1");
  const auto id = pod["id"].get<std::string>();

  auto got = s.call("GET", "/v2/pods/" + id);
  CHECK(got.status == 200);
  CHECK(got.json()["id"] == id);

  auto list = s.call("GET", "/v2/pods");
  REQUIRE(list.status == 200);
  REQUIRE(list.json()["pods"].size() == 1);
  CHECK(list.json()["pods"][0]["id"] == id);

  CHECK(s.call("DELETE", "/v2/pods/" + id).status == 204);
  auto gone = s.call("GET", "/v2/pods/" + id);
  CHECK(gone.status == 404);
  CHECK(gone.content_type == "application/problem+json");
  CHECK(gone.json()["title"] == "Not Found");
  CHECK(s.call("GET", "/v2/pods").json()["pods"].empty());
  CHECK(s.call("DELETE", "/v2/pods/" + id).status == 404);

  const auto state = s.sim.state();
  REQUIRE(state["pods"].size() == 1);
  CHECK(state["pods"][0]["status"] == "TERMINATED");
  CHECK(!state["pods"][0]["terminatedAt"].is_null());
  CHECK(state["request_counts"]["POST /v2/pods"] == 1);
  CHECK(state["request_counts"]["GET /v2/pods/{id}"] == 2);
}

TEST_CASE("RunPodSim.missing_or_wrong_key_gets_401_and_the_key_is_never_recorded" *
          doctest::timeout(30)) {
  Sim s;
  auto missing = s.call("GET", "/v2/pods", "", nullptr);
  CHECK(missing.status == 401);
  CHECK(missing.json() == Json::parse(R"({"detail":"missing bearer token","status":401,
                                          "title":"Unauthorized"})"));
  auto wrong = s.call("POST", "/v2/pods", create_body("x").dump(), "not-the-key");
  CHECK(wrong.status == 401);
  CHECK(s.graphql("query { myself { id } }", Json::object(), "nope").status == 401);
  CHECK(s.sim.state()["pods"].empty());  // the unauthenticated create made nothing

  const auto state = s.sim.state();
  CHECK(state["requests"][0]["authorization"] == false);
  CHECK(state["requests"][1]["authorization"] == true);
  CHECK(state.dump().find("not-the-key") == std::string::npos);
  CHECK(state.dump().find(kKey) == std::string::npos);
}

TEST_CASE("RunPodSim.create_rejects_bodies_that_break_the_schema_with_422" * doctest::timeout(30)) {
  Sim s;
  auto body = create_body("p");
  body["interruptible"] = true;  // REST v2 has no spot field
  body["disk"] = "ten";
  body["gpu"]["count"] = 0;
  auto reply = s.call("POST", "/v2/pods", body.dump());
  CHECK(reply.status == 422);
  const auto json = reply.json();
  CHECK(json["title"] == "Unprocessable Entity");
  CHECK(json["detail"] == "Request validation failed.");
  const auto errors = json["errors"].dump();
  CHECK(errors.find("$.interruptible: property is not allowed") != std::string::npos);
  CHECK(errors.find("$.disk: value must be an integer") != std::string::npos);
  CHECK(errors.find("$.gpu.count: value must be >= 1") != std::string::npos);

  auto no_name = s.call("POST", "/v2/pods", R"({"image":"x","gpu":{"id":"NVIDIA RTX A4000"}})");
  CHECK(no_name.status == 422);
  CHECK(no_name.json()["errors"].dump().find("missing required property 'name'") !=
        std::string::npos);
  CHECK(s.call("POST", "/v2/pods", "{not json").status == 400);
  CHECK(s.sim.state()["pods"].empty());
}

TEST_CASE("RunPodSim.gpu_without_capacity_answers_runpods_capacity_error" * doctest::timeout(30)) {
  Sim s(Json{{"gpu_types",
              {{{"id", "NVIDIA H100 80GB HBM3"},
                {"capacity", false},
                {"price", {{"secure", 2.69}, {"community", 2.29}}}},
               {{"id", "NVIDIA RTX A4000"}, {"price", {{"secure", 0.25}, {"community", 0.17}}}}}}});
  auto rest = s.call("POST", "/v2/pods", create_body("p", "NVIDIA H100 80GB HBM3").dump());
  CHECK(rest.status == 400);
  CHECK(rest.json()["detail"] == kCapacity);

  auto gql = s.graphql(
      R"(mutation createPod($input: PodFindAndDeployOnDemandInput!) {
           podFindAndDeployOnDemand(input: $input) { id costPerHr } })",
      {{"input",
        {{"name", "p"},
         {"imageName", "x"},
         {"gpuTypeId", "NVIDIA H100 80GB HBM3"},
         {"cloudType", "ALL"},
         {"gpuCount", 1}}}});
  CHECK(gql.status == 200);
  CHECK(gql.json()["errors"][0]["message"] == kCapacity);
  CHECK(gql.json()["data"]["podFindAndDeployOnDemand"].is_null());

  auto catalog = s.call("GET", "/v2/catalog/gpus?include=AVAILABILITY&product=POD");
  REQUIRE(catalog.status == 200);
  const auto gpus = catalog.json()["gpus"];
  REQUIRE(gpus.size() == 2);
  CHECK(gpus[0]["availability"] == "NONE");
  CHECK(gpus[1]["availability"] == "HIGH");
  CHECK(gpus[1]["price"]["secure"] == 0.25);
  CHECK(s.call("POST", "/v2/pods", create_body("q", "NVIDIA RTX A4000").dump()).status == 201);
}

TEST_CASE("RunPodSim.pod_runs_prints_its_lines_and_stops_itself" * doctest::timeout(30)) {
  Sim s(fast_script());
  const auto id =
      s.call("POST", "/v2/pods", create_body("p").dump()).json()["id"].get<std::string>();
  const auto logs = s.read_logs_until(id, stream_ended);
  CHECK(logs.find("text/event-stream") != std::string::npos);
  const auto metric = logs.find("podflow.metric name=loss value=0.5 step=2");
  const auto done = logs.find("podflow.done status=ok exit=0");
  REQUIRE(metric != std::string::npos);
  REQUIRE(done != std::string::npos);
  CHECK(metric < done);
  CHECK(logs.find(R"("source":"container")") != std::string::npos);

  const auto pod = s.call("GET", "/v2/pods/" + id).json();
  CHECK(pod["status"] == "EXITED");
  CHECK(pod["cost"] == 0.0);
  CHECK(pod["runtime"].is_null());
  CHECK(pod["actions"] == Json{"start", "terminate"});
  const auto gql = s.graphql(R"(query { pod(input: {podId: ")" + id +
                             R"("}) { desiredStatus lastStatusChange costPerHr podType } })")
                       .json();
  CHECK(gql["data"]["pod"]["desiredStatus"] == "EXITED");
  CHECK(gql["data"]["pod"]["lastStatusChange"].get<std::string>().rfind("Exited by user: ", 0) ==
        0);
  CHECK(gql["data"]["pod"]["podType"] == "RESERVED");
  CHECK(gql["data"]["pod"].size() == 4);  // only the selected fields
}

TEST_CASE("RunPodSim.log_stream_resumes_after_last_event_id" * doctest::timeout(30)) {
  Sim s(fast_script());
  const auto id =
      s.call("POST", "/v2/pods", create_body("p").dump()).json()["id"].get<std::string>();
  const auto all = s.read_logs_until(id, stream_ended);
  // The id of the event carrying the first metric line.
  const auto first_metric = all.find("step=1");
  REQUIRE(first_metric != std::string::npos);
  const auto id_at = all.rfind("id: ", first_metric);
  const auto last_id = all.substr(id_at + 4, all.find('\n', id_at) - id_at - 4);

  auto resumed = s.call("GET", "/v2/pods/" + id + "/logs", "", kKey, last_id);
  CHECK(resumed.status == 200);
  CHECK(resumed.body.find("step=1") == std::string::npos);
  CHECK(resumed.body.find("step=2") != std::string::npos);
  CHECK(resumed.body.find("podflow.done") != std::string::npos);
  CHECK(count(resumed.body, "data: ") < count(all, "data: "));
}

TEST_CASE("RunPodSim.container_that_exits_without_stopping_its_pod_is_restarted" *
          doctest::timeout(30)) {
  Sim s(fast_script({{"on_exit", "restart"}, {"restart_delay_seconds", 1}}));
  const auto id =
      s.call("POST", "/v2/pods", create_body("p").dump()).json()["id"].get<std::string>();
  const auto logs = s.read_logs_until(
      id, [](const std::string& text) { return count(text, "podflow.done status=ok") >= 2; });
  CHECK(count(logs, "start container") >= 2);
  CHECK(count(logs, "step=1") >= 2);  // the lines start over
  const auto pod = s.call("GET", "/v2/pods/" + id).json();
  CHECK(pod["status"] == "RUNNING");
  CHECK(pod["cost"].get<double>() > 0);
  CHECK(s.sim.state()["pods"][0]["containerStarts"].get<int>() >= 2);
  CHECK(s.call("POST", "/v2/pods/" + id + "/action", R"({"action":"stop"})").json()["status"] ==
        "EXITED");
}

TEST_CASE("RunPodSim.spot_pod_is_outbid_and_resumes_with_a_new_bid" * doctest::timeout(30)) {
  Sim s(fast_script({{"on_exit", "keep_running"}, {"preempt_after_seconds", 4}}));
  const auto created = s.graphql(
      R"(mutation createSpotPod($input: PodRentInterruptableInput!) {
           podRentInterruptable(input: $input) { id desiredStatus costPerHr podType machine { gpuDisplayName } } })",
      {{"input",
        {{"bidPerGpu", 0.4},
         {"gpuCount", 1},
         {"gpuTypeId", "NVIDIA GeForce RTX 4090"},
         {"imageName", "x"},
         {"name", "spot"},
         {"cloudType", "SECURE"}}}});
  REQUIRE(created.status == 200);
  const auto pod = created.json()["data"]["podRentInterruptable"];
  CHECK(pod["podType"] == "INTERRUPTABLE");
  CHECK(pod["desiredStatus"] == "RUNNING");
  CHECK(pod["costPerHr"] == doctest::Approx(0.4));
  CHECK(pod["machine"] == Json{{"gpuDisplayName", "RTX 4090"}});
  const auto id = pod["id"].get<std::string>();

  s.read_logs_until(id, stream_ended);  // the stream ends when the pod stops
  const auto query = R"(query { pod(input: {podId: ")" + id +
                     R"("}) { desiredStatus lastStatusChange costPerHr } })";
  const auto preempted = s.graphql(query).json()["data"]["pod"];
  CHECK(preempted["desiredStatus"] == "EXITED");
  CHECK(preempted["lastStatusChange"].get<std::string>().rfind("Outbid: ", 0) == 0);
  CHECK(preempted["costPerHr"] == 0.0);

  const auto low =
      s.graphql(R"(mutation Mutation($podId: String!, $bidPerGpu: Float!, $gpuCount: Int!) {
      podBidResume(input: {podId: $podId, bidPerGpu: $bidPerGpu, gpuCount: $gpuCount}) { id } })",
                {{"podId", id}, {"bidPerGpu", 0.01}, {"gpuCount", 1}});
  CHECK(low.json()["errors"][0]["message"].get<std::string>().find("outbid") != std::string::npos);
  const auto resumed =
      s.graphql(R"(mutation Mutation($podId: String!, $bidPerGpu: Float!, $gpuCount: Int!) {
      podBidResume(input: {podId: $podId, bidPerGpu: $bidPerGpu, gpuCount: $gpuCount}) {
        id costPerHr desiredStatus lastStatusChange } })",
                {{"podId", id}, {"bidPerGpu", 0.5}, {"gpuCount", 1}});
  CHECK(resumed.json()["data"]["podBidResume"]["desiredStatus"] == "RUNNING");
  CHECK(resumed.json()["data"]["podBidResume"]["costPerHr"] == doctest::Approx(0.5));
  CHECK(s.graphql(R"(mutation { podTerminate(input: {podId: ")" + id + R"("}) })").body ==
        R"({"data":{"podTerminate":null}})");
  CHECK(s.graphql(query).body == R"({"data":{"pod":null}})");
}

TEST_CASE("RunPodSim.graphql_rejects_unknown_fields_and_unconfirmed_input_types" *
          doctest::timeout(30)) {
  Sim s;
  auto unknown = s.graphql(R"(query { pod(input: {podId: "x"}) { id gpuName } })");
  CHECK(unknown.status == 400);
  CHECK(unknown.json()["errors"][0]["message"] ==
        "Something went wrong. Please try again later or contact support.");
  CHECK(unknown.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED");
  CHECK(unknown.json()["errors"][0]["extensions"]["simulatorDetail"].get<std::string>().find(
            "gpuName") != std::string::npos);

  auto unconfirmed =
      s.graphql(R"(mutation stop($input: PodStopInput!) { podStop(input: $input) { id } })",
                {{"input", {{"podId", "x"}}}});
  CHECK(unconfirmed.status == 400);

  auto bad_input = s.graphql(
      R"(mutation c($input: PodFindAndDeployOnDemandInput!) { podFindAndDeployOnDemand(input: $input) { id } })",
      {{"input", {{"gpuTypeId", "NVIDIA RTX A4000"}, {"objectMounts", Json::array()}}}});
  CHECK(bad_input.status == 400);
  CHECK(bad_input.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT");

  CHECK(s.graphql("query { pod(input: {podId: \"nope\"}) { id } }").body ==
        R"({"data":{"pod":null}})");
  CHECK(s.graphql("query { pod(input: {podId: \"x\"}) { id ")
            .json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED");
  CHECK(s.sim.state()["pods"].empty());
}

TEST_CASE("RunPodSim.every_nth_request_is_rate_limited_with_retry_after" * doctest::timeout(30)) {
  Sim s(Json{{"rate_limit", {{"every", 3}, {"retry_after_seconds", 7}}}});
  CHECK(s.call("GET", "/v2/pods").status == 200);
  CHECK(s.call("GET", "/v2/pods").status == 200);
  const auto limited = s.call("GET", "/v2/pods");
  CHECK(limited.status == 429);
  CHECK(limited.retry_after == "7");
  CHECK(limited.json()["title"] == "Too Many Requests");
  CHECK(s.call("GET", "/v2/pods").status == 200);
}

TEST_CASE("RunPodSim.create_that_answers_500_still_creates_the_pod" * doctest::timeout(30)) {
  Sim s(Json{
      {"faults",
       {{{"route", "POST /v2/pods"}, {"status", 500}, {"after_handling", true}, {"times", 1}}}}});
  const auto failed = s.call("POST", "/v2/pods", create_body("podflow-r1-train").dump());
  CHECK(failed.status == 500);
  const auto pods = s.call("GET", "/v2/pods").json()["pods"];
  REQUIRE(pods.size() == 1);  // the pod exists although the client saw 500
  CHECK(pods[0]["name"] == "podflow-r1-train");
  CHECK(s.call("POST", "/v2/pods", create_body("second").dump()).status == 201);
}

TEST_CASE("RunPodSim.injected_5xx_before_handling_creates_nothing" * doctest::timeout(30)) {
  Sim s(Json{{"faults", {{{"route", "GET /v2/pods/{id}"}, {"status", 503}, {"skip", 1}}}}});
  const auto id =
      s.call("POST", "/v2/pods", create_body("p").dump()).json()["id"].get<std::string>();
  CHECK(s.call("GET", "/v2/pods/" + id).status == 200);
  CHECK(s.call("GET", "/v2/pods/" + id).status == 503);
}

TEST_CASE("RunPodSim.actions_follow_the_status_rules" * doctest::timeout(30)) {
  Sim s(fast_script({{"on_exit", "keep_running"}}));
  const auto id =
      s.call("POST", "/v2/pods", create_body("p").dump()).json()["id"].get<std::string>();
  const auto action = "/v2/pods/" + id + "/action";
  auto invalid = s.call("POST", action, R"({"action":"pause"})");
  CHECK(invalid.status == 422);
  CHECK(
      invalid.json() ==
      Json::parse(
          R"({"detail":"Request validation failed.","errors":["$.action: value must be one of 'start', 'stop', 'restart', 'terminate'"],"status":422,"title":"Unprocessable Entity"})"));
  CHECK(s.call("POST", action, R"({"action":"start"})").status == 409);  // provisioning
  CHECK(s.call("POST", action, R"({"action":"stop"})").json()["status"] == "EXITED");
  CHECK(s.call("POST", action, R"({"action":"start"})").json()["status"] != "EXITED");
  CHECK(s.call("POST", action, R"({"action":"terminate"})").status == 204);
  CHECK(s.call("GET", "/v2/pods/" + id).status == 404);
  CHECK(s.sim.state()["pods"][0]["status"] == "TERMINATED");
}

TEST_CASE("RunPodSim.script_files_load_from_yaml_and_mistakes_are_named" * doctest::timeout(30)) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("podflow-sim-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto good = dir / "good.yaml";
  std::ofstream(good) << "time_scale: 20\n"
                         "gpu_types:\n"
                         "  - id: NVIDIA RTX A4000\n"
                         "    price: {secure: 0.25, community: 0.17}\n"
                         "    capacity: false\n"
                         "pod:\n"
                         "  on_exit: restart\n"
                         "  lines: [\"podflow.done status=ok exit=0\"]\n";
  const auto loaded = podflow::runpod_sim::load_script_file(good);
  REQUIRE(loaded.error.empty());
  CHECK(loaded.script["time_scale"] == 20);
  CHECK(loaded.script["gpu_types"][0]["capacity"] == false);
  Sim s(loaded.script);
  CHECK(s.call("POST", "/v2/pods", create_body("p", "NVIDIA RTX A4000").dump()).json()["detail"] ==
        kCapacity);

  const auto bad = dir / "bad.yaml";
  std::ofstream(bad) << "pod:\n  on_exit: explode\n";
  CHECK(podflow::runpod_sim::load_script_file(bad).error ==
        bad.string() + ": script.pod.on_exit: must be stop_pod, restart or keep_running");
  std::ofstream(bad) << "pods: {}\n";
  CHECK(podflow::runpod_sim::load_script_file(bad).error ==
        bad.string() + ": script: unknown key 'pods'");
  std::filesystem::remove_all(dir);
}

TEST_CASE("RunPodSim.graphql_inline_documents_like_runpod_python_send" * doctest::timeout(30)) {
  Sim s(fast_script({{"on_exit", "keep_running"}}));
  const auto created = s.graphql(R"(mutation {
    podFindAndDeployOnDemand(
      input: {
        name: "gql-pod", imageName: "runpod/pytorch", cloudType: ALL, startSsh: true,
        gpuTypeId: "NVIDIA RTX A4000", supportPublicIp: true, gpuCount: 1, volumeInGb: 0,
        minVcpuCount: 1, minMemoryInGb: 1, dataCenterId: null, dockerArgs: "",
        containerDiskInGb: 10, ports: "8888/http,22/tcp", volumeMountPath: "/runpod-volume",
        env: [{ key: "K", value: "V" }]
      }
    ) {
      id
      imageName
      env
      machineId
      gpu: machine { podHostId }
    }
  })");
  REQUIRE(created.status == 200);
  const auto pod = created.json()["data"]["podFindAndDeployOnDemand"];
  CHECK(pod["imageName"] == "runpod/pytorch");
  CHECK(pod["env"] == Json{"K=V"});
  CHECK(!pod["machineId"].get<std::string>().empty());
  CHECK(pod["gpu"].contains("podHostId"));  // aliases name the response key
  const auto id = pod["id"].get<std::string>();
  const auto rest = s.call("GET", "/v2/pods/" + id).json();
  CHECK(rest["ports"] == Json{"8888/http", "22/tcp"});
  CHECK(rest["cloud"] == "SECURE");  // ALL picks SECURE first

  const auto stopped = s.graphql(R"(mutation stopPod($podId: String!) {
      podStop(input: {podId: $podId}) { id desiredStatus lastStatusChange } })",
                                 {{"podId", id}});
  CHECK(stopped.json()["data"]["podStop"]["desiredStatus"] == "EXITED");
  const auto resumed = s.graphql(R"(mutation podResume($podId: String!) {
      podResume(input: {podId: $podId}) { id costPerHr desiredStatus } })",
                                 {{"podId", id}});
  CHECK(resumed.json()["data"]["podResume"]["desiredStatus"] == "RUNNING");
  CHECK(resumed.json()["data"]["podResume"]["costPerHr"] == doctest::Approx(0.25));
  const auto mine = s.graphql("query myPods { myself { pods { id podType } } }").json();
  CHECK(mine["data"]["myself"]["pods"] == Json{{{"id", id}, {"podType", "RESERVED"}}});
}

TEST_CASE("RunPodSim.slow_answers_are_delayed_by_the_script" * doctest::timeout(30)) {
  Sim s(Json{{"faults", {{{"route", "GET /v2/pods"}, {"delay_ms", 300}, {"times", 1}}}}});
  const auto begin = std::chrono::steady_clock::now();
  CHECK(s.call("GET", "/v2/pods").status == 200);
  CHECK(std::chrono::steady_clock::now() - begin >= std::chrono::milliseconds(300));
}
