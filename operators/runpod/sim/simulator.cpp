// The simulator's HTTP server, REST v2 routes, GraphQL endpoint, fault injection and state report.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "podflow/operators/runpod_sim.hpp"
#include "sim_core.hpp"

namespace podflow::runpod_sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

std::string lower(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

}  // namespace

struct RunPodSimulator::Impl {
  SimulatorOptions options;
  Core core;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io};
  std::thread thread;
  std::uint16_t port = 0;
  bool started = false;
  bool stopped = false;

  explicit Impl(SimulatorOptions opts) : options(std::move(opts)), core(options.api_key) {}

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(io, session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> session(asio::ip::tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> request;
      auto [ec, n] =
          co_await http::async_read(stream, buffer, request, asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      IncomingRequest incoming;
      incoming.method = std::string(request.method_string());
      incoming.target = std::string(request.target());
      incoming.body = request.body();
      for (const auto& field : request) {
        incoming.headers[lower(std::string(field.name_string()))] = std::string(field.value());
      }
      Outcome outcome = core.handle(incoming);
      if (outcome.delay_ms > 0) {
        asio::steady_timer timer(io, std::chrono::milliseconds(outcome.delay_ms));
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      if (outcome.stream_logs) {
        co_await stream_logs(stream, *outcome.stream_logs);
        co_return;
      }
      http::response<http::string_body> response(static_cast<http::status>(outcome.status),
                                                 request.version());
      for (const auto& [name, value] : outcome.headers) response.set(name, value);
      if (!outcome.body.empty()) {
        response.set(http::field::content_type, outcome.content_type);
        response.body() = outcome.body;
      }
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      auto [wec, wn] =
          co_await http::async_write(stream, response, asio::as_tuple(asio::use_awaitable));
      if (wec || !request.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  }

  // Server-Sent Events, chunked by hand: each event is one chunk; the stream ends (final chunk)
  // once the pod is no longer running and every line has been sent.
  asio::awaitable<void> stream_logs(beast::tcp_stream& stream, LogStreamRequest log_request) {
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        "Connection: keep-alive\r\nX-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n";
    auto [hec, hn] = co_await asio::async_write(stream.socket(), asio::buffer(head),
                                                asio::as_tuple(asio::use_awaitable));
    if (hec) co_return;
    asio::steady_timer timer(io);
    for (;;) {
      auto batch = core.next_log_events(log_request);
      if (!batch.text.empty()) {
        auto data = chunk(batch.text);
        auto [ec, n] = co_await asio::async_write(stream.socket(), asio::buffer(data),
                                                  asio::as_tuple(asio::use_awaitable));
        if (ec) co_return;
      }
      if (batch.finished) break;
      // Polls the lazily advanced pod; 20 ms of real time is far below any scripted interval.
      timer.expires_after(std::chrono::milliseconds(20));
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    std::string last = "0\r\n\r\n";
    co_await asio::async_write(stream.socket(), asio::buffer(last),
                               asio::as_tuple(asio::use_awaitable));
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  }
};

RunPodSimulator::RunPodSimulator(SimulatorOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

RunPodSimulator::~RunPodSimulator() { stop(); }

std::optional<std::string> RunPodSimulator::start() {
  if (impl_->started) return "the simulator was already started";
  Script script;
  if (auto error = parse_script(impl_->options.script, script)) return "script: " + *error;
  impl_->core.configure(std::move(script));
  beast::error_code ec;
  const auto address = asio::ip::make_address(impl_->options.listen_address, ec);
  if (ec) return "bad listen address '" + impl_->options.listen_address + "': " + ec.message();
  const asio::ip::tcp::endpoint endpoint(address, impl_->options.port);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return "cannot listen on " + impl_->options.listen_address + ":" +
           std::to_string(impl_->options.port) + ": " + ec.message();
  }
  impl_->port = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->io, impl_->accept_loop(), [](const std::exception_ptr& error) {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        std::cerr << "runpod-sim: accept loop failed: " << e.what() << "\n";
      }
    }
  });
  impl_->started = true;
  impl_->thread = std::thread([this] { impl_->io.run(); });
  return std::nullopt;
}

std::uint16_t RunPodSimulator::port() const { return impl_->port; }

void RunPodSimulator::stop() {
  if (!impl_->started || impl_->stopped) return;
  impl_->stopped = true;
  impl_->io.stop();
  impl_->thread.join();
}

Json RunPodSimulator::state() const { return impl_->core.state(); }

}  // namespace podflow::runpod_sim
