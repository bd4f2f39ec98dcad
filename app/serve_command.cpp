// `podflow serve`: serves the API until SIGINT or SIGTERM, then stops cleanly.
#include "app/serve_command.hpp"

#include <signal.h>

#include <iostream>
#include <memory>

#include "app/home.hpp"
#include "podflow/engine/duration.hpp"
#include "podflow/web/server.hpp"

namespace podflow::app {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitBadInput = 2;

// The web layer's view of the engine: reads through the run store.
class StoreBackend final : public web::Backend {
 public:
  explicit StoreBackend(std::unique_ptr<engine::RunStore> store) : store_(std::move(store)) {}
  std::vector<engine::RunRecord> list_runs(const engine::RunFilter& filter) const override {
    return store_->list_runs(filter);
  }
  std::optional<engine::RunRecord> get_run(const std::string& run_id) const override {
    return store_->get_run(run_id);
  }
  std::vector<engine::TaskRecord> get_tasks(const std::string& run_id) const override {
    return store_->get_tasks(run_id);
  }
  std::optional<engine::TokenRecord> find_token(const std::string& hash) const override {
    return store_->find_token(hash);
  }

 private:
  std::unique_ptr<engine::RunStore> store_;
};

struct ServeArgs {
  std::string listen = "127.0.0.1:8080";
  std::vector<std::string> allowed_hosts;
  bool insecure_no_auth = false;
  std::string request_timeout = "30s";
};

int serve(const ServeArgs& args) {
  web::ServerOptions options;
  const auto colon = args.listen.rfind(':');
  char* end = nullptr;
  const long port =
      colon == std::string::npos ? -1 : std::strtol(args.listen.c_str() + colon + 1, &end, 10);
  if (colon == std::string::npos || *end != '\0' || port < 0 || port > 65535) {
    std::cerr << "podflow serve: --listen wants ADDRESS:PORT, e.g. 127.0.0.1:8080, got '"
              << args.listen << "'\n";
    return kExitBadInput;
  }
  options.address = args.listen.substr(0, colon);
  options.port = static_cast<std::uint16_t>(port);
  options.allowed_hosts = args.allowed_hosts;
  options.insecure_no_auth = args.insecure_no_auth;
  if (auto timeout = engine::parse_duration(args.request_timeout);
      timeout && timeout->count() > 0) {
    options.request_timeout = *timeout;
  } else {
    std::cerr << "podflow serve: --request-timeout wants a duration such as 30s, got '"
              << args.request_timeout << "'\n";
    return kExitBadInput;
  }
  // Blocked before any thread starts (the store's writer is one), so every thread inherits the
  // mask and only sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto store = open_store();
  if (!store) return kExitBadInput;
  web::Server server(std::make_shared<StoreBackend>(std::move(store)), options);
  if (auto error = server.start()) {
    std::cerr << "podflow serve: " << *error << "\n";
    return kExitBadInput;
  }
  if (args.insecure_no_auth) {
    std::cerr << "podflow serve: WARNING: --insecure-no-auth: anyone who reaches this port reads "
                 "every run; never expose it through a tunnel\n";
  }
  std::cout << "listening http://" << options.address << ":" << server.port() << std::endl;
  int received = 0;
  sigwait(&signals, &received);
  std::cout << "podflow serve: " << (received == SIGINT ? "interrupt" : "terminate")
            << " received; stopping" << std::endl;
  server.stop();
  return kExitOk;
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ServeArgs>();
  auto* serve_cmd = app.add_subcommand("serve", "Serve the API (the web view is still to come)");
  serve_cmd->add_option("--listen", args->listen, "ADDRESS:PORT (default 127.0.0.1:8080)");
  serve_cmd->add_option("--allowed-host", args->allowed_hosts,
                        "a Host the server answers for besides localhost (repeatable)");
  serve_cmd->add_option("--request-timeout", args->request_timeout,
                        "a request must arrive whole within this (default 30s)");
  serve_cmd->add_flag("--insecure-no-auth", args->insecure_no_auth,
                      "serve without tokens (local experiments only)");
  serve_cmd->callback([args, &exit_code] { exit_code = serve(*args); });
}

}  // namespace podflow::app
