// Error kinds that drive retry decisions, and source-positioned diagnostics for workflow files.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace podflow::engine {

// Every task failure carries one kind; the retry policy asks the kind whether to try again.
enum class ErrorKind {
  task_failed,   // non-zero exit, operator failure
  timeout,       // per-attempt or per-run deadline passed
  network,       // connection refused/reset, DNS, TLS
  server,        // HTTP 5xx
  rate_limited,  // HTTP 429, retried after Retry-After
  capacity,      // no GPU of the requested kind available
  preempted,     // spot pod outbid
  auth,          // 401/403, bad key
  bad_input,     // argument or template that can never work
  client,        // other 4xx
  cancelled,     // run cancelled by the user
  cost_cap,      // spend limit reached
};

std::string_view to_string(ErrorKind kind);
std::optional<ErrorKind> parse_error_kind(std::string_view text);
const std::vector<ErrorKind>& all_error_kinds();
// The default retry table of DESIGN.md section 3.
bool retried_by_default(ErrorKind kind);

struct TaskError {
  TaskError() = default;
  TaskError(ErrorKind error_kind, std::string error_message,
            std::optional<std::chrono::milliseconds> error_retry_after = std::nullopt)
      : kind(error_kind), message(std::move(error_message)), retry_after(error_retry_after) {}

  ErrorKind kind = ErrorKind::task_failed;
  std::string message;
  // rate_limited: the server's Retry-After; the next try waits at least this long.
  std::optional<std::chrono::milliseconds> retry_after;
};

struct SourcePos {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
};

// One problem found in a workflow file: `FILE:LINE:COL: message`.
struct Diagnostic {
  SourcePos pos;
  std::string message;
  std::string to_string() const;
};

}  // namespace podflow::engine
