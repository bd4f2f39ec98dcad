// http operator: makes one HTTP or HTTPS request with Boost.Beast and maps the outcome to error
// kinds.
//
// - One deadline (`timeout`) covers resolve, connect, TLS handshake, write and read. Asio cannot
//   interrupt getaddrinfo, so a hanging name server delays the timeout until it gives up.
// - HTTPS verifies the peer against the system CA paths, or against the file named by the
//   environment variable PODFLOW_CA_FILE when it is set (it replaces the system CAs).
// - Redirects are not followed: a 3xx is returned as is and fails unless expect_status lists it.
// - Credentials in the URL (user:pass@host) are refused: put them in an Authorization header, whose
//   value is never logged.
#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <cctype>
#include <cstdlib>

#include "operators/core/core_operators.hpp"
#include "podflow/engine/duration.hpp"

namespace podflow::operators {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace urls = boost::urls;
using tcp = asio::ip::tcp;
using asio::experimental::awaitable_operators::operator||;
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

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

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
  const auto scheme = lower(out.url.scheme());
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

bool is_default_port(std::string_view scheme, std::uint16_t port) {
  return (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
}

// What the request got to, so a failure or a timeout can say where it stopped.
struct Progress {
  std::string stage = "resolving the host";
};

struct Exchange {
  beast::error_code error;  // set when no response was read
  http::response<http::string_body> response;
};

template <typename Stream>
asio::awaitable<Exchange> write_and_read(Stream& stream, http::request<http::string_body>& request,
                                         std::size_t body_limit, Progress& progress) {
  Exchange out;
  progress.stage = "sending the request";
  auto [write_error, written] =
      co_await http::async_write(stream, request, asio::as_tuple(asio::use_awaitable));
  (void)written;
  if (write_error) {
    out.error = write_error;
    co_return out;
  }
  progress.stage = "reading the response";
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(body_limit);
  auto [read_error, read] =
      co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
  (void)read;
  if (read_error) {
    out.error = read_error;
    co_return out;
  }
  out.response = parser.release();
  co_return out;
}

// Resolve, connect, (TLS handshake,) write, read. Cancellation (the deadline or the run) aborts the
// pending step; the socket closes when the stream goes out of scope.
asio::awaitable<Exchange> perform(const HttpArgs& args, http::request<http::string_body>& request,
                                  ssl::context* tls, std::size_t body_limit, Progress& progress) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto ex = co_await asio::this_coro::executor;
  const std::string host = args.url.host_address();
  const std::string port =
      args.url.has_port() ? std::string(args.url.port()) : std::string(tls ? "443" : "80");
  Exchange out;

  progress.stage = "resolving " + host;
  tcp::resolver resolver(ex);
  auto [resolve_error, endpoints] =
      co_await resolver.async_resolve(host, port, asio::as_tuple(asio::use_awaitable));
  if (resolve_error) {
    out.error = resolve_error;
    co_return out;
  }

  progress.stage = "connecting to " + host + ":" + port;
  beast::tcp_stream tcp_stream(ex);
  auto [connect_error, endpoint] =
      co_await tcp_stream.async_connect(endpoints, asio::as_tuple(asio::use_awaitable));
  (void)endpoint;
  if (connect_error) {
    out.error = connect_error;
    co_return out;
  }
  if (!tls) co_return co_await write_and_read(tcp_stream, request, body_limit, progress);

  progress.stage = "doing the TLS handshake with " + host;
  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *tls);
  beast::error_code ignored;
  if (args.url.host_type() == urls::host_type::name) {
    // SNI: servers hosting several names pick the certificate by it (not sent for IP addresses).
    // SSL_set_tlsext_host_name spelled out: the macro uses a C cast.
    if (SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(host.c_str())) != 1) {
      out.error =
          beast::error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
      co_return out;
    }
  }
  stream.set_verify_callback(ssl::host_name_verification(host), ignored);
  auto [handshake_error] = co_await stream.async_handshake(ssl::stream_base::client,
                                                           asio::as_tuple(asio::use_awaitable));
  if (handshake_error) {
    out.error = handshake_error;
    co_return out;
  }
  // No TLS close_notify: the request says Connection: close and waiting for a polite shutdown
  // from a misbehaving server would only add latency.
  co_return co_await write_and_read(stream, request, body_limit, progress);
}

