// Masks secret values (environment variables named like keys or tokens, secret params) as ***.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "podflow/engine/json.hpp"

namespace podflow::engine {

// True for names containing KEY, TOKEN, SECRET or PASSWORD, in any case.
bool is_secret_name(std::string_view name);

class SecretMasker {
 public:
  // Values shorter than this are not masked: masking "1" would garble every log line.
  static constexpr std::size_t kMinSecretLength = 4;

  // Every environment variable whose name is_secret_name().
  static SecretMasker from_environment();

  void add(std::string value);
  std::string mask(std::string_view text) const;
  Json mask_json(const Json& value) const;  // every string inside, recursively
  bool empty() const { return secrets_.empty(); }

 private:
  std::vector<std::string> secrets_;  // longest first, so a secret containing another masks whole
};

}  // namespace podflow::engine
