// An in-process HTTP(S) server on 127.0.0.1:<ephemeral> that records requests, for tests of the
// http operator and the RunPod client.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace podflow::testing {

struct RecordedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

using TestResponse = boost::beast::http::response<boost::beast::http::string_body>;
inline constexpr const char* kHoldOpenHeader = "X-Test-Hold-Open";
// A response carrying this header is never sent: the server closes the connection instead, as a
// proxy or a crashing server does mid-request.
inline constexpr const char* kDropHeader = "X-Test-Drop";
// Returns the response to send, or nullopt to never answer (the connection stays open).
using TestHandler = std::function<std::optional<TestResponse>(const RecordedRequest&)>;

inline TestResponse make_response(unsigned status, std::string body,
                                  std::string content_type = "text/plain") {
  TestResponse response(static_cast<boost::beast::http::status>(status), 11);
  response.set(boost::beast::http::field::content_type, content_type);
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

// A response whose body ends at connection close, and whose connection the server then keeps open
// until the client closes it: a stream that goes silent after `body`.
inline TestResponse make_held_open_response(std::string body,
                                            std::string content_type = "text/event-stream") {
  TestResponse response(boost::beast::http::status::ok, 11);
  response.set(boost::beast::http::field::content_type, content_type);
  response.set(kHoldOpenHeader, "1");
  response.body() = std::move(body);
  return response;
}

// A self-signed certificate for localhost and 127.0.0.1 (it is its own CA), made with the openssl
// command line tool.
struct SelfSignedCert {
  std::filesystem::path cert;
  std::filesystem::path key;
};

inline SelfSignedCert make_cert(const std::filesystem::path& dir, const std::string& name) {
  SelfSignedCert out{dir / (name + ".crt"), dir / (name + ".key")};
  const std::string command =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
      " -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
      " -keyout '" +
      out.key.string() + "' -out '" + out.cert.string() + "' 2>/dev/null";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("openssl req failed");
  return out;
}

class TestHttpServer {
 public:
  // With `tls`, connections are HTTPS with that server context.
  explicit TestHttpServer(TestHandler handler, boost::asio::ssl::context* tls = nullptr)
      : handler_(std::move(handler)), tls_(tls) {
    namespace asio = boost::asio;
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;
  ~TestHttpServer() {
    io_.stop();
    thread_.join();
  }

  unsigned short port() const { return port_; }
  std::string url(std::string_view path = "/") const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) +
           std::string(path);
  }
  std::vector<RecordedRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  boost::asio::awaitable<void> accept_loop() {
    namespace asio = boost::asio;
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(io_, session(std::move(socket)), asio::detached);
    }
  }

  boost::asio::awaitable<void> session(boost::asio::ip::tcp::socket socket) {
    namespace asio = boost::asio;
    boost::beast::tcp_stream stream(std::move(socket));
    if (!tls_) {
      co_await serve(stream);
      co_return;
    }
    boost::beast::ssl_stream<boost::beast::tcp_stream> secure(std::move(stream), *tls_);
    auto [ec] = co_await secure.async_handshake(asio::ssl::stream_base::server,
                                                asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;  // e.g. the client rejected our certificate
    co_await serve(secure);
  }

  template <typename Stream>
  boost::asio::awaitable<void> serve(Stream& stream) {
    namespace asio = boost::asio;
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> request;
    auto [ec, n] =
        co_await http::async_read(stream, buffer, request, asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    RecordedRequest recorded{
        std::string(request.method_string()), std::string(request.target()), {}, request.body()};
    for (const auto& field : request) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      recorded.headers[name] = std::string(field.value());
    }
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(recorded);
    }
    auto response = handler_(recorded);
    if (!response) {
      // Never answer: wait until the client gives up and closes the connection.
      co_await http::async_read(stream, buffer, request, asio::as_tuple(asio::use_awaitable));
      co_return;
    }
    if (response->find(kDropHeader) != response->end()) {
      boost::beast::error_code ignored;
      boost::beast::get_lowest_layer(stream).socket().shutdown(asio::ip::tcp::socket::shutdown_both,
                                                               ignored);
      co_return;
    }
    const bool hold_open = response->find(kHoldOpenHeader) != response->end();
    response->keep_alive(false);
    if (hold_open) {
      // Head and body go out; the body has no length, so the client keeps waiting for more.
      response->erase(kHoldOpenHeader);
      http::response_serializer<http::string_body> serializer(*response);
      co_await http::async_write(stream, serializer, asio::as_tuple(asio::use_awaitable));
      co_await http::async_read(stream, buffer, request, asio::as_tuple(asio::use_awaitable));
      co_return;
    }
    co_await http::async_write(stream, *response, asio::as_tuple(asio::use_awaitable));
    boost::beast::error_code ignored;
    boost::beast::get_lowest_layer(stream).socket().shutdown(asio::ip::tcp::socket::shutdown_send,
                                                             ignored);
  }

  TestHandler handler_;
  boost::asio::ssl::context* tls_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_{io_};
  unsigned short port_ = 0;
  mutable std::mutex mutex_;
  std::vector<RecordedRequest> requests_;
  std::thread thread_;
};

}  // namespace podflow::testing
