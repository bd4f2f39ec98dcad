// The Boost.Beast server: accept loop, keep-alive sessions with size and time limits, graceful
// stop.
#include "podflow/web/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <iostream>
#include <set>
#include <thread>

namespace podflow::web {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct Server::Impl {
  std::shared_ptr<const Backend> backend;
  ServerOptions options;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io};
  std::thread thread;
  std::uint16_t port = 0;
  bool started = false;
  bool stopped = false;

  Impl(std::shared_ptr<const Backend> b, ServerOptions o)
      : backend(std::move(b)), options(std::move(o)) {}

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) continue;  // a connection that failed while being accepted is that client's problem
      asio::co_spawn(io, session(std::move(socket)), asio::detached);
    }
  }

  // One connection: requests until the client closes it, asks to, or breaks a limit. A client
  // that sends slowly (slowloris) is cut off when the request deadline passes.
  asio::awaitable<void> session(asio::ip::tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(options.body_limit);
      parser.header_limit(options.header_limit);
      stream.expires_after(options.request_timeout);
      auto [ec, n] =
          co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      Response response;
      bool close = false;
      if (ec == http::error::body_limit) {
        response = limit_response(413, "payload_too_large", "the request body is too large");
        close = true;
      } else if (ec == http::error::header_limit) {
        response = limit_response(431, "headers_too_large", "the request headers are too large");
        close = true;
      } else if (ec) {
        break;  // closed, timed out or malformed: nothing worth answering
      } else {
        auto& request = parser.get();
        Request incoming;
        incoming.method = std::string(request.method_string());
        incoming.target = std::string(request.target());
        incoming.body = request.body();
        for (const auto& field : request) {
          std::string name(field.name_string());
          for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          incoming.headers[name] = std::string(field.value());
        }
        response = handle(incoming, *backend, options);
        close = !request.keep_alive();
      }
      http::response<http::string_body> out(static_cast<http::status>(response.status), 11);
      out.set(http::field::server, "podflow");
      out.set(http::field::content_type, response.content_type);
      for (const auto& [name, value] : response.headers) out.set(name, value);
      out.body() = std::move(response.body);
      out.keep_alive(!close);
      out.prepare_payload();
      stream.expires_after(options.request_timeout);
      auto [wec, wn] = co_await http::async_write(stream, out, asio::as_tuple(asio::use_awaitable));
      if (wec || close) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  }

  Response limit_response(unsigned status, const std::string& code, const std::string& message) {
    // Limits are checked before any route: answer like the handler would, security headers too.
    Request probe;
    probe.method = "GET";
    probe.target = "/healthz";
    probe.headers["host"] = "127.0.0.1";
    Response out = handle(probe, *backend, options);
    out.status = status;
    out.content_type = "application/json";
    out.body = Json{{"code", code}, {"message", message}}.dump();
    return out;
  }
};

Server::Server(std::shared_ptr<const Backend> backend, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(backend), std::move(options))) {}

Server::~Server() { stop(); }

std::optional<std::string> Server::start() {
  if (impl_->started) return "the server was already started";
  beast::error_code ec;
  const auto address = asio::ip::make_address(impl_->options.address, ec);
  if (ec) return "bad listen address '" + impl_->options.address + "': " + ec.message();
  const asio::ip::tcp::endpoint endpoint(address, impl_->options.port);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return "cannot listen on " + impl_->options.address + ":" +
           std::to_string(impl_->options.port) + ": " + ec.message();
  }
  impl_->port = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->io, impl_->accept_loop(), [](const std::exception_ptr& error) {
    if (!error) return;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      std::cerr << "podflow serve: the accept loop failed: " << e.what() << "\n";
    }
  });
  impl_->started = true;
  impl_->thread = std::thread([this] { impl_->io.run(); });
  return std::nullopt;
}

std::uint16_t Server::port() const { return impl_->port; }

void Server::stop() {
  if (!impl_->started || impl_->stopped) return;
  impl_->stopped = true;
  impl_->io.stop();
  impl_->thread.join();
}

}  // namespace podflow::web
