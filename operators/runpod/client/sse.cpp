// Server-Sent Events parsing, fed chunk by chunk as the log stream arrives.
#include "podflow/operators/runpod_client.hpp"

namespace podflow::runpod {

bool SseParser::feed(std::string_view bytes, const std::function<bool(const Event&)>& on_event) {
  pending_.append(bytes);
  std::size_t start = 0;
  if (skip_lf_ && !pending_.empty()) {
    if (pending_[0] == '\n') start = 1;
    skip_lf_ = false;
  }
  for (;;) {
    const std::size_t end = pending_.find_first_of("\r\n", start);
    if (end == std::string::npos) break;
    const std::string line = pending_.substr(start, end - start);
    start = end + 1;
    if (pending_[end] == '\r') {
      if (start < pending_.size()) {
        if (pending_[start] == '\n') ++start;
      } else {
        skip_lf_ = true;  // CRLF split across chunks
      }
    }
    if (!process_line(line, on_event)) {
      pending_.erase(0, start);
      return false;
    }
  }
  pending_.erase(0, start);
  return true;
}

bool SseParser::process_line(std::string_view line,
                             const std::function<bool(const Event&)>& on_event) {
  if (!started_) {
    started_ = true;
    if (line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);  // a leading BOM
  }
  if (line.empty()) {
    // Dispatch. An event without data only updates the id.
    if (!has_data_) {
      type_.clear();
      return true;
    }
    Event event{last_event_id_, type_.empty() ? std::string("message") : type_, data_};
    type_.clear();
    data_.clear();
    has_data_ = false;
    return on_event(event);
  }
  if (line.front() == ':') return true;  // comment (keep-alive)
  std::string_view field = line;
  std::string_view value;
  if (auto colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_ += '\n';
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    type_ = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_event_id_ = std::string(value);
  } else if (field == "retry") {
    if (!value.empty() && value.size() < 10 &&
        value.find_first_not_of("0123456789") == std::string_view::npos) {
      retry_ = std::chrono::milliseconds(std::stoll(std::string(value)));
    }
  }
  return true;
}

}  // namespace podflow::runpod
