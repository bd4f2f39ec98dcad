// MLflow REST calls: configuration from MLflow's environment variables, retries, error parsing,
// experiment get-or-create, idempotent run creation and log-batch chunking.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <cmath>
#include <cstdlib>
#include <random>

#include "operators/net/http_client.hpp"
#include "podflow/operators/mlflow_client.hpp"

namespace podflow::mlflow {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using engine::ErrorKind;

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

std::string strip_trailing_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

std::string base64(std::string_view in) {
  static constexpr std::string_view kTable =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    std::uint32_t n = 0;
    const std::size_t count = std::min<std::size_t>(3, in.size() - i);
    for (std::size_t k = 0; k < 3; ++k) {
      n <<= 8U;
      if (k < count) n |= static_cast<unsigned char>(in[i + k]);
    }
    for (std::size_t k = 0; k < 4; ++k) {
      out += k <= count ? kTable[(n >> (18 - 6 * k)) & 63U] : '=';
    }
  }
  return out;
}

// Cuts `text` to at most `limit` characters (UTF-8 code points, as MLflow counts them).
bool truncate_chars(std::string& text, std::size_t limit) {
  std::size_t chars = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0U) == 0x80U) continue;  // continuation byte
    if (chars == limit) {
      text.resize(i);
      return true;
    }
    ++chars;
  }
  return false;
}

// The status MLflow's Python client derives when the body has no error_code (plain-text answers
// from auth, host checks and proxies).
std::string code_for_status(unsigned status) {
  switch (status) {
    case 400:
      return "BAD_REQUEST";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "ENDPOINT_NOT_FOUND";
    case 429:
      return "REQUEST_LIMIT_EXCEEDED";
    default:
      return status >= 500 ? "INTERNAL_ERROR" : "HTTP_" + std::to_string(status);
  }
}

ErrorKind kind_for_status(unsigned status) {
  if (status == 408) return ErrorKind::timeout;
  if (status == 429) return ErrorKind::rate_limited;
  if (status == 401 || status == 403) return ErrorKind::auth;
  if (status >= 500) return ErrorKind::server;
  return ErrorKind::client;
}

// Plain function, not braces in co_return: GCC 12 rejects aggregate temporaries there.
MlflowError make_error(ErrorKind kind, std::string code, std::string message) {
  MlflowError error;
  error.kind = kind;
  error.error_code = std::move(code);
  error.message = std::move(message);
  return error;
}

bool retried(const MlflowError& error) {
  return error.kind == ErrorKind::timeout || error.kind == ErrorKind::rate_limited ||
         error.kind == ErrorKind::server || error.kind == ErrorKind::network;
}

// A bounded, single-line piece of a plain-text answer for messages.
std::string snippet(std::string_view body) {
  std::string out(body.substr(0, 300));
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (body.size() > 300) out += "...";
  return out;
}

MlflowError error_from_response(const std::string& what, const net::Response& response) {
  MlflowError error;
  error.http_status = response.status;
  error.kind = kind_for_status(response.status);
  error.retry_after = response.retry_after();
  const Json json = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (json.is_object() && json.contains("error_code") && json["error_code"].is_string()) {
    error.error_code = json["error_code"].get<std::string>();
    error.message = json.value("message", std::string());
  } else {
    error.error_code = code_for_status(response.status);
    error.message = snippet(response.body);
  }
  error.message = "MLflow " + what + " answered " + std::to_string(response.status) + " " +
                  error.error_code + (error.message.empty() ? "" : ": " + error.message);
  if (error.kind == ErrorKind::auth) {
    error.message += " (check MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD)";
  }
  return error;
}

MlflowError error_from_failure(const std::string& what, const net::Failure& failure,
                               std::chrono::milliseconds timeout) {
  MlflowError error;
  error.kind = net::error_kind(failure.kind);
  error.error_code = "NETWORK";
  error.message = "MLflow " + what + " " + failure.describe(timeout);
  return error;
}

std::string query_string(const KeyValues& query) {
  std::string out;
  for (const auto& [key, value] : query) {
    out += out.empty() ? "?" : "&";
    out += boost::urls::encode(key, boost::urls::unreserved_chars) + "=" +
           boost::urls::encode(value, boost::urls::unreserved_chars);
  }
  return out;
}

