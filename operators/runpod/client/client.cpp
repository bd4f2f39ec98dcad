// RunPod calls: which API serves each, how requests are made, and how answers become values.
#include <boost/asio/this_coro.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "operators/net/http_client.hpp"
#include "operators/runpod/client/requests.hpp"
#include "podflow/operators/runpod_client.hpp"

namespace podflow::runpod {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using engine::ErrorKind;

std::string trim(std::string text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

std::string env_or(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value && *value ? std::string(value) : std::move(fallback);
}

// A path segment from a caller-supplied id: percent-encoded, so an id can never change the path.
std::string segment(std::string_view id) {
  return boost::urls::encode(id, boost::urls::unreserved_chars);
}

// A server that echoes the request (a proxy's error page, a debugging endpoint) could put the key
// into a message: cut it out of everything RunPod said before it can reach a log.
RunPodError redacted(RunPodError error, const std::string& api_key) {
  if (api_key.empty()) return error;
  for (auto at = error.message.find(api_key); at != std::string::npos;
       at = error.message.find(api_key, at)) {
    error.message.replace(at, api_key.size(), "[redacted]");
  }
  return error;
}

std::string strip_trailing_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

}  // namespace

std::variant<Config, std::string> config_from_env() {
  Config config;
  config.rest_url = strip_trailing_slash(env_or("RUNPOD_REST_URL", config.rest_url));
  config.graphql_url = env_or("RUNPOD_GRAPHQL_URL", config.graphql_url);
  if (config.graphql_url == "off") config.graphql_url.clear();
  if (const char* key = std::getenv("RUNPOD_API_KEY"); key && *key) {
    config.api_key = trim(key);
  } else if (const char* file = std::getenv("RUNPOD_API_KEY_FILE"); file && *file) {
    std::ifstream in(file);
    if (!in) return std::string("RUNPOD_API_KEY_FILE '") + file + "' cannot be read";
    std::ostringstream text;
    text << in.rdbuf();
    config.api_key = trim(text.str());
    if (config.api_key.empty()) return std::string("RUNPOD_API_KEY_FILE '") + file + "' is empty";
  }
  if (config.api_key.empty()) {
    return std::string("no RunPod API key: set RUNPOD_API_KEY or RUNPOD_API_KEY_FILE");
  }
  return config;
}

Client::Client(Config config, WarningSink warn)
    : config_(std::move(config)), warn_(std::move(warn)) {
  config_.rest_url = strip_trailing_slash(config_.rest_url);
}

void Client::warn(std::string_view text) const {
  if (warn_) warn_(text);
}

namespace {

// One call's plumbing, shared by every typed call.
struct Call {
  const Config& config;
  std::string name;  // "get pod abc", for messages

  net::Request request(http::verb method, std::string url, std::optional<Json> body) const {
    net::Request out;
    out.method = method;
    out.url = std::move(url);
    out.headers = {{"Authorization", "Bearer " + config.api_key}, {"Accept", "application/json"}};
    if (body) {
      out.headers.emplace_back("Content-Type", "application/json");
      out.body = body->dump();
    }
    out.timeout = config.timeout;
    out.plain_http = net::PlainHttp::loopback_only;
    return out;
  }

  // A REST call: the 2xx answer (JSON body, or null when empty), or the error.
  asio::awaitable<Result<Json>> rest(http::verb method, std::string path,
                                     std::optional<Json> body = std::nullopt) const {
    auto result = co_await net::fetch(request(method, config.rest_url + path, std::move(body)));
    if (auto* failure = std::get_if<net::Failure>(&result)) {
      co_return detail::network_error(name, *failure, config.timeout);
    }
    auto& response = std::get<net::Response>(result);
    if (response.status < 200 || response.status >= 300) {
      co_return redacted(detail::rest_error(name, response), config.api_key);
    }
    if (response.body.empty()) co_return Json(nullptr);
    Json json = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) {
      co_return RunPodError{ErrorKind::server, static_cast<int>(response.status),
                            "RunPod " + name + ": the answer is not JSON", std::nullopt, false};
    }
    co_return json;
  }

