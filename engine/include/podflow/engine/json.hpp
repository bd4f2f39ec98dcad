// The JSON value type used for operator arguments, outputs and params throughout podflow.
#pragma once

#include <nlohmann/json.hpp>

namespace podflow {
using Json = nlohmann::ordered_json;
}  // namespace podflow
