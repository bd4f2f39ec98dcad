// Name tables for the engine's enums (error kinds, states, trigger rules, value types): one lookup
// each way, shared by every table.
#pragma once

#include <array>
#include <optional>
#include <string_view>
#include <utility>

namespace podflow::engine::detail {

template <typename Enum, std::size_t N>
using EnumNames = std::array<std::pair<Enum, std::string_view>, N>;

// The name of `value`; the first entry's name for a value missing from the table (a bug).
template <typename Enum, std::size_t N>
std::string_view name_of(const EnumNames<Enum, N>& table, Enum value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return table[0].second;
}

template <typename Enum, std::size_t N>
std::optional<Enum> value_of(const EnumNames<Enum, N>& table, std::string_view text) {
  for (const auto& [v, name] : table) {
    if (name == text) return v;
  }
  return std::nullopt;
}

}  // namespace podflow::engine::detail
