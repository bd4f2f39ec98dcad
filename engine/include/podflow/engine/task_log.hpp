// Task logs on disk: $PODFLOW_HOME/logs/<run>/<task>/<try>.log, appended as output arrives.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "podflow/engine/operator.hpp"
#include "podflow/engine/secrets.hpp"

namespace podflow::engine {

std::filesystem::path task_log_path(const std::filesystem::path& logs_dir,
                                    const std::string& run_id, const std::string& task_id,
                                    int try_number);

// Appends masked text line by line (a secret split across two writes is still masked). An optional
// observer sees each masked line (`podflow run` prints them live).
class FileTaskLog final : public TaskLog {
 public:
  using LineObserver = std::function<void(std::string_view line)>;
  FileTaskLog(std::filesystem::path path, std::shared_ptr<const SecretMasker> masker,
              LineObserver observer = {});
  ~FileTaskLog() override;
  void write(std::string_view text) override;
  void close();  // writes a final partial line

 private:
  void emit(std::string_view line);
  std::mutex mutex_;
  std::filesystem::path path_;
  int fd_ = -1;
  bool opened_ = false;
  std::shared_ptr<const SecretMasker> masker_;
  LineObserver observer_;
  std::string pending_;
};

}  // namespace podflow::engine
