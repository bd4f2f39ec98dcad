// The MLflow client against a real MLflow server (started by CTest's mlflow fixture), and against
// an in-process fake for the faults a real server will not produce on demand.
#include "podflow/operators/mlflow_client.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "http_test_server.hpp"
#include "operator_runner.hpp"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using podflow::Json;
using podflow::engine::ErrorKind;
using podflow::mlflow::batch_bodies;
using podflow::mlflow::Client;
using podflow::mlflow::Config;
using podflow::mlflow::KeyValues;
using podflow::mlflow::Metric;
using podflow::mlflow::MlflowError;
using podflow::mlflow::Result;
using podflow::testing::make_response;
using podflow::testing::RecordedRequest;
using podflow::testing::TestHttpServer;

template <typename T>
T run(asio::awaitable<T> call) {
  return podflow::testing::run_to_completion(std::move(call));
}

template <typename T>
T value_of(const Result<T>& result) {
  if (result.index() == 1) FAIL(std::get<MlflowError>(result).message);
  return std::get<T>(result);
}

template <typename T>
MlflowError error_of(const Result<T>& result) {
  REQUIRE_MESSAGE(result.index() == 1, "expected an error");
  return std::get<MlflowError>(result);
}

// The real server's address, from the fixture's state file.
Config real_server() {
  const char* state = std::getenv("PODFLOW_MLFLOW_STATE");
  REQUIRE_MESSAGE(state != nullptr, "run through ctest: the mlflow fixture starts the server");
  std::ifstream in(state);
  REQUIRE_MESSAGE(in.good(), "no MLflow server state at " << state);
  Config config;
  config.tracking_uri = Json::parse(in).at("url").get<std::string>();
  config.timeout = 30s;
  config.max_retries = 2;
  config.backoff = 50ms;
  return config;
}

std::string unique(const std::string& prefix) {
  static std::atomic<int> counter = 0;
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::map<std::string, std::string> as_map(const Json& items) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) out[item.at("key")] = item.value("value", std::string());
  return out;
}

}  // namespace

TEST_CASE("MlflowBatches.split within every limit, params and tags first" * doctest::timeout(10)) {
  std::vector<Metric> metrics;
  for (int i = 0; i < 2500; ++i) metrics.push_back({"loss", 1.0 / (i + 1), 1000 + i, i});
  KeyValues params;
  for (int i = 0; i < 150; ++i) params.emplace_back("p" + std::to_string(i), "v");
  KeyValues tags = {{"team", "ml"}};
  std::vector<std::string> warnings;
  const auto bodies = batch_bodies("r1", metrics, params, tags, warnings);
  std::size_t sent_metrics = 0;
  std::size_t sent_params = 0;
  for (const auto& body : bodies) {
    CHECK(body["run_id"] == "r1");
    CHECK(body["params"].size() <= 100);
    CHECK(body["tags"].size() <= 100);
    CHECK(body["metrics"].size() <= 1000);
    CHECK(body["params"].size() + body["tags"].size() + body["metrics"].size() <= 1000);
    CHECK(body.dump().size() < 1000 * 1000);
    sent_metrics += body["metrics"].size();
    sent_params += body["params"].size();
  }
  CHECK(sent_metrics == 2500);
  CHECK(sent_params == 150);
  CHECK(bodies.front()["params"].size() == 100);
  CHECK(bodies.front()["metrics"].size() == 899);  // 1000 less 100 params and 1 tag
  CHECK(bodies.front()["metrics"][0]["step"] == 0);
  CHECK(warnings.empty());
}

TEST_CASE("MlflowBatches.large values split by size under 1 MB" * doctest::timeout(10)) {
  KeyValues params;
  KeyValues tags;
  for (int i = 0; i < 100; ++i)
    params.emplace_back("p" + std::to_string(i), std::string(6000, 'p'));
  for (int i = 0; i < 100; ++i) tags.emplace_back("t" + std::to_string(i), std::string(5000, 't'));
  std::vector<std::string> warnings;
  const auto bodies = batch_bodies("r1", {}, params, tags, warnings);  // 1.1 MB in all
  REQUIRE(bodies.size() == 2);
  std::size_t sent = 0;
  for (const auto& body : bodies) {
    CHECK(body.dump().size() < 1000 * 1000);
    sent += body["params"].size() + body["tags"].size();
  }
  CHECK(sent == 200);
  CHECK(warnings.empty());
}

