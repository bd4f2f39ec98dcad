// `podflow serve`'s HTTP front: the API's request handler (pure: request in, response out) and
// the Boost.Beast server around it, with authentication and the limits a public tunnel needs.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "podflow/engine/json.hpp"
#include "podflow/engine/store.hpp"

namespace podflow::web {

// The narrow read interface the web layer sees (DESIGN.md section 2); app/ implements it over the
// engine.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::vector<engine::RunRecord> list_runs(const engine::RunFilter& filter) const = 0;
  virtual std::optional<engine::RunRecord> get_run(const std::string& run_id) const = 0;
  virtual std::vector<engine::TaskRecord> get_tasks(const std::string& run_id) const = 0;
  virtual std::optional<engine::TokenRecord> find_token(const std::string& hash) const = 0;
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;  // 0: any free port
  // Host header values (host or host:port) accepted besides 127.0.0.1, localhost and [::1].
  std::vector<std::string> allowed_hosts;
  bool insecure_no_auth = false;
  std::size_t body_limit = 1024 * 1024;
  std::uint32_t header_limit = 16 * 1024;
  std::chrono::milliseconds request_timeout{30000};  // a whole request must arrive within this
};

struct Request {
  std::string method;
  std::string target;                          // path and query
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Routes one request. Every response carries the security headers.
Response handle(const Request& request, const Backend& backend, const ServerOptions& options);

class Server {
 public:
  Server(std::shared_ptr<const Backend> backend, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and serves on a thread of its own; an error message when it cannot listen.
  std::optional<std::string> start();
  std::uint16_t port() const;
  // Stops accepting and closes every connection; returns once the thread ended.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace podflow::web