  // A GraphQL call: `data`, or the error.
  asio::awaitable<Result<Json>> graphql(std::string_view document, Json variables) const {
    auto result =
        co_await net::fetch(request(http::verb::post, config.graphql_url,
                                    detail::graphql_body(document, std::move(variables))));
    if (auto* failure = std::get_if<net::Failure>(&result)) {
      co_return detail::network_error(name, *failure, config.timeout);
    }
    auto& response = std::get<net::Response>(result);
    const Json json = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    if (auto error = detail::graphql_error(name, response, json)) {
      co_return redacted(*error, config.api_key);
    }
    auto data = json.find("data");
    if (data == json.end() || !data->is_object()) {
      co_return RunPodError{ErrorKind::server, 200,
                            "RunPod " + name + ": GraphQL answer has no data", std::nullopt, false};
    }
    co_return *data;
  }

  RunPodError graphql_off() const {
    return RunPodError{
        ErrorKind::bad_input, 0,
        "RunPod " + name + " needs the GraphQL API, which is off (RUNPOD_GRAPHQL_URL=off)",
        std::nullopt, false};
  }

  RunPodError unreadable(std::string_view what) const {
    return RunPodError{ErrorKind::server, 0,
                       "RunPod " + name + ": the answer has no " + std::string(what), std::nullopt,
                       false};
  }
};

}  // namespace

asio::awaitable<Result<Pod>> Client::create_pod(PodSpec spec) const {
  Call call{config_, "create pod " + spec.name};
  if (!spec.terminate_after.empty()) {
    warn("RunPod REST v2 has no terminateAfter: on-demand pod " + spec.name +
         " gets no server-side backstop; a runpod.terminate task (trigger_rule: all_done) and "
         "`podflow reap` are what end it");
  }
  auto answer = co_await call.rest(http::verb::post, "/v2/pods", detail::rest_create_body(spec));
  if (!ok(answer)) co_return std::get<RunPodError>(std::move(answer));
  auto pod = detail::parse_rest_pod(std::get<Json>(answer));
  if (!pod) co_return call.unreadable("pod id");
  co_return *pod;
}

asio::awaitable<Result<Pod>> Client::create_spot_pod(PodSpec spec, double bid_per_gpu) const {
  Call call{config_, "create spot pod " + spec.name};
  if (!graphql_enabled()) co_return call.graphql_off();
  auto data = co_await call.graphql(detail::kCreateSpotPodDocument,
                                    detail::spot_variables(spec, bid_per_gpu));
  if (!ok(data)) co_return std::get<RunPodError>(std::move(data));
  auto pod = detail::parse_graphql_pod(std::get<Json>(data).value("podRentInterruptable", Json()));
  if (!pod) co_return call.unreadable("pod");
  co_return *pod;
}

asio::awaitable<Result<Pod>> Client::get_pod(std::string pod_id) const {
  Call call{config_, "get pod " + pod_id};
  auto answer = co_await call.rest(http::verb::get, "/v2/pods/" + segment(pod_id));
  if (!ok(answer)) co_return std::get<RunPodError>(std::move(answer));
  auto pod = detail::parse_rest_pod(std::get<Json>(answer));
  if (!pod) co_return call.unreadable("pod id");
  co_return *pod;
}

asio::awaitable<Result<std::vector<Pod>>> Client::list_pods(std::optional<std::string> name) const {
  Call call{config_, "list pods"};
  // REST v2 has no name filter: filter here.
  auto answer = co_await call.rest(http::verb::get, "/v2/pods");
  if (!ok(answer)) co_return std::get<RunPodError>(std::move(answer));
  const Json& json = std::get<Json>(answer);
  auto pods = json.is_object() ? json.find("pods") : json.end();
  if (!json.is_object() || pods == json.end() || !pods->is_array()) {
    co_return call.unreadable("pods list");
  }
  std::vector<Pod> out;
  for (const auto& item : *pods) {
    auto pod = detail::parse_rest_pod(item);
    if (pod && (!name || pod->name == *name)) out.push_back(std::move(*pod));
  }
  co_return out;
}