Json key_values_json(const KeyValues& items) {
  Json out = Json::array();
  for (const auto& [key, value] : items) out.push_back(Json{{"key", key}, {"value", value}});
  return out;
}

Json metric_json(const Metric& m) {
  return Json{{"key", m.key},
              {"value", metric_value(m.value)},
              {"timestamp", m.timestamp_ms},
              {"step", m.step}};
}

// A runs/search filter matching every tag exactly (keys in backticks: they contain dots).
std::string tag_filter(const KeyValues& tags) {
  std::string filter;
  for (const auto& [key, value] : tags) {
    std::string quoted;
    for (char c : value) {
      if (c == '\'') quoted += '\\';
      quoted += c;
    }
    if (!filter.empty()) filter += " and ";
    filter += "tags.`" + key + "` = '" + quoted + "'";
  }
  return filter;
}

}  // namespace

std::variant<Config, std::string> config_from_env(const std::string& tracking_uri) {
  Config config;
  config.tracking_uri =
      strip_trailing_slash(tracking_uri.empty() ? env("MLFLOW_TRACKING_URI") : tracking_uri);
  if (config.tracking_uri.empty()) {
    return std::string(
        "no MLflow server: set MLFLOW_TRACKING_URI (e.g. https://mlflow.example.com) or the "
        "task's tracking_uri");
  }
  if (!config.tracking_uri.starts_with("http://") && !config.tracking_uri.starts_with("https://")) {
    return "MLflow tracking URI '" + config.tracking_uri +
           "' is not an http(s) server; podflow talks to MLflow's REST API only";
  }
  config.token = env("MLFLOW_TRACKING_TOKEN");
  config.username = env("MLFLOW_TRACKING_USERNAME");
  config.password = env("MLFLOW_TRACKING_PASSWORD");
  const std::string insecure = env("MLFLOW_TRACKING_INSECURE_TLS");
  config.insecure_tls = insecure == "true" || insecure == "True" || insecure == "1";
  config.ca_file = env("MLFLOW_TRACKING_SERVER_CERT_PATH");
  if (config.insecure_tls && !config.ca_file.empty()) {
    return std::string(
        "MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH are both set; unset "
        "one (as MLflow's own client requires)");
  }
  if (const std::string timeout = env("MLFLOW_HTTP_REQUEST_TIMEOUT"); !timeout.empty()) {
    char* end = nullptr;
    const long seconds = std::strtol(timeout.c_str(), &end, 10);
    if (*end != '\0' || seconds <= 0) {
      return "MLFLOW_HTTP_REQUEST_TIMEOUT must be a whole number of seconds, got '" + timeout + "'";
    }
    config.timeout = std::chrono::seconds(seconds);
  }
  if (const std::string retries = env("MLFLOW_HTTP_REQUEST_MAX_RETRIES"); !retries.empty()) {
    char* end = nullptr;
    const long n = std::strtol(retries.c_str(), &end, 10);
    if (*end != '\0' || n < 0 || n >= 10) {
      return "MLFLOW_HTTP_REQUEST_MAX_RETRIES must be 0-9, got '" + retries + "'";
    }
    config.max_retries = static_cast<int>(n);
  }
  return config;
}

Json metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  return value;
}

KeyValues cut_values(const KeyValues& items, std::size_t limit, const char* what,
                     std::vector<std::string>& warnings) {
  KeyValues out = items;
  for (auto& [key, value] : out) {
    if (truncate_chars(value, limit)) {
      warnings.push_back(std::string(what) + " '" + key + "' was longer than MLflow's limit of " +
                         std::to_string(limit) + " characters; sent its first " +
                         std::to_string(limit));
    }
  }
  return out;
}

