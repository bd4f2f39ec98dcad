// The operator registry that app/ fills explicitly, and schema look-ups.
#include "podflow/engine/operator.hpp"

#include <cassert>

namespace podflow::engine {

const ArgSpec* OperatorSchema::find_arg(std::string_view arg_name) const {
  for (const auto& arg : args) {
    if (arg.name == arg_name) return &arg;
  }
  return nullptr;
}

void OperatorRegistry::add(std::shared_ptr<const Operator> op) {
  assert(op);
  std::string key(op->name());
  const bool inserted = ops_.emplace(std::move(key), std::move(op)).second;
  assert(inserted && "operator registered twice");
  (void)inserted;
}

std::shared_ptr<const Operator> OperatorRegistry::find(std::string_view op_name) const {
  auto it = ops_.find(op_name);
  return it == ops_.end() ? nullptr : it->second;
}

std::vector<std::string> OperatorRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& entry : ops_) out.push_back(entry.first);
  return out;
}

}  // namespace podflow::engine
