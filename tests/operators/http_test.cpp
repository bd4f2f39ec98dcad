// Tests of the http operator against an in-process HTTP(S) server that records what it received.
#include <doctest/doctest.h>

#include <cstdlib>
#include <future>

#include "http_test_server.hpp"
#include "operator_runner.hpp"
#include "operators/core/core_operators.hpp"

namespace {

using namespace std::chrono_literals;
using podflow::Json;
using podflow::engine::ErrorKind;
using podflow::engine::TaskContext;
using podflow::engine::TaskOutcome;
using podflow::testing::make_cert;
using podflow::testing::make_response;
using podflow::testing::OperatorRun;
using podflow::testing::RecordedRequest;
using podflow::testing::RecordingLog;
using podflow::testing::TempDir;
using podflow::testing::TestHttpServer;
using podflow::testing::TestResponse;

struct HttpFixture {
  TempDir dir;
  std::shared_ptr<RecordingLog> log = std::make_shared<RecordingLog>();

  TaskContext context(Json args) const {
    TaskContext ctx;
    ctx.run_id = "run-1";
    ctx.task_id = "call";
    ctx.args = std::move(args);
    ctx.log = log;
    ctx.scratch_dir = dir.path();
    return ctx;
  }

  TaskOutcome run(Json args, podflow::operators::HttpOptions options = {}) const {
    auto op = podflow::operators::make_http_operator(options);
    OperatorRun running(*op, context(std::move(args)));
    auto outcome = running.wait();
    return outcome;
  }
};

std::optional<TestResponse> reply(unsigned status, std::string body = "") {
  return make_response(status, std::move(body));
}

// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    ::setenv(name, value.c_str(), 1);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

TEST_CASE("Http.get_returns_status_headers_and_body" * doctest::timeout(30)) {
  HttpFixture f;
  TestHttpServer server([](const RecordedRequest&) {
    auto response = make_response(200, "hello");
    response.set("X-Trace", "abc");
    return std::optional<TestResponse>(response);
  });
  const auto outcome =
      f.run(Json{{"url", server.url("/path?q=1")},
                 {"headers", {{"X-Api-Key", "k1"}, {"Authorization", "Bearer sekrit-value"}}}});
  REQUIRE_MESSAGE(!outcome.error, podflow::testing::error_text(outcome));
  CHECK(outcome.outputs["status"] == 200);
  CHECK(outcome.outputs["body"] == "hello");
  CHECK(outcome.outputs["headers"]["x-trace"] == "abc");
  CHECK(outcome.outputs["json"].is_null());

  const auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].method == "GET");
  CHECK(requests[0].target == "/path?q=1");
  CHECK(requests[0].headers.at("x-api-key") == "k1");
  CHECK(requests[0].headers.at("authorization") == "Bearer sekrit-value");
  CHECK(requests[0].headers.at("host") == "127.0.0.1:" + std::to_string(server.port()));

  const auto log = f.log->text();
  CHECK(log.find("GET " + server.url("/path?q=1") + " -> 200 OK (") != std::string::npos);
  CHECK(log.find("sekrit") == std::string::npos);
}

TEST_CASE("Http.post_json_sends_body_and_parses_json_response" * doctest::timeout(30)) {
  HttpFixture f;
  TestHttpServer server([](const RecordedRequest&) {
    return std::optional<TestResponse>(
        make_response(201, R"({"id": 7, "tags": ["a"]})", "application/json; charset=utf-8"));
  });
  const auto outcome = f.run(
      Json{{"method", "post"}, {"url", server.url("/items")}, {"json", {{"name", "x"}, {"n", 1}}}});
  REQUIRE_MESSAGE(!outcome.error, podflow::testing::error_text(outcome));
  CHECK(outcome.outputs["status"] == 201);
  CHECK(outcome.outputs["json"] == Json{{"id", 7}, {"tags", {"a"}}});

  const auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].headers.at("content-type") == "application/json");
  CHECK(Json::parse(requests[0].body) == Json{{"name", "x"}, {"n", 1}});
}

TEST_CASE("Http.raw_body_is_sent_as_is" * doctest::timeout(30)) {
  HttpFixture f;
  TestHttpServer server([](const RecordedRequest&) { return reply(204); });
  const auto outcome = f.run(Json{{"method", "PUT"},
                                  {"url", server.url("/raw")},
                                  {"headers", {{"Content-Type", "text/csv"}}},
                                  {"body", "a,b\n1,2\n"}});
  REQUIRE_MESSAGE(!outcome.error, podflow::testing::error_text(outcome));
  CHECK(outcome.outputs["status"] == 204);
  const auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].method == "PUT");
  CHECK(requests[0].body == "a,b\n1,2\n");
  CHECK(requests[0].headers.at("content-type") == "text/csv");
}

