// `podflow reap`: lists the account's pods, keeps other installations' pods and those of live
// tasks, and terminates (or with --dry-run only lists) this installation's orphans.
#include "app/reap_command.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>

#include "app/home.hpp"
#include "operators/runpod/pod_name.hpp"
#include "operators/runpod/reaper.hpp"
#include "podflow/engine/duration.hpp"
#include "podflow/engine/executor.hpp"
#include "podflow/engine/store.hpp"
#include "podflow/operators/runpod_client.hpp"

namespace podflow::app {
namespace {

namespace asio = boost::asio;
using engine::EpochMillis;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitBadInput = 2;

struct ReapArgs {
  bool dry_run = false;
  std::string older_than = "10m";
};

// Decides and acts on every pod; the store is read before and written after each terminate.
asio::awaitable<int> reap(const runpod::Client& api, engine::RunStore& store,
                          const std::string& prefix, EpochMillis grace, bool dry_run) {
  auto listed = co_await api.list_pods();
  if (auto* error = std::get_if<runpod::RunPodError>(&listed)) {
    std::cerr << "podflow reap: could not list pods: " << error->message << "\n";
    co_return error->kind == engine::ErrorKind::auth ? kExitBadInput : kExitFailed;
  }
  std::map<std::string, engine::ResourceRecord> records;
  for (auto& record : store.list_resources({.kind = "runpod.pod", .run_id = {}, .task_id = {}})) {
    records[record.name] = record;
  }
  const EpochMillis now = engine::to_epoch_millis(std::chrono::system_clock::now());
  int code = kExitOk;
  for (const auto& pod : std::get<std::vector<runpod::Pod>>(listed)) {
    runpod::ReapCandidate candidate;
    candidate.name = pod.name;
    const auto found = records.find(pod.name);
    if (found != records.end()) {
      runpod::PodOwnerFacts owner;
      owner.run_id = found->second.run_id;
      owner.record_created_at = found->second.created_at;
      if (auto run = store.get_run(found->second.run_id)) {
        owner.run_state = run->state;
        owner.lease_expires_at = run->owner.empty() ? 0 : run->lease_expires_at;
      }
      candidate.owner = owner;
    }
    const auto decision = runpod::decide_reap(prefix, candidate, now, grace);
    std::string action;
    switch (decision.verdict) {
      case runpod::ReapVerdict::not_ours:
        action = "skip";
        break;
      case runpod::ReapVerdict::live:
      case runpod::ReapVerdict::too_young:
        action = "keep";
        break;
      case runpod::ReapVerdict::orphan:
        action = dry_run ? "would terminate" : "terminate";
        break;
    }
    std::string reason = decision.reason;
    if (decision.verdict == runpod::ReapVerdict::orphan && !dry_run) {
      auto result = co_await api.terminate_pod(pod.id);
      if (auto* error = std::get_if<runpod::RunPodError>(&result)) {
        action = "terminate FAILED";
        reason += "; " + error->message;
        code = kExitFailed;
      } else {
        action =
            std::get<runpod::TerminateResult>(result).already_gone ? "already gone" : "terminated";
        if (found != records.end()) {
          engine::StoreBatch batch;
          auto record = found->second;
          record.external_id = pod.id;
          record.state = "terminated";
          record.updated_at = engine::to_epoch_millis(std::chrono::system_clock::now());
          batch.resources.push_back(std::move(record));
          store.submit(std::move(batch), [](std::error_code) {});
        }
      }
    }
    std::cout << pod.name << "  " << pod.id << "  " << pod.status << "  " << action << ": "
              << reason << "\n";
  }
  store.flush();
  co_return code;
}

int run_reap(const ReapArgs& args) {
  const auto grace = engine::parse_duration(args.older_than);
  if (!grace) {
    std::cerr << "podflow reap: --older-than must be a duration like 10m or 0s, got '"
              << args.older_than << "'\n";
    return kExitBadInput;
  }
  auto config = runpod::config_from_env();
  if (auto* missing = std::get_if<std::string>(&config)) {
    std::cerr << "podflow reap: " << *missing
              << "; set RUNPOD_API_KEY (or RUNPOD_API_KEY_FILE) to the account's API key\n";
    return kExitBadInput;
  }
  const auto home = podflow_home();
  auto store = open_store();
  if (!store) return kExitBadInput;
  const std::string prefix = runpod::pod_name_prefix(engine::load_or_create_install_id(home));
  const runpod::Client api(std::get<runpod::Config>(std::move(config)), [](std::string_view w) {
    std::cerr << "podflow reap: warning: " << w << "\n";
  });

  asio::io_context io;
  int code = kExitFailed;
  asio::co_spawn(io, reap(api, *store, prefix, grace->count(), args.dry_run),
                 [&](std::exception_ptr error, int result) {
                   if (error) std::rethrow_exception(error);
                   code = result;
                 });
  io.run();
  return code;
}

}  // namespace

void add_reap_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ReapArgs>();
  auto* reap_cmd = app.add_subcommand(
      "reap", "Find and terminate this installation's pods that belong to no live task");
  reap_cmd->add_flag("--dry-run", args->dry_run, "Only list what would be terminated");
  reap_cmd->add_option("--older-than", args->older_than,
                       "Grace period: spare orphans younger than this (default 10m)");
  reap_cmd->callback([args, &exit_code] { exit_code = run_reap(*args); });
}

}  // namespace podflow::app