std::vector<Json> batch_bodies(const std::string& run_id, const std::vector<Metric>& metrics,
                               const KeyValues& params, const KeyValues& tags,
                               std::vector<std::string>& warnings) {
  const KeyValues kept_params = cut_values(params, kMaxParamValue, "param", warnings);
  const KeyValues kept_tags = cut_values(tags, kMaxTagValue, "tag", warnings);

  std::vector<Json> bodies;
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t m = 0;
  while (p < kept_params.size() || t < kept_tags.size() || m < metrics.size() || bodies.empty()) {
    Json body = {{"run_id", run_id},
                 {"metrics", Json::array()},
                 {"params", Json::array()},
                 {"tags", Json::array()}};
    std::size_t size = body.dump().size();
    std::size_t entities = 0;
    auto fits = [&](const Json& item) { return size + item.dump().size() + 1 <= kMaxBatchBytes; };
    for (std::size_t n = 0; p < kept_params.size() && n < kMaxParamsOrTagsPerBatch; ++n, ++p) {
      Json item = {{"key", kept_params[p].first}, {"value", kept_params[p].second}};
      if (!fits(item) && entities > 0) break;
      size += item.dump().size() + 1;
      ++entities;
      body["params"].push_back(std::move(item));
    }
    for (std::size_t n = 0; t < kept_tags.size() && n < kMaxParamsOrTagsPerBatch; ++n, ++t) {
      Json item = {{"key", kept_tags[t].first}, {"value", kept_tags[t].second}};
      if (!fits(item) && entities > 0) break;
      size += item.dump().size() + 1;
      ++entities;
      body["tags"].push_back(std::move(item));
    }
    for (std::size_t n = 0;
         m < metrics.size() && n < kMaxMetricsPerBatch && entities < kMaxEntitiesPerBatch;
         ++n, ++m) {
      Json item = metric_json(metrics[m]);
      if (!fits(item) && entities > 0) break;
      size += item.dump().size() + 1;
      ++entities;
      body["metrics"].push_back(std::move(item));
    }
    bodies.push_back(std::move(body));
    if (entities == 0) break;  // nothing to send at all: one empty body is enough
  }
  return bodies;
}

Client::Client(Config config, WarningSink warn)
    : config_(std::move(config)), warn_(std::move(warn)) {
  config_.tracking_uri = strip_trailing_slash(config_.tracking_uri);
}

asio::awaitable<Result<Json>> Client::call_once(const std::string& method, const std::string& path,
                                                const Json& body, const KeyValues& query) const {
  net::Request request;
  request.method = method == "GET" ? http::verb::get : http::verb::post;
  request.url = config_.tracking_uri + "/api/2.0/mlflow/" + path + query_string(query);
  request.headers = {{"Accept", "application/json"}};
  if (!config_.username.empty() && !config_.password.empty()) {
    request.headers.emplace_back("Authorization",
                                 "Basic " + base64(config_.username + ":" + config_.password));
  } else if (!config_.token.empty()) {
    request.headers.emplace_back("Authorization", "Bearer " + config_.token);
  }
  if (request.method == http::verb::post) {
    request.headers.emplace_back("Content-Type", "application/json");
    request.body = body.dump();
  }
  request.timeout = config_.timeout;
  request.ca_file = config_.ca_file;
  if (config_.insecure_tls) request.tls_verify = net::Request::TlsVerify::off;
  // Credentials travel only over TLS, or to this machine.
  request.plain_http = config_.token.empty() && config_.password.empty()
                           ? net::PlainHttp::anywhere
                           : net::PlainHttp::loopback_only;
  auto result = co_await net::fetch(std::move(request));
  if (auto* failure = std::get_if<net::Failure>(&result)) {
    co_return error_from_failure(path, *failure, config_.timeout);
  }
  const auto& response = std::get<net::Response>(result);
  if (response.status < 200 || response.status >= 300) {
    co_return error_from_response(path, response);
  }
  if (response.body.empty()) co_return Json::object();
  Json json = Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    auto error = make_error(
        ErrorKind::server, "BAD_RESPONSE",
        "MLflow " + path + " answered with something that is not JSON: " + snippet(response.body));
    error.http_status = response.status;
    co_return error;
  }
  co_return json;
}

asio::awaitable<Result<Json>> Client::call(std::string method, std::string path, Json body,
                                           KeyValues query) const {
  std::mt19937_64 random(std::random_device{}());
  auto delay = config_.backoff;
  for (int attempt = 0;; ++attempt) {
    auto result = co_await call_once(method, path, body, query);
    auto* error = std::get_if<MlflowError>(&result);
    if (!error || !retried(*error) || attempt >= config_.max_retries) co_return result;
    // Full jitter over the doubling delay, never less than the server's Retry-After.
    std::uniform_int_distribution<long long> jitter(0, delay.count());
    auto wait = std::chrono::milliseconds(jitter(random));
    if (error->retry_after)
      wait = std::max(wait, std::min(*error->retry_after, config_.max_backoff));
    if (warn_) {
      warn_(error->message + "; retrying in " + std::to_string(wait.count()) + " ms (" +
            std::to_string(attempt + 1) + " of " + std::to_string(config_.max_retries) + ")");
    }
    asio::steady_timer timer(co_await asio::this_coro::executor, wait);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return result;  // cancelled: the last error stands
    delay = std::min(config_.max_backoff, delay * 2);
  }
}

