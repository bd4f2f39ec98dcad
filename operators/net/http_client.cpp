// HTTP/HTTPS exchange with Boost.Beast: one deadline over every step, TLS with peer and host-name
// verification and SNI, optional streaming of the body with a deadline per read.
//
// Asio cannot interrupt getaddrinfo, so a hanging name server delays the timeout until it gives up.
// HTTPS verifies the peer against the system CA paths, or against the file named by the environment
// variable PODFLOW_CA_FILE when it is set (it replaces the system CAs).
#include "operators/net/http_client.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <cctype>
#include <cstdlib>

#include "podflow/engine/duration.hpp"

namespace podflow::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace urls = boost::urls;
using tcp = asio::ip::tcp;
using asio::experimental::awaitable_operators::operator||;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kUserAgent = "podflow/0.1";

bool is_default_port(std::string_view scheme, std::uint16_t port) {
  return (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
}

// Where the exchange got to, so a failure or a timeout can say where it stopped.
struct Progress {
  std::string stage = "resolving the host";
};

struct Streaming {
  ChunkSink* sink = nullptr;  // null: read the body whole
  std::chrono::milliseconds read_timeout{0};
};

Failure network_failure(const Progress& progress, const beast::error_code& error,
                        std::size_t body_limit) {
  if (error == http::error::body_limit) {
    return {
        FailureKind::body_limit, progress.stage,
        "the response body is larger than the limit of " + std::to_string(body_limit) + " bytes"};
  }
  std::string text = error.message();
  // OpenSSL's reason ("certificate verify failed") is the useful part; it is in the message.
  if (error.category() == asio::error::get_ssl_category()) text = "TLS error: " + text;
  return {FailureKind::network, progress.stage, std::move(text)};
}

Response to_response(http::response_header<>& head) {
  Response out;
  out.status = head.result_int();
  out.reason = std::string(head.reason());
  for (const auto& field : head) {
    out.headers.emplace_back(ascii_lower(field.name_string()), std::string(field.value()));
  }
  return out;
}

template <typename Stream>
asio::awaitable<Result> write_and_read(Stream& stream, http::request<http::string_body>& request,
                                       std::size_t body_limit, Streaming streaming,
                                       asio::steady_timer& deadline, Progress& progress) {
  progress.stage = "sending the request";
  auto [write_error, written] =
      co_await http::async_write(stream, request, asio::as_tuple(asio::use_awaitable));
  (void)written;
  if (write_error) co_return network_failure(progress, write_error, body_limit);

  progress.stage = "reading the response";
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(body_limit);
  auto [head_error, head_read] =
      co_await http::async_read_header(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
  (void)head_read;
  if (head_error) co_return network_failure(progress, head_error, body_limit);

  const unsigned status = parser.get().result_int();
  if (streaming.sink && status >= 200 && status < 300) {
    // The stream may run for hours: no total limit, a deadline per read instead.
    parser.body_limit(boost::none);
    progress.stage = "reading the response stream";
    Response out = to_response(parser.get().base());
    bool keep_reading = true;
    while (keep_reading && !parser.is_done()) {
      deadline.expires_after(streaming.read_timeout);
      auto [read_error, read] = co_await http::async_read_some(stream, buffer, parser,
                                                               asio::as_tuple(asio::use_awaitable));
      (void)read;
      auto& body = parser.get().body();
      if (!body.empty()) {
        keep_reading = (*streaming.sink)(body);
        body.clear();
      }
      if (read_error) co_return network_failure(progress, read_error, body_limit);
    }
    co_return out;
  }

  auto [read_error, read] =
      co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
  (void)read;
  if (read_error) co_return network_failure(progress, read_error, body_limit);
  Response out = to_response(parser.get().base());
  out.body = std::move(parser.get().body());
  co_return out;
}

// Resolve, connect, (TLS handshake,) write, read. Cancellation (the deadline or the caller) aborts
// the pending step; the socket closes when the stream goes out of scope.
asio::awaitable<Result> exchange(const urls::url& url, PlainHttp plain_http,
                                 http::request<http::string_body>& request, ssl::context* tls,
                                 std::size_t body_limit, Streaming streaming,
                                 asio::steady_timer& deadline, Progress& progress) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto ex = co_await asio::this_coro::executor;
  const std::string host = url.host_address();
  const std::string port =
      url.has_port() ? std::string(url.port()) : std::string(tls ? "443" : "80");

  progress.stage = "resolving " + host;
  tcp::resolver resolver(ex);
  auto [resolve_error, endpoints] =
      co_await resolver.async_resolve(host, port, asio::as_tuple(asio::use_awaitable));
  if (resolve_error) co_return network_failure(progress, resolve_error, body_limit);
  if (!tls && plain_http == PlainHttp::loopback_only) {
    for (const auto& entry : endpoints) {
      if (!entry.endpoint().address().is_loopback()) {
        co_return Failure{FailureKind::plain_http, progress.stage,
                          "plain http:// is only allowed to loopback addresses and " + host +
                              " is not one; use https://"};
      }
    }
  }

  progress.stage = "connecting to " + host + ":" + port;
  beast::tcp_stream tcp_stream(ex);
  auto [connect_error, endpoint] =
      co_await tcp_stream.async_connect(endpoints, asio::as_tuple(asio::use_awaitable));
  (void)endpoint;
  if (connect_error) co_return network_failure(progress, connect_error, body_limit);
  if (!tls) {
    co_return co_await write_and_read(tcp_stream, request, body_limit, streaming, deadline,
                                      progress);
  }

  progress.stage = "doing the TLS handshake with " + host;
  beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *tls);
  beast::error_code ignored;
  if (url.host_type() == urls::host_type::name) {
    // SNI: servers hosting several names pick the certificate by it (not sent for IP addresses).
    // SSL_set_tlsext_host_name spelled out: the macro uses a C cast.
    if (SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(host.c_str())) != 1) {
      co_return network_failure(
          progress,
          beast::error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()),
          body_limit);
    }
  }
  if (SSL_CTX_get_verify_mode(tls->native_handle()) != SSL_VERIFY_NONE) {
    stream.set_verify_callback(ssl::host_name_verification(host), ignored);
  }
  auto [handshake_error] = co_await stream.async_handshake(ssl::stream_base::client,
                                                           asio::as_tuple(asio::use_awaitable));
  if (handshake_error) co_return network_failure(progress, handshake_error, body_limit);
  // No TLS close_notify: the request says Connection: close and waiting for a polite shutdown
  // from a misbehaving server would only add latency.
  co_return co_await write_and_read(stream, request, body_limit, streaming, deadline, progress);
}

