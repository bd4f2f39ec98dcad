// Parsing and formatting of workflow durations.
#include "podflow/engine/duration.hpp"

#include <array>
#include <cctype>
#include <limits>

namespace podflow::engine {
namespace {

struct Unit {
  std::string_view suffix;
  std::int64_t millis;
};
// Largest first; "ms" is tested before "m" when reading.
constexpr std::array<Unit, 5> kUnits{
    {{"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1}}};

}  // namespace

std::optional<Millis> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::size_t next_unit = 0;  // units must appear largest first, each once
  std::size_t i = 0;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
    std::int64_t number = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (number > (std::numeric_limits<std::int64_t>::max() - 9) / 10) return std::nullopt;
      number = number * 10 + (text[i] - '0');
      ++i;
    }
    std::size_t unit_index = kUnits.size();
    if (text.substr(i, 2) == "ms") {
      unit_index = 4;
    } else if (i < text.size()) {
      for (std::size_t u = 0; u < 4; ++u) {
        if (text[i] == kUnits[u].suffix[0]) unit_index = u;
      }
    }
    if (unit_index == kUnits.size() || unit_index < next_unit) return std::nullopt;
    i += kUnits[unit_index].suffix.size();
    next_unit = unit_index + 1;
    const std::int64_t factor = kUnits[unit_index].millis;
    if (number > (std::numeric_limits<std::int64_t>::max() - total) / factor) return std::nullopt;
    total += number * factor;
  }
  return Millis(total);
}

std::string format_duration(Millis value) {
  std::int64_t left = value.count();
  if (left <= 0) return "0s";
  std::string out;
  for (const auto& unit : kUnits) {
    if (left >= unit.millis) {
      out += std::to_string(left / unit.millis);
      out += unit.suffix;
      left %= unit.millis;
    }
  }
  return out;
}

}  // namespace podflow::engine