asio::awaitable<Result<std::optional<Pod>>> Client::find_pod_by_name(std::string name) const {
  auto pods = co_await list_pods(name);
  if (!ok(pods)) co_return std::get<RunPodError>(std::move(pods));
  auto& found = std::get<std::vector<Pod>>(pods);
  if (found.empty()) co_return std::optional<Pod>{};
  if (found.size() > 1) {
    warn("RunPod has " + std::to_string(found.size()) + " pods named " + name +
         "; using the first, " + found.front().id);
  }
  co_return std::optional<Pod>(std::move(found.front()));
}

namespace {

asio::awaitable<Result<Pod>> action(const Config& config, std::string pod_id, std::string verb) {
  Call call{config, verb + " pod " + pod_id};
  auto answer = co_await call.rest(http::verb::post, "/v2/pods/" + segment(pod_id) + "/action",
                                   detail::rest_action_body(verb));
  if (!ok(answer)) co_return std::get<RunPodError>(std::move(answer));
  auto pod = detail::parse_rest_pod(std::get<Json>(answer));
  if (!pod) co_return call.unreadable("pod id");
  co_return *pod;
}

}  // namespace

asio::awaitable<Result<Pod>> Client::stop_pod(std::string pod_id) const {
  co_return co_await action(config_, std::move(pod_id), "stop");
}

asio::awaitable<Result<Pod>> Client::start_pod(std::string pod_id) const {
  co_return co_await action(config_, std::move(pod_id), "start");
}

asio::awaitable<Result<TerminateResult>> Client::terminate_pod(std::string pod_id) const {
  Call call{config_, "terminate pod " + pod_id};
  auto answer = co_await call.rest(http::verb::delete_, "/v2/pods/" + segment(pod_id));
  if (ok(answer)) co_return TerminateResult{false};
  auto& error = std::get<RunPodError>(answer);
  if (error.not_found) co_return TerminateResult{true};
  co_return std::move(error);
}

asio::awaitable<Result<Pod>> Client::bid_resume(std::string pod_id, double bid_per_gpu,
                                                int gpu_count) const {
  Call call{config_, "bid resume pod " + pod_id};
  if (!graphql_enabled()) co_return call.graphql_off();
  auto data = co_await call.graphql(detail::kBidResumeDocument,
                                    detail::bid_resume_variables(pod_id, bid_per_gpu, gpu_count));
  if (!ok(data)) co_return std::get<RunPodError>(std::move(data));
  const Json pod_json = std::get<Json>(data).value("podBidResume", Json());
  if (pod_json.is_null()) {
    co_return RunPodError{ErrorKind::client, 200, "RunPod " + call.name + ": the pod is gone",
                          std::nullopt, true};
  }
  auto pod = detail::parse_graphql_pod(pod_json);
  if (!pod) co_return call.unreadable("pod");
  co_return *pod;
}

