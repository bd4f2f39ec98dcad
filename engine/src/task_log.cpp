// File-backed task logs with secret masking.
#include "podflow/engine/task_log.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace podflow::engine {

std::filesystem::path task_log_path(const std::filesystem::path& logs_dir,
                                    const std::string& run_id, const std::string& task_id,
                                    int try_number) {
  return logs_dir / run_id / task_id / (std::to_string(try_number) + ".log");
}

FileTaskLog::FileTaskLog(std::filesystem::path path, std::shared_ptr<const SecretMasker> masker,
                         LineObserver observer)
    : path_(std::move(path)), masker_(std::move(masker)), observer_(std::move(observer)) {}

FileTaskLog::~FileTaskLog() { close(); }

void FileTaskLog::write(std::string_view text) {
  std::lock_guard lock(mutex_);
  pending_.append(text);
  std::size_t start = 0;
  for (std::size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
    emit(std::string_view(pending_).substr(start, nl - start + 1));
  }
  pending_.erase(0, start);
  // Output without newlines (progress bars, binary) must not grow without bound.
  constexpr std::size_t kMaxLine = 64 * 1024;
  if (pending_.size() > kMaxLine) {
    pending_ += '\n';
    emit(pending_);
    pending_.clear();
  }
}

void FileTaskLog::close() {
  std::lock_guard lock(mutex_);
  if (!pending_.empty()) {
    pending_ += '\n';
    emit(pending_);
    pending_.clear();
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void FileTaskLog::emit(std::string_view line) {
  const std::string masked = masker_ ? masker_->mask(line) : std::string(line);
  if (!opened_) {
    // Opened on the first line: most noop-like tasks never write one, and a file per try adds up.
    opened_ = true;
    std::error_code ec;
    std::filesystem::create_directories(path_.parent_path(), ec);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
  if (fd_ >= 0) {
    std::size_t done = 0;
    while (done < masked.size()) {
      const auto n = ::write(fd_, masked.data() + done, masked.size() - done);
      if (n <= 0) break;  // disk full: the line is lost from the file but still observed below
      done += static_cast<std::size_t>(n);
    }
  }
  if (observer_) observer_(std::string_view(masked).substr(0, masked.size() - 1));
}

}  // namespace podflow::engine
