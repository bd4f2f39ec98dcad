// Error kinds, their names and the default retry table.
#include "podflow/engine/error.hpp"

#include <array>
#include <utility>

#include "enum_names.hpp"

namespace podflow::engine {
namespace {

constexpr std::array<std::pair<ErrorKind, std::string_view>, 12> kKindNames{{
    {ErrorKind::task_failed, "task_failed"},
    {ErrorKind::timeout, "timeout"},
    {ErrorKind::network, "network"},
    {ErrorKind::server, "server"},
    {ErrorKind::rate_limited, "rate_limited"},
    {ErrorKind::capacity, "capacity"},
    {ErrorKind::preempted, "preempted"},
    {ErrorKind::auth, "auth"},
    {ErrorKind::bad_input, "bad_input"},
    {ErrorKind::client, "client"},
    {ErrorKind::cancelled, "cancelled"},
    {ErrorKind::cost_cap, "cost_cap"},
}};

}  // namespace

std::string_view to_string(ErrorKind kind) { return detail::name_of(kKindNames, kind); }

std::optional<ErrorKind> parse_error_kind(std::string_view text) {
  return detail::value_of(kKindNames, text);
}

const std::vector<ErrorKind>& all_error_kinds() {
  static const std::vector<ErrorKind> kinds = [] {
    std::vector<ErrorKind> out;
    for (const auto& entry : kKindNames) out.push_back(entry.first);
    return out;
  }();
  return kinds;
}

bool retried_by_default(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::task_failed:
    case ErrorKind::timeout:
    case ErrorKind::network:
    case ErrorKind::server:
    case ErrorKind::rate_limited:
    case ErrorKind::capacity:
    case ErrorKind::preempted:
      return true;
    case ErrorKind::auth:
    case ErrorKind::bad_input:
    case ErrorKind::client:
    case ErrorKind::cancelled:
    case ErrorKind::cost_cap:
      return false;
  }
  return false;
}

std::string Diagnostic::to_string() const {
  std::string out = pos.file;
  if (pos.line > 0) {
    out += ':' + std::to_string(pos.line) + ':' + std::to_string(pos.column > 0 ? pos.column : 1);
  }
  out += ": ";
  out += message;
  return out;
}

}  // namespace podflow::engine
