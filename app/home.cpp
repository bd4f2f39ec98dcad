// podflow's data folder and the run store in it.
#include "app/home.hpp"

#include <cstdlib>
#include <iostream>

namespace podflow::app {

using namespace podflow::engine;

std::filesystem::path podflow_home() {
  if (const char* home = std::getenv("PODFLOW_HOME"); home && *home) return home;
  const char* user_home = std::getenv("HOME");
  return std::filesystem::path(user_home ? user_home : ".") / ".podflow";
}

std::unique_ptr<RunStore> open_store() {
  const auto home = podflow_home();
  std::error_code ec;
  std::filesystem::create_directories(home, ec);
  if (ec) {
    std::cerr << "podflow: cannot create PODFLOW_HOME " << home << ": " << ec.message() << "\n";
    return nullptr;
  }
  auto opened =
      open_sqlite_store({.path = (home / "podflow.db").string(), .migrate_to_version = 0});
  if (auto* error = std::get_if<StoreOpenError>(&opened)) {
    std::cerr << "podflow: " << error->message << "\n";
    return nullptr;
  }
  return std::move(std::get<std::unique_ptr<RunStore>>(opened));
}

}  // namespace podflow::app
