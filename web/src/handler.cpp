// The API's routes, authentication and security headers, as a pure function of the request.
#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "podflow/engine/digest.hpp"
#include "podflow/engine/states.hpp"
#include "podflow/web/server.hpp"

namespace podflow::web {
namespace {

std::string lower(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

Response json(unsigned status, const Json& body) {
  Response out;
  out.status = status;
  out.body = body.dump();
  return out;
}

// Errors are JSON with a machine code and a message for people.
Response error(unsigned status, const std::string& code, const std::string& message) {
  return json(status, Json{{"code", code}, {"message", message}});
}

// The host part of a Host header ("example.com:443" -> "example.com", "[::1]:80" -> "[::1]").
std::string host_part(const std::string& host) {
  if (host.starts_with('[')) return host.substr(0, host.find(']') + 1);
  return host.substr(0, host.find(':'));
}

bool host_allowed(const Request& request, const ServerOptions& options) {
  auto it = request.headers.find("host");
  if (it == request.headers.end()) return false;
  const std::string host = lower(it->second);
  const std::string bare = host_part(host);
  if (bare == "127.0.0.1" || bare == "localhost" || bare == "[::1]") return true;
  return std::any_of(options.allowed_hosts.begin(), options.allowed_hosts.end(),
                     [&](const std::string& allowed) {
                       const std::string want = lower(allowed);
                       return want == host || want == bare;
                     });
}

int role_rank(const std::string& role) {
  if (role == "admin") return 3;
  if (role == "operator") return 2;
  if (role == "viewer") return 1;
  return 0;
}

std::map<std::string, std::string> query_of(const std::string& target) {
  std::map<std::string, std::string> out;
  const auto question = target.find('?');
  if (question == std::string::npos) return out;
  std::string rest = target.substr(question + 1);
  std::size_t start = 0;
  while (start <= rest.size()) {
    const auto amp = rest.find('&', start);
    const std::string pair =
        rest.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    const auto eq = pair.find('=');
    if (!pair.empty()) {
      out[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
    }
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  return out;
}

Json run_json(const engine::RunRecord& run) {
  return Json{{"id", run.id},
              {"workflow", run.workflow},
              {"state", std::string(engine::to_string(run.state))},
              {"params", run.params},
              {"logical_date", run.logical_date},
              {"reason", run.reason},
              {"created_at", run.created_at},
              {"started_at", run.started_at},
              {"ended_at", run.ended_at}};
}

Json task_json(const engine::TaskRecord& task) {
  return Json{
      {"task_id", task.task_id},       {"state", std::string(engine::to_string(task.state))},
      {"try_number", task.try_number}, {"max_tries", task.max_tries},
      {"error_kind", task.error_kind}, {"error_message", task.error_message},
      {"outputs", task.outputs},       {"started_at", task.started_at},
      {"ended_at", task.ended_at}};
}

Response route(const Request& request, const Backend& backend) {
  std::string path = request.target.substr(0, request.target.find('?'));
  if (path == "/api/v1/runs") {
    if (request.method != "GET") return error(405, "method_not_allowed", "use GET");
    const auto query = query_of(request.target);
    engine::RunFilter filter;
    if (auto it = query.find("workflow"); it != query.end()) filter.workflow = it->second;
    if (auto it = query.find("limit"); it != query.end()) {
      char* end = nullptr;
      const long limit = std::strtol(it->second.c_str(), &end, 10);
      if (*end != '\0' || limit < 1 || limit > 1000) {
        return error(400, "bad_request", "limit must be a whole number from 1 to 1000");
      }
      filter.limit = static_cast<int>(limit);
    }
    Json runs = Json::array();
    for (const auto& run : backend.list_runs(filter)) runs.push_back(run_json(run));
    return json(200, Json{{"runs", runs}});
  }
  const std::string prefix = "/api/v1/runs/";
  if (path.starts_with(prefix) && path.find('/', prefix.size()) == std::string::npos) {
    if (request.method != "GET") return error(405, "method_not_allowed", "use GET");
    const std::string id = path.substr(prefix.size());
    auto run = backend.get_run(id);
    if (!run) return error(404, "not_found", "no run '" + id + "'");
    Json body = run_json(*run);
    Json tasks = Json::array();
    for (const auto& task : backend.get_tasks(id)) tasks.push_back(task_json(task));
    body["tasks"] = tasks;
    return json(200, body);
  }
  return error(404, "not_found", "no route " + request.method + " " + path);
}

}  // namespace

Response handle(const Request& request, const Backend& backend, const ServerOptions& options) {
  Response out;
  const std::string path = request.target.substr(0, request.target.find('?'));
  if (!host_allowed(request, options)) {
    // Requests for another name (DNS rebinding) never reach a route.
    out = error(421, "misdirected_request",
                "this server does not answer for that Host; add it with --allowed-host");
  } else if (path == "/healthz") {
    out.content_type = "text/plain; charset=utf-8";
    out.body = "ok\n";
  } else if (options.insecure_no_auth) {
    out = route(request, backend);
  } else {
    // Through a tunnel every request comes from loopback: only a valid token proves anything.
    std::optional<engine::TokenRecord> token;
    if (auto it = request.headers.find("authorization");
        it != request.headers.end() && lower(it->second.substr(0, 7)) == "bearer ") {
      token = backend.find_token(engine::sha256_hex(it->second.substr(7)));
    }
    if (!token || token->revoked_at != 0) {
      out = error(401, "unauthenticated",
                  "send a valid token as `Authorization: Bearer <token>` (podflow token create)");
      out.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"podflow\"");
    } else if (role_rank(token->role) < role_rank("viewer")) {
      out = error(403, "forbidden", "token role '" + token->role + "' may not read runs");
    } else {
      out = route(request, backend);
    }
  }
  out.headers.emplace_back("X-Content-Type-Options", "nosniff");
  out.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; frame-ancestors 'none'; base-uri 'none'");
  out.headers.emplace_back("X-Frame-Options", "DENY");
  out.headers.emplace_back("Referrer-Policy", "no-referrer");
  out.headers.emplace_back("Cache-Control", "no-store");
  return out;
}

}  // namespace podflow::web
