// One HTTP or HTTPS exchange with Boost.Beast, as an awaitable: the client under the http operator
// and the RunPod client.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "podflow/engine/error.hpp"

namespace podflow::net {

// Whether http:// may leave the machine. API clients that send a bearer key use loopback_only, so
// a mistyped URL never sends the key in clear text over the network.
enum class PlainHttp { anywhere, loopback_only };

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string url;  // http:// or https://, no user:password@
  Headers headers;  // sent as given; values never appear in messages
  std::optional<std::string> body;
  // Covers resolve, connect, TLS handshake, write and read (for a stream: until the head arrives).
  std::chrono::milliseconds timeout{30000};
  std::size_t body_limit = std::size_t{10} * 1024 * 1024;
  PlainHttp plain_http = PlainHttp::anywhere;
  // HTTPS trust: these CA certificates (PEM) instead of PODFLOW_CA_FILE or the system's; or, with
  // TlsVerify::off, no verification at all (only for a user who asked, as
  // MLFLOW_TRACKING_INSECURE_TLS does).
  std::string ca_file;
  enum class TlsVerify { on, off } tls_verify = TlsVerify::on;
};

struct Response {
  unsigned status = 0;
  std::string reason;
  Headers headers;   // names lower-case, in the order received
  std::string body;  // empty for a streamed 2xx body (it went to the chunk callback)

  // The first header with that (lower-case) name.
  std::optional<std::string> header(std::string_view lower_name) const;
  // Retry-After in its delta-seconds form; the HTTP-date form (rare from APIs) is not read.
  std::optional<std::chrono::milliseconds> retry_after() const;
};

enum class FailureKind {
  bad_url,      // the URL cannot be used (syntax, scheme, credentials)
  plain_http,   // http:// to a host that is not a loopback address, with loopback_only
  tls_setup,    // the CA certificates cannot be loaded
  bad_ca_file,  // PODFLOW_CA_FILE names a file that is not PEM certificates
  network,      // DNS, refused, reset, TLS handshake or verification
  body_limit,   // the body is larger than Request::body_limit
  timeout,      // the deadline passed
  cancelled,    // the caller's cancellation slot fired
};

struct Failure {
  FailureKind kind;
  std::string stage;   // what the exchange was doing: "connecting to host:443" ...
  std::string detail;  // the cause, e.g. "Connection refused"; empty for timeout and cancelled

  // "failed while <stage>: <detail>", "timed out after 2s while <stage>", "cancelled while ...".
  std::string describe(std::chrono::milliseconds timeout) const;
};

using Result = std::variant<Response, Failure>;

// The error kind of a failed exchange for API clients: a URL or CA file that can never work is
// bad_input; the rest is network, timeout or cancelled.
engine::ErrorKind error_kind(FailureKind kind);

// Performs one exchange (Connection: close, no redirects followed). Runs on the caller's executor
// (use a strand on multi-threaded contexts); the caller's cancellation slot aborts it.
boost::asio::awaitable<Result> fetch(Request request);

// Receives a 2xx body as it arrives; returns false to end the stream early (a success).
using ChunkSink = std::function<bool(std::string_view chunk)>;

// Like fetch, but a 2xx body goes to `sink` chunk by chunk, with `read_timeout` allowed between two
// chunks (a stream that stays silent longer fails with FailureKind::timeout). Other statuses are
// read whole into Response::body.
boost::asio::awaitable<Result> fetch_stream(Request request, ChunkSink sink,
                                            std::chrono::milliseconds read_timeout);

// ASCII lower case, for header names, schemes and media types.
std::string ascii_lower(std::string_view text);

}  // namespace podflow::net