asio::awaitable<Result<std::string>> Client::get_or_create_experiment(std::string name) const {
  for (int round = 0; round < 2; ++round) {
    // Arguments built first: GCC 12 miscompiles braced lists in a coroutine call's arguments.
    KeyValues query = {{"experiment_name", name}};
    auto got = co_await call("GET", "experiments/get-by-name", Json(), std::move(query));
    if (auto* json = std::get_if<Json>(&got)) {
      const Json experiment = json->value("experiment", Json::object());
      const std::string id = experiment.value("experiment_id", std::string());
      if (experiment.value("lifecycle_stage", std::string()) == "deleted") {
        co_return make_error(ErrorKind::client, "EXPERIMENT_DELETED",
                             "MLflow experiment '" + name + "' (id " + id +
                                 ") is deleted; restore it (mlflow experiments restore "
                                 "--experiment-id " +
                                 id + ") or choose another name");
      }
      co_return id;
    }
    const auto& error = std::get<MlflowError>(got);
    if (error.error_code != "RESOURCE_DOES_NOT_EXIST") co_return error;
    Json body = {{"name", name}};
    auto created = co_await call("POST", "experiments/create", std::move(body));
    if (auto* json = std::get_if<Json>(&created)) {
      co_return json->value("experiment_id", std::string());
    }
    // Another client created it between the two calls: read it again.
    if (std::get<MlflowError>(created).error_code != "RESOURCE_ALREADY_EXISTS") {
      co_return std::get<MlflowError>(created);
    }
  }
  co_return make_error(ErrorKind::server, "INTERNAL_ERROR",
                       "MLflow experiment '" + name + "' neither exists nor can be created");
}

asio::awaitable<Result<std::optional<std::string>>> Client::find_run(std::string experiment_id,
                                                                     KeyValues tags) const {
  Json body = {{"experiment_ids", Json::array({experiment_id})},
               {"filter", tag_filter(tags)},
               {"run_view_type", "ACTIVE_ONLY"},
               {"max_results", 1},
               {"order_by", Json::array({"attributes.start_time DESC"})}};
  auto found = co_await call("POST", "runs/search", std::move(body));
  if (auto* error = std::get_if<MlflowError>(&found)) co_return *error;
  const Json runs = std::get<Json>(found).value("runs", Json::array());
  if (runs.empty()) co_return std::optional<std::string>();
  co_return std::optional<std::string>(
      runs[0].value("info", Json::object()).value("run_id", std::string()));
}

asio::awaitable<Result<std::string>> Client::create_run(std::string experiment_id,
                                                        std::string run_name,
                                                        std::int64_t start_time_ms, KeyValues tags,
                                                        KeyValues idempotency_tags) const {
  if (!idempotency_tags.empty()) {
    auto existing = co_await find_run(experiment_id, idempotency_tags);
    if (auto* error = std::get_if<MlflowError>(&existing)) co_return *error;
    if (auto& id = std::get<std::optional<std::string>>(existing); id) co_return *id;
  }
  for (const auto& tag : idempotency_tags) tags.push_back(tag);
  std::vector<std::string> warnings;
  tags = cut_values(tags, kMaxTagValue, "tag", warnings);
  if (warn_) {
    for (const auto& warning : warnings) warn_(warning);
  }
  Json body = {{"experiment_id", experiment_id},
               {"start_time", start_time_ms},
               {"tags", key_values_json(tags)}};
  if (!run_name.empty()) body["run_name"] = run_name;
  const KeyValues no_query;  // named: GCC 12 mishandles braced temporaries in co_await arguments
  // Not through call(): a blind retry of runs/create can make a second run.
  for (int attempt = 0;; ++attempt) {
    auto created = co_await call_once("POST", "runs/create", body, no_query);
    if (auto* json = std::get_if<Json>(&created)) {
      co_return json->value("run", Json::object())
          .value("info", Json::object())
          .value("run_id", std::string());
    }
    const auto error = std::get<MlflowError>(created);
    if (!retried(error) || attempt >= config_.max_retries) co_return error;
    if (warn_) warn_(error.message + "; looking for the run before creating it again");
    // Wait first: a server that answered late may still be committing the run.
    asio::steady_timer timer(
        co_await asio::this_coro::executor,
        std::max(
            std::min(error.retry_after.value_or(std::chrono::milliseconds(0)), config_.max_backoff),
            std::min(config_.max_backoff, config_.backoff * (1 << attempt))));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return error;
    if (!idempotency_tags.empty()) {
      // The run may exist though the answer was lost; without an answer, do not guess.
      auto existing = co_await find_run(experiment_id, idempotency_tags);
      if (auto* search_error = std::get_if<MlflowError>(&existing)) co_return *search_error;
      if (auto& id = std::get<std::optional<std::string>>(existing); id) co_return *id;
    }
  }
}