// The outcome goes to `out` (operator|| would flatten a variant result into its own variant).
asio::awaitable<void> perform(const urls::url& url, PlainHttp plain_http,
                              http::request<http::string_body>& request, ssl::context* tls,
                              std::size_t body_limit, Streaming streaming,
                              asio::steady_timer& deadline, Progress& progress, Result& out) {
  out = co_await exchange(url, plain_http, request, tls, body_limit, streaming, deadline, progress);
}

// Ends when the deadline passes. A reader that moves the deadline (expires_after) wakes it early;
// it then waits for the new expiry.
asio::awaitable<void> watch(asio::steady_timer& deadline) {
  co_await asio::this_coro::throw_if_cancelled(false);
  for (;;) {
    auto [error] = co_await deadline.async_wait(asio::as_tuple(asio::use_awaitable));
    (void)error;
    if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
      co_return;
    if (deadline.expiry() <= Clock::now()) co_return;
  }
}

std::variant<std::optional<ssl::context>, Failure> make_tls(const urls::url& url,
                                                            const Request& request) {
  if (ascii_lower(url.scheme()) != "https") return std::optional<ssl::context>{};
  std::optional<ssl::context> tls(std::in_place, ssl::context::tls_client);
  if (request.tls_verify == Request::TlsVerify::off) {
    tls->set_verify_mode(ssl::verify_none);
    return tls;
  }
  beast::error_code ec;
  const std::string stage = "loading the CA certificates";
  const char* env_ca_file = std::getenv("PODFLOW_CA_FILE");
  const std::string ca_file = !request.ca_file.empty() ? request.ca_file
                              : env_ca_file            ? std::string(env_ca_file)
                                                       : std::string();
  if (!ca_file.empty()) {
    tls->load_verify_file(ca_file, ec);
    if (ec) {
      return Failure{
          FailureKind::bad_ca_file, stage,
          "CA file '" + ca_file + "' cannot be read as PEM certificates: " + ec.message()};
    }
  } else {
    tls->set_default_verify_paths(ec);
    if (ec) {
      return Failure{FailureKind::tls_setup, stage,
                     "cannot load the system CA certificates: " + ec.message()};
    }
  }
  tls->set_verify_mode(ssl::verify_peer);
  return tls;
}

