// The error category of SQLite result codes, shared by the SQLite store and the memory store.
#pragma once

#include <system_error>

namespace podflow::engine::detail {

// Values are SQLite extended result codes (SQLITE_CONSTRAINT_FOREIGNKEY, SQLITE_BUSY, ...).
const std::error_category& sqlite_category();
std::error_code make_sqlite_error(int result_code);

}  // namespace podflow::engine::detail
