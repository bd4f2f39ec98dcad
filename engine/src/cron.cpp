// Cron parsing and next-fire computation (being implemented).
#include "podflow/engine/cron.hpp"

namespace podflow::engine {

std::variant<CronSchedule, CronParseError> CronSchedule::parse(std::string_view) {
  return CronParseError{0, "cron is not implemented yet"};
}
std::optional<SysSeconds> CronSchedule::next_after(SysSeconds, const std::string&) const {
  return std::nullopt;
}
bool is_known_time_zone(const std::string& name) { return name == "UTC"; }
std::string format_fire_time(SysSeconds, const std::string&) { return {}; }
std::optional<SysSeconds> parse_iso8601(std::string_view, const std::string&) {
  return std::nullopt;
}

}  // namespace podflow::engine
