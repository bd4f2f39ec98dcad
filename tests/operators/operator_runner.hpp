// Test helpers: runs one operator coroutine the way the engine does, and records its task log.
#pragma once

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "podflow/engine/operator.hpp"

namespace podflow::testing {

// Runs one awaitable to completion on a fresh io_context and returns its value; an exception
// inside it fails the test.
template <typename T>
T run_to_completion(boost::asio::awaitable<T> call) {
  boost::asio::io_context io;
  std::optional<T> out;
  boost::asio::co_spawn(
      io, [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(call)); },
      [](const std::exception_ptr& error) {
        if (error) std::rethrow_exception(error);
      });
  io.run();
  if (!out) throw std::logic_error("the awaitable did not complete");
  return std::move(*out);
}

// A TaskLog that keeps everything and lets a test wait until some text has been written.
class RecordingLog final : public engine::TaskLog {
 public:
  void write(std::string_view text) override {
    {
      std::lock_guard lock(mutex_);
      text_.append(text);
    }
    changed_.notify_all();
  }

  std::string text() const {
    std::lock_guard lock(mutex_);
    return text_;
  }

  // True once `needle` was written; false if it was not within `limit`.
  bool wait_for(std::string_view needle, std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return text_.find(needle) != std::string::npos; });
  }

  // The first capture group of the first match of `pattern`, once the log has one.
  std::optional<std::string> wait_for_match(const std::regex& pattern,
                                            std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    std::smatch match;
    if (!changed_.wait_for(lock, limit, [&] { return std::regex_search(text_, match, pattern); })) {
      return std::nullopt;
    }
    return match[1].str();
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string text_;
};

// The error of an outcome, for assertion messages.
inline std::string error_text(const engine::TaskOutcome& outcome) {
  if (!outcome.error) return "no error";
  return std::string(engine::to_string(outcome.error->kind)) + ": " + outcome.error->message;
}

// A directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::random_device random;
    path_ = std::filesystem::temp_directory_path() /
            ("podflow-op-test-" + std::to_string(random()) + std::to_string(random()));
    std::filesystem::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Runs `op.execute(ctx)` on a two-thread io_context with a cancellation signal bound to it, as
// the executor does. Outcome or exception is available through wait().
class OperatorRun {
 public:
  OperatorRun(const engine::Operator& op, engine::TaskContext ctx) {
    auto done = std::make_shared<std::promise<engine::TaskOutcome>>();
    result_ = done->get_future();
    boost::asio::co_spawn(
        io_, op.execute(std::move(ctx)),
        boost::asio::bind_cancellation_slot(
            signal_.slot(), [done](std::exception_ptr error, engine::TaskOutcome outcome) {
              if (error) {
                done->set_exception(error);
              } else {
                done->set_value(std::move(outcome));
              }
            }));
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  OperatorRun(const OperatorRun&) = delete;
  OperatorRun& operator=(const OperatorRun&) = delete;

  ~OperatorRun() {
    work_.reset();
    io_.stop();
    for (auto& thread : threads_) thread.join();
  }

  // Sends a terminal cancellation, from an io thread as the engine does.
  void cancel() {
    boost::asio::post(io_, [this] { signal_.emit(boost::asio::cancellation_type::terminal); });
  }

  // The outcome; rethrows what the operator threw. Fails the test when it takes longer than
  // `limit`.
  engine::TaskOutcome wait(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    if (result_.wait_for(limit) != std::future_status::ready) {
      throw std::runtime_error("operator did not finish in time");
    }
    return result_.get();
  }

 private:
  boost::asio::io_context io_{2};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  boost::asio::cancellation_signal signal_;
  std::future<engine::TaskOutcome> result_;
  std::vector<std::thread> threads_;
};

}  // namespace podflow::testing
