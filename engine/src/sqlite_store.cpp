// SQLite run store (being implemented).
#include "podflow/engine/store.hpp"

namespace podflow::engine {

std::variant<std::unique_ptr<RunStore>, StoreOpenError> open_sqlite_store(const SqliteOptions&) {
  return StoreOpenError{"sqlite store not implemented"};
}
int sqlite_schema_version() { return 0; }

}  // namespace podflow::engine