TEST_CASE("Http.json_and_body_together_is_bad_input" * doctest::timeout(30)) {
  HttpFixture f;
  const auto outcome =
      f.run(Json{{"url", "http://127.0.0.1:1/"}, {"json", {{"a", 1}}}, {"body", "x"}});
  REQUIRE(outcome.error.has_value());
  CHECK(outcome.error->kind == ErrorKind::bad_input);
}

TEST_CASE("Http.bad_urls_are_bad_input" * doctest::timeout(30)) {
  HttpFixture f;
  for (const char* url : {"not a url", "ftp://example.com/file", "http://user:pw@example.com/"}) {
    CAPTURE(url);
    const auto outcome = f.run(Json{{"url", url}});
    REQUIRE(outcome.error.has_value());
    CHECK(outcome.error->kind == ErrorKind::bad_input);
  }
}

TEST_CASE("Http.unexpected_status_maps_to_error_kinds" * doctest::timeout(30)) {
  struct Case {
    unsigned status;
    ErrorKind kind;
  };
  for (const Case c :
       {Case{500, ErrorKind::server}, Case{503, ErrorKind::server},
        Case{429, ErrorKind::rate_limited}, Case{404, ErrorKind::client},
        Case{400, ErrorKind::client}, Case{401, ErrorKind::auth}, Case{403, ErrorKind::auth},
        Case{408, ErrorKind::timeout}, Case{302, ErrorKind::client}}) {
    CAPTURE(c.status);
    HttpFixture f;
    TestHttpServer server([&](const RecordedRequest&) {
      auto response = make_response(c.status, "details of " + std::to_string(c.status));
      if (c.status == 429) response.set("Retry-After", "7");
      return std::optional<TestResponse>(response);
    });
    const auto outcome = f.run(Json{{"url", server.url("/x")}});
    REQUIRE(outcome.error.has_value());
    CHECK(outcome.error->kind == c.kind);
    const auto& message = outcome.error->message;
    CHECK(message.find("GET " + server.url("/x") + " returned " + std::to_string(c.status)) == 0);
    CHECK(message.find("details of " + std::to_string(c.status)) != std::string::npos);
    if (c.status == 429) {
      CHECK(message.find("Retry-After: 7") != std::string::npos);
      // The executor waits at least this long before the next try.
      CHECK(outcome.error->retry_after == std::chrono::milliseconds(7000));
    } else {
      CHECK_FALSE(outcome.error->retry_after.has_value());
    }
  }
}

TEST_CASE("Http.expect_status_accepts_listed_codes_only" * doctest::timeout(30)) {
  HttpFixture f;
  TestHttpServer server([](const RecordedRequest& request) {
    return reply(request.target == "/missing" ? 404 : 200, "body");
  });
  auto listed =
      f.run(Json{{"url", server.url("/missing")}, {"expect_status", Json::array({200, 404})}});
  REQUIRE_MESSAGE(!listed.error, podflow::testing::error_text(listed));
  CHECK(listed.outputs["status"] == 404);

  auto single = f.run(Json{{"url", server.url("/ok")}, {"expect_status", 201}});
  REQUIRE(single.error.has_value());
  CHECK(single.error->kind == ErrorKind::client);

  auto invalid = f.run(Json{{"url", server.url("/ok")}, {"expect_status", "200"}});
  REQUIRE(invalid.error.has_value());
  CHECK(invalid.error->kind == ErrorKind::bad_input);
}

TEST_CASE("Http.server_that_never_answers_times_out" * doctest::timeout(30)) {
  HttpFixture f;
  TestHttpServer server([](const RecordedRequest&) { return std::optional<TestResponse>(); });
  const auto started = std::chrono::steady_clock::now();
  const auto outcome = f.run(Json{{"url", server.url("/slow")}, {"timeout", "300ms"}});
  REQUIRE(outcome.error.has_value());
  CHECK(outcome.error->kind == ErrorKind::timeout);
  CHECK(outcome.error->message.find("timed out after 300ms while reading the response") !=
        std::string::npos);
  CHECK(std::chrono::steady_clock::now() - started < 5s);
}

