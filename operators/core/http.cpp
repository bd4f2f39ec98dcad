// http operator: makes one HTTP or HTTPS request with Boost.Beast and maps the outcome to error
// kinds.
//
// - The exchange itself (one deadline over every step, TLS verification, PODFLOW_CA_FILE) is
//   podflow::net::fetch; this file reads the arguments and turns the answer into outputs.
// - Redirects are not followed: a 3xx is returned as is and fails unless expect_status lists it.
// - Credentials in the URL (user:pass@host) are refused: put them in an Authorization header, whose
//   value is never logged.
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <cctype>

#include "operators/core/core_operators.hpp"
#include "operators/net/http_client.hpp"
#include "podflow/engine/duration.hpp"

namespace podflow::operators {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace urls = boost::urls;
using engine::ErrorKind;
using engine::TaskOutcome;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kUserAgent = "podflow/0.1";
constexpr std::string_view kDefaultTimeout = "30s";
constexpr std::size_t kBodySnippet = 300;  // characters of the body quoted in error messages

struct HttpArgs {
  http::verb method = http::verb::get;
  urls::url url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::string> body;
  bool json_body = false;
  std::vector<unsigned> expect_status;  // empty: any 2xx
  std::chrono::milliseconds timeout{30000};
};

std::string upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

std::variant<HttpArgs, engine::TaskError> read_args(const Json& args) {
  auto bad = [](std::string message) {
    return engine::TaskError{ErrorKind::bad_input, std::move(message)};
  };
  auto present = [&](const char* key) -> const Json* {
    auto it = args.find(key);
    return it == args.end() || it->is_null() ? nullptr : &*it;
  };
  HttpArgs out;

  if (const Json* method = present("method")) {
    if (!method->is_string()) return bad("'method' must be a string like GET or POST");
    out.method = http::string_to_verb(upper(method->get<std::string>()));
    if (out.method == http::verb::unknown) {
      return bad("'method' " + method->get<std::string>() + " is not an HTTP method");
    }
  }

  const Json* url = present("url");
  if (!url || !url->is_string()) return bad("'url' must be a string like https://host/path");
  const std::string url_text = url->get<std::string>();  // parse_uri's view points into it
  auto parsed = urls::parse_uri(url_text);
  if (!parsed) return bad("'url' " + url_text + " is not a valid URL");
  out.url = *parsed;
  const auto scheme = net::ascii_lower(out.url.scheme());
  if (scheme != "http" && scheme != "https") {
    return bad("'url' " + url->get<std::string>() + " must start with http:// or https://");
  }
  if (out.url.host_address().empty())
    return bad("'url' " + url->get<std::string>() + " has no host");
  if (out.url.has_userinfo()) {
    return bad("'url' must not carry credentials (user:password@); send an Authorization header");
  }

  if (const Json* headers = present("headers")) {
    if (!headers->is_object()) return bad("'headers' must be a map of header names to strings");
    for (const auto& [name, value] : headers->items()) {
      if (value.is_string()) {
        out.headers.emplace_back(name, value.get<std::string>());
      } else if (value.is_number() || value.is_boolean()) {
        out.headers.emplace_back(name, value.dump());
      } else {
        return bad("'headers." + name + "' must be a string, not " + value.type_name());
      }
    }
  }

  const Json* json = present("json");
  const Json* body = present("body");
  if (json && body) return bad("'json' and 'body' cannot both be set: choose one");
  if (json) {
    out.body = json->dump();
    out.json_body = true;
  } else if (body) {
    if (!body->is_string()) return bad("'body' must be a string (use 'json' for structured data)");
    out.body = body->get<std::string>();
  }

  if (const Json* expect = present("expect_status")) {
    auto add = [&](const Json& code) {
      if (!code.is_number_integer() || code.get<long long>() < 100 || code.get<long long>() > 599) {
        return false;
      }
      out.expect_status.push_back(static_cast<unsigned>(code.get<long long>()));
      return true;
    };
    bool ok = true;
    if (expect->is_array()) {
      for (const auto& code : *expect) ok = ok && add(code);
      ok = ok && !expect->empty();
    } else {
      ok = add(*expect);
    }
    if (!ok) return bad("'expect_status' must be a status code (100-599) or a list of them");
  }

  const Json* timeout = present("timeout");
  if (timeout && timeout->is_number_integer()) {
    if (timeout->get<long long>() <= 0) return bad("'timeout' must be positive");
    out.timeout = std::chrono::seconds(timeout->get<long long>());
  } else {
    const std::string text = timeout && timeout->is_string() ? timeout->get<std::string>()
                                                             : std::string(kDefaultTimeout);
    auto duration = engine::parse_duration(text);
    if ((timeout && !timeout->is_string()) || !duration || duration->count() <= 0) {
      return bad("'timeout' must be a positive duration like 30s or 2m, or a number of seconds");
    }
    out.timeout = *duration;
  }
  return out;
}

// The URL as it may appear in logs and messages.
std::string display_url(const urls::url& url) { return std::string(url.buffer()); }

// Error kind of a status the caller did not expect (DESIGN.md section 3).
ErrorKind kind_for_status(unsigned status) {
  if (status >= 500) return ErrorKind::server;
  if (status == 429) return ErrorKind::rate_limited;
  if (status == 401 || status == 403) return ErrorKind::auth;
  if (status == 408) return ErrorKind::timeout;
  return ErrorKind::client;
}

ErrorKind kind_for_failure(net::FailureKind kind) {
  switch (kind) {
    case net::FailureKind::bad_url:
    case net::FailureKind::bad_ca_file:
      return ErrorKind::bad_input;
    case net::FailureKind::body_limit:
      return ErrorKind::task_failed;
    case net::FailureKind::timeout:
      return ErrorKind::timeout;
    case net::FailureKind::cancelled:
      return ErrorKind::cancelled;
    case net::FailureKind::plain_http:
    case net::FailureKind::tls_setup:
    case net::FailureKind::network:
      break;
  }
  return ErrorKind::network;
}

std::string snippet(std::string_view body) {
  if (body.size() <= kBodySnippet) return std::string(body);
  return std::string(body.substr(0, kBodySnippet)) + "...";
}

bool is_json_content_type(std::string_view content_type) {
  const auto type = net::ascii_lower(content_type.substr(0, content_type.find(';')));
  return type.find("/json") != std::string::npos || type.find("+json") != std::string::npos;
}

asio::awaitable<TaskOutcome> run_http(engine::TaskContext ctx, HttpOptions options) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto parsed = read_args(ctx.args);
  if (auto* error = std::get_if<engine::TaskError>(&parsed)) {
    co_return TaskOutcome{Json::object(), *error};
  }
  auto args = std::get<HttpArgs>(std::move(parsed));
  const std::string method(http::to_string(args.method));
  const std::string url = display_url(args.url);
  const std::string what = method + " " + url;
  auto log = [&](const std::string& line) {
    if (ctx.log) ctx.log->write(line + "\n");
  };

