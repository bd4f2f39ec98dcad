// `podflow runpod-sim`: runs the RunPod simulator until SIGINT/SIGTERM and prints the URLs to use.
#include "app/runpod_sim_command.hpp"

#include <signal.h>

#include <boost/asio/ip/address.hpp>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "podflow/operators/runpod_sim.hpp"

namespace podflow::app {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitBadInput = 2;

struct SimArgs {
  std::string listen = "127.0.0.1:8710";
  std::string script_file;
  std::string api_key;
  bool allow_remote = false;
};

int run_sim(const SimArgs& args) {
  const auto colon = args.listen.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "podflow runpod-sim: --listen must be HOST:PORT, got '" << args.listen << "'\n";
    return kExitBadInput;
  }
  auto host = args.listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = -1;
  try {
    port = std::stoi(args.listen.substr(colon + 1));
  } catch (const std::exception&) {
  }
  if (port < 0 || port > 65535) {
    std::cerr << "podflow runpod-sim: bad port in --listen '" << args.listen << "'\n";
    return kExitBadInput;
  }
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(host, ec);
  if (ec) {
    std::cerr << "podflow runpod-sim: '" << host << "' is not an IP address\n";
    return kExitBadInput;
  }
  if (!address.is_loopback() && !args.allow_remote) {
    std::cerr << "podflow runpod-sim: refusing to listen on non-loopback address " << host
              << " (the simulator has no TLS); pass --allow-remote to do it anyway\n";
    return kExitBadInput;
  }

  runpod_sim::SimulatorOptions options;
  options.listen_address = host;
  options.port = static_cast<std::uint16_t>(port);
  bool printed_key = false;
  if (!args.api_key.empty()) {
    options.api_key = args.api_key;
  } else if (const char* env = std::getenv("RUNPOD_API_KEY"); env && *env) {
    options.api_key = env;
  } else {
    printed_key = true;  // the fixed dev key: harmless to print, it opens only this simulator
  }
  if (!args.script_file.empty()) {
    auto loaded = runpod_sim::load_script_file(args.script_file);
    if (!loaded.error.empty()) {
      std::cerr << "podflow runpod-sim: " << loaded.error << "\n";
      return kExitBadInput;
    }
    options.script = std::move(loaded.script);
  }

  // Block the signals before the server thread starts so only sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  runpod_sim::RunPodSimulator simulator(options);
  if (auto error = simulator.start()) {
    std::cerr << "podflow runpod-sim: " << *error << "\n";
    return kExitFailed;
  }
  const auto url_host = address.is_v6() ? "[" + host + "]" : host;
  const auto base = "http://" + url_host + ":" + std::to_string(simulator.port());
  // The first line is machine-readable (tests read the port from it).
  std::cout << "listening " << base << "\n"
            << "RUNPOD_REST_URL=" << base << "\n"
            << "RUNPOD_GRAPHQL_URL=" << base << "/graphql\n";
  if (printed_key) {
    std::cout << "RUNPOD_API_KEY=" << options.api_key << "  (simulator dev key)\n";
  } else {
    std::cout << "API key: the one given (not printed)\n";
  }
  std::cout << "state: " << base << "/__sim/state   (Ctrl-C stops)" << std::endl;

  int received = 0;
  sigwait(&signals, &received);
  std::cerr << "podflow runpod-sim: " << (received == SIGINT ? "interrupt" : "terminate")
            << ", stopping\n";
  simulator.stop();
  return kExitOk;
}

}  // namespace

void add_runpod_sim_command(CLI::App& app, int& exit_code) {
  auto* sim = app.add_subcommand(
      "runpod-sim", "Serve a RunPod simulator (REST v2 + GraphQL subset) for dry runs and tests");
  auto args = std::make_shared<SimArgs>();
  sim->add_option("--listen", args->listen, "HOST:PORT to listen on (port 0: pick one)");
  sim->add_option("--script", args->script_file, "Scenario script (YAML or JSON)");
  sim->add_option("--api-key", args->api_key,
                  "Key clients must send (default: $RUNPOD_API_KEY or a fixed dev key)");
  sim->add_flag("--allow-remote", args->allow_remote, "Allow a non-loopback listen address");
  sim->callback([args, &exit_code] { exit_code = run_sim(*args); });
}

}  // namespace podflow::app
