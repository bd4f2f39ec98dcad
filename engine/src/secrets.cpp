// Secret detection and masking.
#include "podflow/engine/secrets.hpp"

#include <algorithm>
#include <cctype>

extern char** environ;

namespace podflow::engine {

bool is_secret_name(std::string_view name) {
  std::string upper(name);
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (std::string_view marker : {"KEY", "TOKEN", "SECRET", "PASSWORD"}) {
    if (upper.find(marker) != std::string::npos) return true;
  }
  return false;
}

SecretMasker SecretMasker::from_environment() {
  SecretMasker masker;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    const auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    if (is_secret_name(text.substr(0, eq))) masker.add(std::string(text.substr(eq + 1)));
  }
  return masker;
}

void SecretMasker::add(std::string value) {
  if (value.size() < kMinSecretLength) return;
  // Logs are masked line by line, so each line of a multi-line secret (a PEM key) is a secret too.
  if (value.find('\n') != std::string::npos) {
    std::size_t start = 0;
    for (std::size_t nl; (nl = value.find('\n', start)) != std::string::npos; start = nl + 1) {
      add(value.substr(start, nl - start));
    }
    add(value.substr(start));
  }
  if (std::find(secrets_.begin(), secrets_.end(), value) != secrets_.end()) return;
  secrets_.push_back(std::move(value));
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string SecretMasker::mask(std::string_view text) const {
  std::string out(text);
  for (const auto& secret : secrets_) {
    std::size_t pos = 0;
    while ((pos = out.find(secret, pos)) != std::string::npos) {
      out.replace(pos, secret.size(), "***");
      pos += 3;
    }
  }
  return out;
}

Json SecretMasker::mask_json(const Json& value) const {
  if (secrets_.empty()) return value;
  if (value.is_string()) return Json(mask(std::string_view(value.get_ref<const std::string&>())));
  if (value.is_array() || value.is_object()) {
    Json out = value;
    for (auto& item : out) item = mask_json(item);
    return out;
  }
  return value;
}

}  // namespace podflow::engine