  net::Request request{.method = args.method,
                       .url = url,
                       .headers = {},
                       .body = std::move(args.body),
                       .timeout = args.timeout,
                       .body_limit = options.body_limit,
                       .plain_http = net::PlainHttp::anywhere,
                       .ca_file = {},
                       .tls_verify = net::Request::TlsVerify::on};
  if (args.json_body) request.headers.emplace_back("Content-Type", "application/json");
  for (auto& header : args.headers) request.headers.push_back(std::move(header));

  const auto started = Clock::now();
  auto result = co_await net::fetch(std::move(request));
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  const std::string took = " (" + std::to_string(elapsed.count()) + " ms)";

  if (auto* failure = std::get_if<net::Failure>(&result)) {
    std::string message = what + " " + failure->describe(args.timeout);
    if (failure->kind == net::FailureKind::bad_ca_file ||
        failure->kind == net::FailureKind::tls_setup) {
      message = failure->detail;
    } else if (failure->kind == net::FailureKind::cancelled) {
      log(message + took);
      message = what + " cancelled";
    } else {
      log(message + (failure->kind == net::FailureKind::timeout ? "" : took));
    }
    co_return TaskOutcome::failure(kind_for_failure(failure->kind), message);
  }

  auto& response = std::get<net::Response>(result);
  const unsigned status = response.status;
  const std::string& reason = response.reason;
  log(what + " -> " + std::to_string(status) + (reason.empty() ? "" : " " + reason) + took);