TEST_CASE("Http.timeout_accepts_a_number_of_seconds" * doctest::timeout(30)) {
  HttpFixture f;
  TestHttpServer server([](const RecordedRequest&) { return std::optional<TestResponse>(); });
  const auto outcome = f.run(Json{{"url", server.url("/slow")}, {"timeout", 1}});
  REQUIRE(outcome.error.has_value());
  CHECK(outcome.error->kind == ErrorKind::timeout);
  CHECK(outcome.error->message.find("timed out after 1s") != std::string::npos);

  const auto invalid = f.run(Json{{"url", server.url("/slow")}, {"timeout", "soon"}});
  REQUIRE(invalid.error.has_value());
  CHECK(invalid.error->kind == ErrorKind::bad_input);
}

TEST_CASE("Http.cancel_aborts_the_request_promptly" * doctest::timeout(30)) {
  HttpFixture f;
  std::promise<void> received;
  TestHttpServer server([&](const RecordedRequest&) {
    received.set_value();
    return std::optional<TestResponse>();
  });
  auto op = podflow::operators::make_http_operator();
  OperatorRun run(*op, f.context(Json{{"url", server.url("/slow")}, {"timeout", "30s"}}));
  REQUIRE(received.get_future().wait_for(10s) == std::future_status::ready);
  const auto cancelled_at = std::chrono::steady_clock::now();
  run.cancel();
  const auto outcome = run.wait();
  REQUIRE(outcome.error.has_value());
  CHECK(outcome.error->kind == ErrorKind::cancelled);
  CHECK(std::chrono::steady_clock::now() - cancelled_at < 2s);
}

TEST_CASE("Http.connection_refused_is_a_network_error" * doctest::timeout(30)) {
  HttpFixture f;
  // A port that was just free: bind, read the port, close.
  unsigned short port = 0;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = acceptor.local_endpoint().port();
  }
  const auto outcome = f.run(Json{{"url", "http://127.0.0.1:" + std::to_string(port) + "/"}});
  REQUIRE(outcome.error.has_value());
  CHECK(outcome.error->kind == ErrorKind::network);
  CHECK(outcome.error->message.find("connecting to 127.0.0.1:" + std::to_string(port)) !=
        std::string::npos);
}

TEST_CASE("Http.response_larger_than_the_limit_fails" * doctest::timeout(30)) {
  HttpFixture f;
  TestHttpServer server([](const RecordedRequest&) { return reply(200, std::string(5000, 'x')); });
  const auto outcome = f.run(Json{{"url", server.url("/big")}}, {.body_limit = 1000});
  REQUIRE(outcome.error.has_value());
  CHECK(outcome.error->kind == ErrorKind::task_failed);
  CHECK(outcome.error->message.find("larger than the limit") != std::string::npos);
}

TEST_CASE("Http.https_verifies_the_server_against_PODFLOW_CA_FILE" * doctest::timeout(30)) {
  HttpFixture f;
  const auto server_cert = make_cert(f.dir.path(), "server");
  const auto other_ca = make_cert(f.dir.path(), "other");
  boost::asio::ssl::context tls(boost::asio::ssl::context::tls_server);
  tls.use_certificate_chain_file(server_cert.cert.string());
  tls.use_private_key_file(server_cert.key.string(), boost::asio::ssl::context::pem);
  TestHttpServer server([](const RecordedRequest&) { return reply(200, "secure"); }, &tls);

  SUBCASE("trusted CA: by IP address and by host name (SNI)") {
    ScopedEnv ca("PODFLOW_CA_FILE", server_cert.cert.string());
    const auto by_ip = f.run(Json{{"url", server.url("/s")}});
    REQUIRE_MESSAGE(!by_ip.error, podflow::testing::error_text(by_ip));
    CHECK(by_ip.outputs["body"] == "secure");
    const auto by_name =
        f.run(Json{{"url", "https://localhost:" + std::to_string(server.port()) + "/s"}});
    REQUIRE_MESSAGE(!by_name.error, podflow::testing::error_text(by_name));
    CHECK(by_name.outputs["status"] == 200);
  }
  SUBCASE("untrusted CA: TLS verification fails as a network error") {
    ScopedEnv ca("PODFLOW_CA_FILE", other_ca.cert.string());
    const auto outcome = f.run(Json{{"url", server.url("/s")}});
    REQUIRE(outcome.error.has_value());
    CHECK(outcome.error->kind == ErrorKind::network);
    CHECK(outcome.error->message.find("TLS handshake") != std::string::npos);
    CHECK(outcome.error->message.find("certificate verify failed") != std::string::npos);
    CHECK(server.requests().empty());
  }
}

}  // namespace