TEST_CASE("MlflowBatches.long values are cut with a warning; NaN and infinities as strings" *
          doctest::timeout(10)) {
  std::vector<std::string> warnings;
  const std::string long_value(7000, 'x');
  const auto bodies =
      batch_bodies("r1", {{"m", std::nan(""), 1, 0}, {"m", HUGE_VAL, 1, 1}, {"m", -HUGE_VAL, 1, 2}},
                   {{"notes", long_value}}, {}, warnings);
  REQUIRE(bodies.size() == 1);
  CHECK(bodies[0]["params"][0]["value"].get<std::string>().size() == 6000);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("param 'notes'") != std::string::npos);
  CHECK(bodies[0]["metrics"][0]["value"] == "NaN");
  CHECK(bodies[0]["metrics"][1]["value"] == "Infinity");
  CHECK(bodies[0]["metrics"][2]["value"] == "-Infinity");
}

TEST_CASE("MlflowConfig.from MLflow's environment variables" * doctest::timeout(10)) {
  ::setenv("MLFLOW_TRACKING_URI", "https://mlflow.example.com/", 1);
  ::setenv("MLFLOW_TRACKING_TOKEN", "tok-123456", 1);
  auto config = std::get<Config>(podflow::mlflow::config_from_env());
  CHECK(config.tracking_uri == "https://mlflow.example.com");
  CHECK(config.token == "tok-123456");
  CHECK(std::get<Config>(podflow::mlflow::config_from_env("http://127.0.0.1:5000")).tracking_uri ==
        "http://127.0.0.1:5000");
  ::setenv("MLFLOW_TRACKING_INSECURE_TLS", "true", 1);
  ::setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", "/etc/ca.pem", 1);
  CHECK(std::get<std::string>(podflow::mlflow::config_from_env()).find("both set") !=
        std::string::npos);
  ::unsetenv("MLFLOW_TRACKING_INSECURE_TLS");
  ::unsetenv("MLFLOW_TRACKING_SERVER_CERT_PATH");
  ::setenv("MLFLOW_TRACKING_URI", "file:///tmp/mlruns", 1);
  CHECK(std::get<std::string>(podflow::mlflow::config_from_env()).find("REST API") !=
        std::string::npos);
  ::unsetenv("MLFLOW_TRACKING_URI");
  ::unsetenv("MLFLOW_TRACKING_TOKEN");
  CHECK(std::get<std::string>(podflow::mlflow::config_from_env()).find("MLFLOW_TRACKING_URI") !=
        std::string::npos);
}

TEST_CASE("MlflowFaults.5xx and 429 are retried, Retry-After honoured, Basic auth sent" *
          doctest::timeout(30)) {
  std::atomic<int> calls = 0;
  TestHttpServer server([&](const RecordedRequest&) {
    const int n = ++calls;
    if (n == 1) return std::optional(make_response(503, "upstream connect error"));
    if (n == 2) {
      auto response =
          make_response(429, R"({"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"})",
                        "application/json");
      response.set("Retry-After", "1");
      return std::optional(response);
    }
    return std::optional(
        make_response(200, R"({"run":{"info":{"run_id":"abc"}}})", "application/json"));
  });
  Config config;
  config.tracking_uri = server.url("");
  config.username = "alice";
  config.password = "s3cret-pw";
  config.backoff = 10ms;
  std::vector<std::string> warnings;
  Client client(config, [&](const std::string& w) { warnings.push_back(w); });
  const auto started = std::chrono::steady_clock::now();
  const Json run_json = value_of(run(client.get_run("abc")));
  CHECK(run_json["info"]["run_id"] == "abc");
  CHECK(std::chrono::steady_clock::now() - started >= 1s);  // waited out Retry-After
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[0].find("503 INTERNAL_ERROR: upstream connect error") != std::string::npos);
  const auto requests = server.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0].target == "/api/2.0/mlflow/runs/get?run_id=abc");
  CHECK(requests[0].headers.at("authorization") == "Basic YWxpY2U6czNjcmV0LXB3");
  for (const auto& w : warnings) CHECK(w.find("s3cret-pw") == std::string::npos);
}