  const bool expected = args.expect_status.empty()
                            ? status >= 200 && status < 300
                            : std::find(args.expect_status.begin(), args.expect_status.end(),
                                        status) != args.expect_status.end();
  if (!expected) {
    std::string message = what + " returned " + std::to_string(status);
    if (!reason.empty()) message += " " + reason;
    std::optional<std::chrono::milliseconds> retry_after;
    if (status == 429 || status == 503) {
      if (auto value = response.header("retry-after")) {
        message += " (Retry-After: " + *value + ")";
        // The delta-seconds form tells the executor how long the next try must wait; the
        // HTTP-date form only reaches the message.
        retry_after = response.retry_after();
      }
    }
    if (!response.body.empty()) message += ": " + snippet(response.body);
    co_return TaskOutcome{Json::object(),
                          engine::TaskError(kind_for_status(status), message, retry_after)};
  }

  Json headers = Json::object();
  for (const auto& [name, value] : response.headers) {
    if (headers.contains(name)) {
      headers[name] = headers[name].get<std::string>() + ", " + value;
    } else {
      headers[name] = value;
    }
  }
  Json json = nullptr;
  if (auto type = response.header("content-type"); type && is_json_content_type(*type)) {
    json = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) {
      log("response says it is JSON but does not parse; outputs.json is null");
      json = nullptr;
    }
  }
  co_return TaskOutcome::success(Json{{"status", status},
                                      {"headers", std::move(headers)},
                                      {"body", std::move(response.body)},
                                      {"json", std::move(json)}});
}

engine::OperatorSchema make_schema() {
  using engine::ArgSpec;
  using engine::ValueType;
  auto arg = [](std::string name, ValueType type, bool required, std::optional<Json> default_value,
                std::string description) {
    return ArgSpec{.name = std::move(name),
                   .type = type,
                   .required = required,
                   .default_value = std::move(default_value),
                   .description = std::move(description)};
  };
  engine::OperatorSchema schema;
  schema.args = {
      arg("method", ValueType::string, false, Json("GET"), "HTTP method."),
      arg("url", ValueType::string, true, std::nullopt, "http:// or https:// URL."),
      arg("headers", ValueType::object, false, std::nullopt, "Request headers (name: value)."),
      arg("json", ValueType::any, false, std::nullopt,
          "Sent as the JSON body with Content-Type: application/json."),
      arg("body", ValueType::string, false, std::nullopt, "Raw request body (not with json)."),
      arg("expect_status", ValueType::any, false, std::nullopt,
          "Accepted status code or list of codes; default: any 2xx. Redirects are not followed."),
      arg("timeout", ValueType::duration, false, Json(std::string(kDefaultTimeout)),
          "Deadline for the whole request: resolve, connect, TLS, send, receive."),
  };
  schema.outputs = {"status", "headers", "body", "json"};
  return schema;
}

class HttpOperator final : public engine::Operator {
 public:
  explicit HttpOperator(HttpOptions options) : options_(options) {}

  std::string_view name() const override { return "http"; }
  const engine::OperatorSchema& schema() const override { return schema_; }

  asio::awaitable<TaskOutcome> execute(engine::TaskContext ctx) const override {
    // On a strand, so the request and its deadline never run on two threads at once.
    auto strand = asio::make_strand(co_await asio::this_coro::executor);
    co_return co_await asio::co_spawn(strand, run_http(std::move(ctx), options_),
                                      asio::use_awaitable);
  }

 private:
  HttpOptions options_;
  engine::OperatorSchema schema_ = make_schema();
};

}  // namespace

std::shared_ptr<const engine::Operator> make_http_operator(HttpOptions options) {
  return std::make_shared<HttpOperator>(options);
}

}  // namespace podflow::operators
