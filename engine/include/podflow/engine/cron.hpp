// Cron schedules (5 fields and @hourly/@daily/@weekly/@monthly/@yearly) with next-fire computation
// in an IANA time zone, following the DST rules of DESIGN.md section 5.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace podflow::engine {

using SysSeconds = std::chrono::sys_seconds;

struct CronParseError {
  int offset = 0;  // byte offset in the expression of the offending field
  std::string message;
};

class CronSchedule {
 public:
  // The first problem of a bad expression; problems() lists each bad field.
  static std::variant<CronSchedule, CronParseError> parse(std::string_view expression);
  static std::vector<CronParseError> problems(std::string_view expression);

  // The first fire time strictly after `after`, evaluated in `time_zone` (an IANA name; must exist:
  // check with is_known_time_zone first). nullopt when the expression can never fire (Feb 30).
  std::optional<SysSeconds> next_after(SysSeconds after, const std::string& time_zone) const;

  const std::string& expression() const { return expression_; }

 private:
  std::string expression_;
  // Bit sets of allowed values, filled by parse().
  std::uint64_t minutes_ = 0;
  std::uint32_t hours_ = 0;
  std::uint32_t days_of_month_ = 0;  // bits 1..31
  std::uint16_t months_ = 0;         // bits 1..12
  std::uint8_t days_of_week_ = 0;    // bits 0..6, Sunday 0
  bool day_of_month_restricted_ = false;
  bool day_of_week_restricted_ = false;
  bool minute_star_ = false;
  bool hour_star_ = false;

  // Helpers of next_after (cron.cpp). Local wall-clock times are durations since 1970-01-01 00:00
  // local, so this header needs no date/tz types.
  bool day_matches(unsigned day_of_month, unsigned weekday) const;  // weekday: Sunday 0
  std::optional<std::chrono::seconds> next_local_match(std::chrono::seconds from,
                                                       std::chrono::seconds limit) const;
  static std::variant<CronSchedule, std::vector<CronParseError>> parse_all(
      std::string_view expression);
  friend struct CronScheduleAccess;
};

bool is_known_time_zone(const std::string& name);

// One line of `podflow next`: "2026-03-29T01:00:00Z  2026-03-29 03:00:00+02:00 CEST" (the
// abbreviation is left out when the zone has only a numeric one, such as "-03").
std::string format_fire_time(SysSeconds when, const std::string& time_zone);

// Parses ISO-8601 as accepted by `podflow next --after`: 2026-03-29T01:00:00Z, with an offset
// (+02:00), or without one (then local time in `time_zone`).
std::optional<SysSeconds> parse_iso8601(std::string_view text, const std::string& time_zone);

}  // namespace podflow::engine
