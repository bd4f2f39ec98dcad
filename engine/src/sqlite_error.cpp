// SQLite result codes as std::error_code, mapped to portable conditions where one fits, and the
// store's own errors (a lost lease).
#include "sqlite_error.hpp"

#include <sqlite3.h>

#include <string>

#include "podflow/engine/store.hpp"

namespace podflow::engine::detail {
namespace {

class SqliteCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "sqlite"; }

  std::string message(int code) const override {
    // sqlite3_errstr knows primary codes only; the constraint kinds are what callers need to tell
    // apart (a task for a missing run is a foreign key failure).
    switch (code) {
      case SQLITE_CONSTRAINT_FOREIGNKEY:
        return "FOREIGN KEY constraint failed";
      case SQLITE_CONSTRAINT_PRIMARYKEY:
        return "PRIMARY KEY constraint failed";
      case SQLITE_CONSTRAINT_UNIQUE:
        return "UNIQUE constraint failed";
      case SQLITE_CONSTRAINT_NOTNULL:
        return "NOT NULL constraint failed";
      case SQLITE_CONSTRAINT_CHECK:
        return "CHECK constraint failed";
      default:
        return sqlite3_errstr(code);
    }
  }

  std::error_condition default_error_condition(int code) const noexcept override {
    switch (code & 0xff) {
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return std::errc::device_or_resource_busy;
      case SQLITE_FULL:
        return std::errc::no_space_on_device;
      case SQLITE_IOERR:
        return std::errc::io_error;
      case SQLITE_READONLY:
        return std::errc::read_only_file_system;
      case SQLITE_NOMEM:
        return std::errc::not_enough_memory;
      case SQLITE_PERM:
      case SQLITE_AUTH:
        return std::errc::permission_denied;
      default:
        return {code, *this};
    }
  }
};

}  // namespace

const std::error_category& sqlite_category() {
  static const SqliteCategory category;
  return category;
}

std::error_code make_sqlite_error(int result_code) { return {result_code, sqlite_category()}; }

}  // namespace podflow::engine::detail

namespace podflow::engine {

const std::error_category& store_category() {
  class Category final : public std::error_category {
   public:
    const char* name() const noexcept override { return "podflow.store"; }
    std::string message(int code) const override {
      return code == static_cast<int>(StoreErrc::lease_lost)
                 ? "the run is owned by another process now (its lease was taken over)"
                 : "unknown store error";
    }
  };
  static const Category category;
  return category;
}

std::error_code make_error_code(StoreErrc code) {
  return {static_cast<int>(code), store_category()};
}

}  // namespace podflow::engine