asio::awaitable<Result<PodFacts>> Client::pod_facts(std::string pod_id) const {
  Call call{config_, "pod facts " + pod_id};
  PodFacts facts;
  if (!graphql_enabled()) {
    facts.warning = "machine id, pod type and last status change of pod " + pod_id +
                    " are unknown: the GraphQL API is off (RUNPOD_GRAPHQL_URL=off)";
    warn(facts.warning);
    co_return facts;
  }
  auto data = co_await call.graphql(detail::kPodFactsDocument, detail::pod_facts_variables(pod_id));
  if (!ok(data)) co_return std::get<RunPodError>(std::move(data));
  const Json pod = std::get<Json>(data).value("pod", Json());
  if (!pod.is_object()) {
    facts.warning = "machine id, pod type and last status change of pod " + pod_id +
                    " are unknown: RunPod's GraphQL API says the pod is gone";
    warn(facts.warning);
    co_return facts;
  }
  facts.machine_id = pod.value("machineId", std::string());
  facts.pod_type = pod.value("podType", std::string());
  facts.last_status_change = pod.value("lastStatusChange", std::string());
  if (auto cost = pod.find("costPerHr"); cost != pod.end() && cost->is_number()) {
    facts.cost_per_hr = cost->get<double>();
  }
  co_return facts;
}

asio::awaitable<Result<std::vector<GpuType>>> Client::gpu_types() const {
  Call call{config_, "list GPU types"};
  auto answer =
      co_await call.rest(http::verb::get, "/v2/catalog/gpus?include=AVAILABILITY&product=POD");
  if (!ok(answer)) co_return std::get<RunPodError>(std::move(answer));
  const Json& json = std::get<Json>(answer);
  auto gpus = json.is_object() ? json.find("gpus") : json.end();
  if (!json.is_object() || gpus == json.end() || !gpus->is_array()) {
    co_return call.unreadable("gpus list");
  }
  std::vector<GpuType> out;
  for (const auto& item : *gpus) {
    if (auto gpu = detail::parse_gpu_type(item)) out.push_back(std::move(*gpu));
  }
  co_return out;
}

asio::awaitable<Result<LogStreamEnd>> Client::stream_logs(
    std::string pod_id, LogStreamOptions options,
    std::function<bool(const LogLine&)> on_line) const {
  Call call{config_, "stream logs of pod " + pod_id};
  std::string path = "/v2/pods/" + segment(pod_id) + "/logs";
  if (options.tail) path += "?tail=" + std::to_string(*options.tail);
  auto request = call.request(http::verb::get, config_.rest_url + path, std::nullopt);
  request.headers.back() = {"Accept", "text/event-stream"};
  if (!options.last_event_id.empty()) {
    request.headers.emplace_back("Last-Event-ID", options.last_event_id);
  }
  SseParser parser;
  LogStreamEnd end{options.last_event_id, false};
  auto on_event = [&](const SseParser::Event& event) {
    if (event.type != "message") return true;
    LogLine line;
    line.event_id = event.id;
    const Json data = Json::parse(event.data, nullptr, /*allow_exceptions=*/false);
    if (data.is_object()) {
      line.source = data.value("source", std::string());
      line.ts = data.value("ts", std::string());
      line.text = data.value("line", std::string());
    } else {
      line.text = event.data;
    }
    if (!event.id.empty()) end.last_event_id = event.id;
    // A multi-line payload is delivered line by line.
    std::string_view rest = line.text;
    for (;;) {
      const auto newline = rest.find('\n');
      LogLine part = line;
      part.text = std::string(rest.substr(0, newline));
      if (!on_line(part)) return false;
      if (newline == std::string_view::npos) break;
      rest.remove_prefix(newline + 1);
    }
    return true;
  };
  auto sink = [&](std::string_view chunk) {
    const bool keep_going = parser.feed(chunk, on_event);
    if (!keep_going) end.stopped_by_callback = true;
    return keep_going;
  };
  auto result = co_await net::fetch_stream(std::move(request), sink, options.read_timeout);
  if (auto* failure = std::get_if<net::Failure>(&result)) {
    co_return detail::network_error(
        call.name, *failure,
        failure->stage == "reading the response stream" ? options.read_timeout : config_.timeout);
  }
  auto& response = std::get<net::Response>(result);
  if (response.status < 200 || response.status >= 300) {
    co_return redacted(detail::rest_error(call.name, response), config_.api_key);
  }
  co_return end;
}

}  // namespace podflow::runpod
