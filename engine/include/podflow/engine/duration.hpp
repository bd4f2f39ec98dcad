// Durations as workflow files write them: 250ms, 30s, 10m, 6h, 1h30m, 2d.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace podflow::engine {

using Millis = std::chrono::milliseconds;

// Parses a sequence of <integer><unit> pairs (units d, h, m, s, ms), largest unit first, each unit
// at most once. Returns nullopt for anything else, including an empty string and overflow.
std::optional<Millis> parse_duration(std::string_view text);

// The shortest text that parse_duration reads back to the same value ("1h30m", "250ms", "0s").
std::string format_duration(Millis value);

}  // namespace podflow::engine