TEST_CASE("MlflowFaults.a timeout and a dropped connection are retried" * doctest::timeout(30)) {
  std::atomic<int> calls = 0;
  TestHttpServer server(
      [&](const RecordedRequest&) -> std::optional<podflow::testing::TestResponse> {
        const int n = ++calls;
        if (n == 1) return std::nullopt;  // never answers
        if (n == 2) {
          auto response = make_response(200, "{}");
          response.set(podflow::testing::kDropHeader, "1");
          return response;
        }
        return make_response(200, "{}", "application/json");
      });
  Config config;
  config.tracking_uri = server.url("");
  config.timeout = 300ms;
  config.backoff = 10ms;
  std::vector<std::string> warnings;
  Client client(config, [&](const std::string& w) { warnings.push_back(w); });
  value_of(run(client.update_run("abc", "FINISHED", now_ms())));
  CHECK(calls == 3);
  REQUIRE(warnings.size() == 2);
  CHECK(warnings[0].find("timed out after 300ms") != std::string::npos);
  CHECK(warnings[1].find("runs/update failed while") != std::string::npos);
  // Out of retries, the last error is the answer.
  config.max_retries = 0;
  calls = 0;
  Client impatient(config);
  const auto error = error_of(run(impatient.update_run("abc", "FINISHED", now_ms())));
  CHECK(error.kind == ErrorKind::timeout);
}

TEST_CASE("MlflowFaults.plain-text auth answers are parsed and not retried" *
          doctest::timeout(30)) {
  TestHttpServer server([](const RecordedRequest&) {
    return std::optional(make_response(401, "You are not authenticated. Please see the docs."));
  });
  Config config;
  config.tracking_uri = server.url("");
  Client client(config);
  const auto error = error_of(run(client.get_run("abc")));
  CHECK(error.kind == ErrorKind::auth);
  CHECK(error.error_code == "UNAUTHENTICATED");
  CHECK(error.message.find("You are not authenticated") != std::string::npos);
  CHECK(server.requests().size() == 1);
}

TEST_CASE("MlflowFaults.a lost runs/create answer finds the run instead of making another" *
          doctest::timeout(30)) {
  std::atomic<int> creates = 0;
  std::atomic<bool> created = false;
  TestHttpServer server([&](const RecordedRequest& request) {
    if (request.target == "/api/2.0/mlflow/runs/search") {
      const std::string runs =
          created ? R"({"runs":[{"info":{"run_id":"r-made"}}]})" : std::string("{}");
      return std::optional(make_response(200, runs, "application/json"));
    }
    ++creates;
    created = true;  // made, but the answer is lost
    return std::optional(make_response(502, "Bad Gateway"));
  });
  Config config;
  config.tracking_uri = server.url("");
  config.backoff = 10ms;
  Client client(config);
  const auto id = value_of(run(client.create_run(
      "1", "train", now_ms(), {}, {{"podflow.run_id", "r1"}, {"podflow.task", "t"}})));
  CHECK(id == "r-made");
  CHECK(creates == 1);
  const auto search = Json::parse(server.requests().front().body);
  CHECK(search["filter"] == "tags.`podflow.run_id` = 'r1' and tags.`podflow.task` = 't'");
}

