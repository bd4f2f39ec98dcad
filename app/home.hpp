// Where podflow keeps its data ($PODFLOW_HOME) and how every command opens the run store there.
#pragma once

#include <filesystem>
#include <memory>

#include "podflow/engine/store.hpp"

namespace podflow::app {

// $PODFLOW_HOME, else ~/.podflow.
std::filesystem::path podflow_home();

// Opens (creating or migrating) the run store in podflow_home(); prints a clear error and returns
// null when it cannot.
std::unique_ptr<engine::RunStore> open_store();

}  // namespace podflow::app
