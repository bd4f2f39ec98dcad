// In-memory run store (being implemented).
#include "podflow/engine/store.hpp"

namespace podflow::engine {

std::unique_ptr<RunStore> make_memory_store() { return nullptr; }

}  // namespace podflow::engine