asio::awaitable<void> expire(asio::steady_timer& timer) {
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

// Error kind of a status the caller did not expect (DESIGN.md section 3).
ErrorKind kind_for_status(unsigned status) {
  if (status >= 500) return ErrorKind::server;
  if (status == 429) return ErrorKind::rate_limited;
  if (status == 401 || status == 403) return ErrorKind::auth;
  if (status == 408) return ErrorKind::timeout;
  return ErrorKind::client;
}

std::string snippet(std::string_view body) {
  if (body.size() <= kBodySnippet) return std::string(body);
  return std::string(body.substr(0, kBodySnippet)) + "...";
}

bool is_json_content_type(std::string_view content_type) {
  const auto type = lower(content_type.substr(0, content_type.find(';')));
  return type.find("/json") != std::string::npos || type.find("+json") != std::string::npos;
}

std::string describe_network_error(const beast::error_code& error, std::size_t body_limit) {
  if (error == http::error::body_limit) {
    return "the response body is larger than the limit of " + std::to_string(body_limit) + " bytes";
  }
  std::string text = error.message();
  if (error.category() == asio::error::get_ssl_category()) {
    // OpenSSL's reason ("certificate verify failed") is the useful part; it is in the message.
    text = "TLS error: " + text;
  }
  return text;
}

asio::awaitable<TaskOutcome> run_http(engine::TaskContext ctx, HttpOptions options) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto parsed = read_args(ctx.args);
  if (auto* error = std::get_if<engine::TaskError>(&parsed)) {
    co_return TaskOutcome{Json::object(), *error};
  }
  const auto args = std::get<HttpArgs>(std::move(parsed));
  const std::string method(http::to_string(args.method));
  const std::string url = display_url(args.url);
  const std::string what = method + " " + url;
  auto log = [&](const std::string& line) {
    if (ctx.log) ctx.log->write(line + "\n");
  };

  std::optional<ssl::context> tls;
  if (lower(args.url.scheme()) == "https") {
    tls.emplace(ssl::context::tls_client);
    beast::error_code ec;
    if (const char* ca_file = std::getenv("PODFLOW_CA_FILE"); ca_file && *ca_file) {
      tls->load_verify_file(ca_file, ec);
      if (ec) {
        co_return TaskOutcome::failure(ErrorKind::bad_input,
                                       std::string("PODFLOW_CA_FILE '") + ca_file +
                                           "' cannot be read as PEM certificates: " + ec.message());
      }
    } else {
      tls->set_default_verify_paths(ec);
      if (ec) {
        co_return TaskOutcome::failure(ErrorKind::network,
                                       "cannot load the system CA certificates: " + ec.message());
      }
    }
    tls->set_verify_mode(ssl::verify_peer);
  }

  http::request<http::string_body> request(args.method, std::string(args.url.encoded_target()), 11);
  if (request.target().empty()) request.target("/");
  std::string host_header = std::string(args.url.encoded_host_and_port());
  if (args.url.has_port() && is_default_port(lower(args.url.scheme()), args.url.port_number())) {
    host_header = std::string(args.url.encoded_host());
  }
  request.set(http::field::host, host_header);
  request.set(http::field::user_agent, kUserAgent);
  request.keep_alive(false);
  if (args.json_body) request.set(http::field::content_type, "application/json");
  for (const auto& [name, value] : args.headers) request.set(name, value);
  if (args.body) {
    request.body() = *args.body;
    request.prepare_payload();
  } else if (args.method == http::verb::post || args.method == http::verb::put ||
             args.method == http::verb::patch) {
    request.prepare_payload();  // Content-Length: 0, which some servers insist on
  }

  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer deadline(ex, args.timeout);
  Progress progress;
  const auto started = Clock::now();
  auto result =
      co_await (perform(args, request, tls ? &*tls : nullptr, options.body_limit, progress) ||
                expire(deadline));
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  const std::string took = " (" + std::to_string(elapsed.count()) + " ms)";

  if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none) {
    log(what + " cancelled while " + progress.stage + took);
    co_return TaskOutcome::failure(ErrorKind::cancelled, what + " cancelled");
  }
  if (result.index() == 1) {
    const std::string message = what + " timed out after " + engine::format_duration(args.timeout) +
                                " while " + progress.stage;
    log(message);
    co_return TaskOutcome::failure(ErrorKind::timeout, message);
  }
  auto& exchange = std::get<0>(result);
  if (exchange.error) {
    const std::string message = what + " failed while " + progress.stage + ": " +
                                describe_network_error(exchange.error, options.body_limit);
    log(message + took);
    const ErrorKind kind =
        exchange.error == http::error::body_limit ? ErrorKind::task_failed : ErrorKind::network;
    co_return TaskOutcome::failure(kind, message);
  }

  auto& response = exchange.response;
  const unsigned status = response.result_int();
  const std::string reason(response.reason());
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
      if (auto retry = response.find(http::field::retry_after); retry != response.end()) {
        const std::string value(retry->value());
        message += " (Retry-After: " + value + ")";
        // The delta-seconds form tells the executor how long the next try must wait; the
        // HTTP-date form only reaches the message.
        if (!value.empty() && value.size() < 9 &&
            value.find_first_not_of("0123456789") == std::string::npos) {
          retry_after = std::chrono::seconds(std::stol(value));
        }
      }
    }
    if (!response.body().empty()) message += ": " + snippet(response.body());
    co_return TaskOutcome{Json::object(),
                          engine::TaskError(kind_for_status(status), message, retry_after)};
  }

  Json headers = Json::object();
  for (const auto& field : response) {
    const auto name = lower(field.name_string());
    const std::string value(field.value());
    if (headers.contains(name)) {
      headers[name] = headers[name].get<std::string>() + ", " + value;
    } else {
      headers[name] = value;
    }
  }
  Json json = nullptr;
  if (auto type = response.find(http::field::content_type);
      type != response.end() && is_json_content_type(type->value())) {
    json = Json::parse(response.body(), nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) {
      log("response says it is JSON but does not parse; outputs.json is null");
      json = nullptr;
    }
  }
  co_return TaskOutcome::success(Json{{"status", status},
                                      {"headers", std::move(headers)},
                                      {"body", std::move(response.body())},
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