asio::awaitable<Result> run(Request request, ChunkSink* sink,
                            std::chrono::milliseconds read_timeout) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto parsed = urls::parse_uri(request.url);
  if (!parsed) co_return Failure{FailureKind::bad_url, "reading the URL", "not a valid URL"};
  const urls::url url = *parsed;
  const auto scheme = ascii_lower(url.scheme());
  if (scheme != "http" && scheme != "https") {
    co_return Failure{FailureKind::bad_url, "reading the URL",
                      "must start with http:// or https://"};
  }
  if (url.host_address().empty())
    co_return Failure{FailureKind::bad_url, "reading the URL", "no host"};
  if (url.has_userinfo()) {
    co_return Failure{FailureKind::bad_url, "reading the URL",
                      "must not carry credentials (user:password@)"};
  }
  auto tls_or_failure = make_tls(url, request);
  if (auto* failure = std::get_if<Failure>(&tls_or_failure)) co_return *failure;
  auto& tls = std::get<0>(tls_or_failure);

  http::request<http::string_body> message(request.method, std::string(url.encoded_target()), 11);
  if (message.target().empty()) message.target("/");
  std::string host_header = std::string(url.encoded_host_and_port());
  if (url.has_port() && is_default_port(scheme, url.port_number())) {
    host_header = std::string(url.encoded_host());
  }
  message.set(http::field::host, host_header);
  message.set(http::field::user_agent, kUserAgent);
  message.keep_alive(false);
  for (const auto& [name, value] : request.headers) message.set(name, value);
  if (request.body) {
    message.body() = *request.body;
    message.prepare_payload();
  } else if (request.method == http::verb::post || request.method == http::verb::put ||
             request.method == http::verb::patch) {
    message.prepare_payload();  // Content-Length: 0, which some servers insist on
  }

  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer deadline(ex, request.timeout);
  Progress progress;
  const Streaming streaming{sink, read_timeout};
  Result result = Failure{FailureKind::cancelled, progress.stage, ""};
  auto which = co_await (perform(url, request.plain_http, message, tls ? &*tls : nullptr,
                                 request.body_limit, streaming, deadline, progress, result) ||
                         watch(deadline));
  if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none) {
    co_return Failure{FailureKind::cancelled, progress.stage, ""};
  }
  if (which.index() == 1) co_return Failure{FailureKind::timeout, progress.stage, ""};
  co_return result;
}

}  // namespace

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::optional<std::string> Response::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return std::nullopt;
}

engine::ErrorKind error_kind(FailureKind kind) {
  switch (kind) {
    case FailureKind::timeout:
      return engine::ErrorKind::timeout;
    case FailureKind::cancelled:
      return engine::ErrorKind::cancelled;
    case FailureKind::bad_url:
    case FailureKind::plain_http:
    case FailureKind::bad_ca_file:
      return engine::ErrorKind::bad_input;
    case FailureKind::tls_setup:
    case FailureKind::network:
    case FailureKind::body_limit:
      break;
  }
  return engine::ErrorKind::network;
}

std::optional<std::chrono::milliseconds> Response::retry_after() const {
  auto value = header("retry-after");
  if (!value || value->empty() || value->size() >= 9 ||
      value->find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::chrono::seconds(std::stol(*value));
}

std::string Failure::describe(std::chrono::milliseconds timeout) const {
  switch (kind) {
    case FailureKind::timeout:
      return "timed out after " + engine::format_duration(timeout) + " while " + stage;
    case FailureKind::cancelled:
      return "cancelled while " + stage;
    case FailureKind::bad_url:
    case FailureKind::plain_http:
    case FailureKind::tls_setup:
    case FailureKind::bad_ca_file:
    case FailureKind::network:
    case FailureKind::body_limit:
      break;
  }
  return "failed while " + stage + ": " + detail;
}

asio::awaitable<Result> fetch(Request request) {
  co_return co_await run(std::move(request), nullptr, std::chrono::milliseconds{0});
}

asio::awaitable<Result> fetch_stream(Request request, ChunkSink sink,
                                     std::chrono::milliseconds read_timeout) {
  co_return co_await run(std::move(request), &sink, read_timeout);
}

}  // namespace podflow::net