TEST_CASE(
    "MlflowFaults.HTTPS is verified; a CA file or MLFLOW_TRACKING_INSECURE_TLS admit a "
    "private certificate" *
    doctest::timeout(30)) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("podflow-mlflow-tls-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto cert = podflow::testing::make_cert(dir, "server");
  boost::asio::ssl::context tls(boost::asio::ssl::context::tls_server);
  tls.use_certificate_chain_file(cert.cert.string());
  tls.use_private_key_file(cert.key.string(), boost::asio::ssl::context::pem);
  TestHttpServer server(
      [](const RecordedRequest&) {
        return std::optional(
            make_response(200, R"({"run":{"info":{"run_id":"abc"}}})", "application/json"));
      },
      &tls);
  Config config;
  config.tracking_uri = server.url("");
  REQUIRE(config.tracking_uri.starts_with("https://"));
  config.max_retries = 0;
  config.token = "tok-secret-1234";
  const auto refused = error_of(run(Client(config).get_run("abc")));
  CHECK(refused.kind == ErrorKind::network);
  CHECK(refused.message.find("certificate verify failed") != std::string::npos);
  CHECK(server.requests().empty());  // the token never left over an unverified connection

  config.ca_file = cert.cert.string();  // MLFLOW_TRACKING_SERVER_CERT_PATH
  CHECK(value_of(run(Client(config).get_run("abc")))["info"]["run_id"] == "abc");
  config.ca_file.clear();
  config.insecure_tls = true;  // MLFLOW_TRACKING_INSECURE_TLS=true
  CHECK(value_of(run(Client(config).get_run("abc")))["info"]["run_id"] == "abc");
  CHECK(server.requests().back().headers.at("authorization") == "Bearer tok-secret-1234");
  std::filesystem::remove_all(dir);
}

TEST_CASE("MlflowFaults.a lost experiment creation race reads the winner's experiment" *
          doctest::timeout(30)) {
  std::atomic<int> lookups = 0;
  TestHttpServer server([&](const RecordedRequest& request) {
    if (request.target.starts_with("/api/2.0/mlflow/experiments/get-by-name")) {
      if (++lookups == 1) {
        return std::optional(make_response(
            404, R"({"error_code":"RESOURCE_DOES_NOT_EXIST","message":"no such experiment"})",
            "application/json"));
      }
      return std::optional(
          make_response(200, R"({"experiment":{"experiment_id":"7","lifecycle_stage":"active"}})",
                        "application/json"));
    }
    // Another client created it between our lookup and our create.
    return std::optional(make_response(
        400,
        R"({"error_code":"RESOURCE_ALREADY_EXISTS","message":"Experiment(name=x) already exists"})",
        "application/json"));
  });
  Config config;
  config.tracking_uri = server.url("");
  CHECK(value_of(run(Client(config).get_or_create_experiment("x"))) == "7");
  CHECK(lookups == 2);
}

TEST_CASE("MlflowFaults.a lost runs/create answer with a failing search creates nothing more" *
          doctest::timeout(30)) {
  std::atomic<int> creates = 0;
  TestHttpServer server([&](const RecordedRequest& request) {
    if (request.target == "/api/2.0/mlflow/runs/search" && creates == 0) {
      return std::optional(make_response(200, "{}", "application/json"));
    }
    if (request.target == "/api/2.0/mlflow/runs/search") {
      return std::optional(make_response(500, "database is locked"));
    }
    ++creates;
    return std::optional(make_response(504, "Gateway Timeout"));
  });
  Config config;
  config.tracking_uri = server.url("");
  config.backoff = 10ms;
  config.max_retries = 3;
  Client patient(config);
  // The create may have happened: with the search failing there is no telling, so it stops.
  const auto error = error_of(run(patient.create_run(
      "1", "train", now_ms(), {}, {{"podflow.run_id", "r1"}, {"podflow.task", "t"}})));
  CHECK(creates == 1);
  CHECK(error.message.find("database is locked") != std::string::npos);
}

