// `podflow token create|list|revoke`: a token's secret is printed once and only its SHA-256 is
// stored, so the database (or a backup of it) never hands out access.
#include "app/token_command.hpp"

#include <chrono>
#include <iomanip>
#include <iostream>
#include <memory>

#include "app/home.hpp"
#include "podflow/engine/digest.hpp"
#include "podflow/engine/executor.hpp"
#include "podflow/engine/store.hpp"

namespace podflow::app {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitBadInput = 2;

engine::EpochMillis now_ms() { return engine::to_epoch_millis(std::chrono::system_clock::now()); }

int commit(engine::RunStore& store, engine::TokenRecord token) {
  engine::StoreBatch batch;
  batch.tokens.push_back(std::move(token));
  std::error_code failure;
  store.submit(std::move(batch), [&failure](std::error_code ec) { failure = ec; });
  store.flush();
  if (failure) {
    std::cerr << "podflow token: could not store the token: " << failure.message() << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

int create(const std::string& role, const std::string& name) {
  if (role != "viewer" && role != "operator" && role != "admin") {
    std::cerr << "podflow token create: --role must be viewer, operator or admin, got '" << role
              << "'\n";
    return kExitBadInput;
  }
  auto store = open_store();
  if (!store) return kExitBadInput;
  const std::string secret = "pf_" + engine::random_hex(20);
  engine::TokenRecord token;
  token.id = "tok_" + engine::random_hex(4);
  token.name = name;
  token.role = role;
  token.hash = engine::sha256_hex(secret);
  token.created_at = now_ms();
  if (const int failed = commit(*store, token)) return failed;
  std::cout << "token " << token.id << " (" << role << (name.empty() ? "" : ", " + name)
            << "):\n\n  " << secret
            << "\n\nIt is shown this once; podflow keeps only its hash. `podflow serve` takes "
               "it as `Authorization: Bearer <token>`.\n";
  return kExitOk;
}

int list() {
  auto store = open_store();
  if (!store) return kExitBadInput;
  const auto tokens = store->list_tokens();
  if (tokens.empty()) {
    std::cout << "no tokens; make one with `podflow token create --role viewer`\n";
    return kExitOk;
  }
  std::cout << std::left << std::setw(14) << "ID" << std::setw(10) << "ROLE" << std::setw(22)
            << "CREATED" << std::setw(22) << "REVOKED"
            << "NAME\n";
  for (const auto& token : tokens) {
    std::cout << std::setw(14) << token.id << std::setw(10) << token.role << std::setw(22)
              << engine::format_utc(token.created_at) << std::setw(22)
              << (token.revoked_at ? engine::format_utc(token.revoked_at) : std::string("-"))
              << token.name << "\n";
  }
  return kExitOk;
}

int revoke(const std::string& id) {
  auto store = open_store();
  if (!store) return kExitBadInput;
  for (auto token : store->list_tokens()) {
    if (token.id != id) continue;
    if (token.revoked_at != 0) {
      std::cout << "token " << id << " was already revoked at "
                << engine::format_utc(token.revoked_at) << "\n";
      return kExitOk;
    }
    token.revoked_at = now_ms();
    if (const int failed = commit(*store, token)) return failed;
    std::cout << "token " << id << " revoked\n";
    return kExitOk;
  }
  std::cerr << "podflow token revoke: no token '" << id << "' (see `podflow token list`)\n";
  return kExitBadInput;
}

}  // namespace

void add_token_command(CLI::App& app, int& exit_code) {
  auto* token = app.add_subcommand("token", "API tokens for podflow serve: create, list, revoke");
  token->require_subcommand(1);

  auto role = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto* create_cmd = token->add_subcommand("create", "Make a token and print its secret once");
  create_cmd->add_option("--role", *role, "viewer (reads), operator (runs), admin (tokens)")
      ->required();
  create_cmd->add_option("--name", *name, "What the token is for, e.g. laptop or ci");
  create_cmd->callback([role, name, &exit_code] { exit_code = create(*role, *name); });

  token->add_subcommand("list", "List tokens (never their secrets)")->callback([&exit_code] {
    exit_code = list();
  });

  auto id = std::make_shared<std::string>();
  auto* revoke_cmd = token->add_subcommand("revoke", "Revoke a token at once");
  revoke_cmd->add_option("ID", *id, "the token's id, from `podflow token list`")->required();
  revoke_cmd->callback([id, &exit_code] { exit_code = revoke(*id); });
}

}  // namespace podflow::app