asio::awaitable<Result<Done>> Client::log_batch(std::string run_id, std::vector<Metric> metrics,
                                                KeyValues params, KeyValues tags) const {
  std::vector<std::string> warnings;
  const auto bodies = batch_bodies(run_id, metrics, params, tags, warnings);
  if (warn_) {
    for (const auto& warning : warnings) warn_(warning);
  }
  for (const auto& body : bodies) {
    auto sent = co_await call("POST", "runs/log-batch", body);
    if (auto* error = std::get_if<MlflowError>(&sent)) co_return *error;
  }
  co_return Done{};
}

asio::awaitable<Result<Done>> Client::update_run(std::string run_id, std::string status,
                                                 std::optional<std::int64_t> end_time_ms) const {
  Json body = {{"run_id", run_id}, {"status", status}};
  if (end_time_ms) body["end_time"] = *end_time_ms;
  auto updated = co_await call("POST", "runs/update", body);
  if (auto* error = std::get_if<MlflowError>(&updated)) co_return *error;
  co_return Done{};
}

asio::awaitable<Result<Json>> Client::get_run(std::string run_id) const {
  KeyValues query = {{"run_id", run_id}};
  auto got = co_await call("GET", "runs/get", Json(), std::move(query));
  if (auto* error = std::get_if<MlflowError>(&got)) co_return *error;
  co_return std::get<Json>(got).value("run", Json::object());
}

asio::awaitable<Result<std::vector<Metric>>> Client::metric_history(std::string run_id,
                                                                    std::string key) const {
  // Paged: MLflow 3.6 answers an empty first page with a token when max_results is left out.
  std::vector<Metric> out;
  std::string page_token;
  for (;;) {
    KeyValues query = {{"run_id", run_id}, {"metric_key", key}, {"max_results", "10000"}};
    if (!page_token.empty()) query.emplace_back("page_token", page_token);
    auto got = co_await call("GET", "metrics/get-history", Json(), std::move(query));
    if (auto* error = std::get_if<MlflowError>(&got)) co_return *error;
    const Json& page = std::get<Json>(got);
    for (const auto& point : page.value("metrics", Json::array())) {
      Metric m;
      m.key = point.value("key", std::string());
      const Json& value = point.value("value", Json());
      if (value.is_number()) {
        m.value = value.get<double>();
      } else if (value == "NaN") {
        m.value = std::nan("");
      } else if (value == "Infinity" || value == "-Infinity") {
        m.value = value == "Infinity" ? HUGE_VAL : -HUGE_VAL;
      }
      m.timestamp_ms = point.value("timestamp", std::int64_t{0});
      m.step = point.value("step", std::int64_t{0});
      out.push_back(std::move(m));
    }
    const std::string next = page.value("next_page_token", std::string());
    if (next.empty() || page.value("metrics", Json::array()).empty()) break;
    page_token = next;
  }
  co_return out;
}

std::string Client::run_url(const std::string& experiment_id, const std::string& run_id) const {
  return config_.tracking_uri + "/#/experiments/" + experiment_id + "/runs/" + run_id;
}

}  // namespace podflow::mlflow