TEST_CASE("MlflowServer.experiments are created once, even when asked twice" *
          doctest::timeout(60)) {
  Client client(real_server());
  const std::string name = unique("podflow-exp");
  const auto first = value_of(run(client.get_or_create_experiment(name)));
  const auto second = value_of(run(client.get_or_create_experiment(name)));
  CHECK_FALSE(first.empty());
  CHECK(first == second);
  // One made by another client is found, not made again.
  const std::string theirs = unique("podflow-theirs");
  const Json made =
      value_of(run(client.call("POST", "experiments/create", Json{{"name", theirs}})));
  CHECK(value_of(run(client.get_or_create_experiment(theirs))) == made["experiment_id"]);
}

TEST_CASE("MlflowServer.a run with tags, params, metric history and final status" *
          doctest::timeout(120)) {
  Client client(real_server());
  const auto experiment = value_of(run(client.get_or_create_experiment(unique("podflow-runs"))));
  const std::int64_t start = now_ms();
  const KeyValues identity = {{"podflow.run_id", unique("run")}, {"podflow.task", "mlflow_log"}};
  const auto run_id = value_of(
      run(client.create_run(experiment, "train-a40", start,
                            {{"mlflow.user", "podflow"}, {"mlflow.source.name", "wf"}}, identity)));
  // Idempotent: the same identity finds the same run.
  CHECK(value_of(run(client.create_run(experiment, "train-a40", start, {}, identity))) == run_id);

  std::vector<Metric> metrics;
  for (int step = 0; step < 1200; ++step) {
    metrics.push_back({"training_accuracy", 0.5 + step / 2400.0, start + step, step});
  }
  metrics.push_back({"validation_loss", std::nan(""), start, 0});
  KeyValues params = {{"learning_rate", "5e-05"}, {"batch_size", "16"}};
  for (int i = 0; i < 120; ++i) params.emplace_back("extra_" + std::to_string(i), "x");
  value_of(run(client.log_batch(run_id, metrics, params, {{"gpu", "NVIDIA A40"}})));
  value_of(run(client.update_run(run_id, "FINISHED", start + 5000)));

  const Json got = value_of(run(client.get_run(run_id)));
  CHECK(got["info"]["status"] == "FINISHED");
  CHECK(got["info"]["start_time"] == start);
  CHECK(got["info"]["end_time"] == start + 5000);
  CHECK(got["info"]["run_name"] == "train-a40");
  const auto run_params = as_map(got["data"]["params"]);
  CHECK(run_params.size() == 122);
  CHECK(run_params.at("learning_rate") == "5e-05");
  const auto run_tags = as_map(got["data"]["tags"]);
  CHECK(run_tags.at("podflow.task") == "mlflow_log");
  CHECK(run_tags.at("mlflow.user") == "podflow");
  CHECK(run_tags.at("gpu") == "NVIDIA A40");
  const auto history = value_of(run(client.metric_history(run_id, "training_accuracy")));
  REQUIRE(history.size() == 1200);
  std::set<std::int64_t> steps;
  for (const auto& point : history) steps.insert(point.step);
  CHECK(steps.size() == 1200);
  CHECK(*steps.rbegin() == 1199);
  const auto loss = value_of(run(client.metric_history(run_id, "validation_loss")));
  REQUIRE(loss.size() == 1);
  CHECK(std::isnan(loss[0].value));

  // Params are immutable: a changed value is refused with MLflow's own words.
  const auto changed = error_of(run(client.log_batch(run_id, {}, {{"learning_rate", "0.1"}}, {})));
  CHECK(changed.kind == ErrorKind::client);
  CHECK(changed.error_code == "INVALID_PARAMETER_VALUE");
  CHECK(changed.message.find("Changing param values is not allowed") != std::string::npos);
}

TEST_CASE("MlflowServer.errors carry MLflow's error code" * doctest::timeout(60)) {
  Client client(real_server());
  const auto missing = error_of(run(client.get_run("0123456789abcdef0123456789abcdef")));
  CHECK(missing.http_status == 404);
  CHECK(missing.error_code == "RESOURCE_DOES_NOT_EXIST");
  CHECK(missing.kind == ErrorKind::client);
}
