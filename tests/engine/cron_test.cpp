// Tests of cron parsing, next fire times across DST changes in several zones, and the time helpers
// behind `podflow next`.
#include "podflow/engine/cron.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <variant>
#include <vector>

namespace {

using podflow::engine::CronParseError;
using podflow::engine::CronSchedule;
using podflow::engine::format_fire_time;
using podflow::engine::is_known_time_zone;
using podflow::engine::parse_iso8601;
using podflow::engine::SysSeconds;

SysSeconds utc(const std::string& text) {
  const auto parsed = parse_iso8601(text, "UTC");
  REQUIRE_MESSAGE(parsed.has_value(), text);
  return *parsed;
}

std::string iso(SysSeconds when) { return format_fire_time(when, "UTC").substr(0, 20); }

CronSchedule schedule(const std::string& expression) {
  auto parsed = CronSchedule::parse(expression);
  if (const auto* error = std::get_if<CronParseError>(&parsed)) {
    FAIL("'" << expression << "' did not parse: " << error->message);
  }
  return std::get<CronSchedule>(parsed);
}

// The next `count` fire times after `after`, in UTC, as ISO strings.
std::vector<std::string> next_fires(const std::string& expression, const std::string& after,
                                    const std::string& zone = "UTC", int count = 4) {
  const CronSchedule cron = schedule(expression);
  std::vector<std::string> fires;
  SysSeconds from = utc(after);
  for (int i = 0; i < count; ++i) {
    const auto next = cron.next_after(from, zone);
    if (!next) break;
    fires.push_back(iso(*next));
    from = *next;
  }
  return fires;
}

CronParseError parse_error(const std::string& expression) {
  auto parsed = CronSchedule::parse(expression);
  const auto* error = std::get_if<CronParseError>(&parsed);
  REQUIRE_MESSAGE(error != nullptr, "'" << expression << "' parsed but should not");
  return *error;
}

using Fires = std::vector<std::string>;

}  // namespace

// Failed comparisons of fire-time lists print the lists.
template <>
struct doctest::StringMaker<Fires> {
  static doctest::String convert(const Fires& fires) {
    std::string text = "{";
    for (const std::string& fire : fires) text += (text.size() > 1 ? ", " : "") + fire;
    return (text + "}").c_str();
  }
};

TEST_SUITE("Cron" * doctest::timeout(30)) {
  TEST_CASE("Cron.lists_ranges_and_steps") {
    CHECK(next_fires("1,5 * * * *", "2026-01-01T00:00:00Z", "UTC", 3) ==
          Fires{"2026-01-01T00:01:00Z", "2026-01-01T00:05:00Z", "2026-01-01T01:01:00Z"});
    CHECK(next_fires("*/15 * * * *", "2026-01-01T00:00:00Z") ==
          Fires{"2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z",
                "2026-01-01T01:00:00Z"});
    CHECK(next_fires("1-30/10 * * * *", "2026-01-01T00:00:00Z") ==
          Fires{"2026-01-01T00:01:00Z", "2026-01-01T00:11:00Z", "2026-01-01T00:21:00Z",
                "2026-01-01T01:01:00Z"});
    // start/step runs from start to the end of the field.
    CHECK(next_fires("5/20 * * * *", "2026-01-01T00:00:00Z") ==
          Fires{"2026-01-01T00:05:00Z", "2026-01-01T00:25:00Z", "2026-01-01T00:45:00Z",
                "2026-01-01T01:05:00Z"});
    CHECK(next_fires("0 9-17/4 * * *", "2026-01-01T00:00:00Z") ==
          Fires{"2026-01-01T09:00:00Z", "2026-01-01T13:00:00Z", "2026-01-01T17:00:00Z",
                "2026-01-02T09:00:00Z"});
  }

  TEST_CASE("Cron.next_is_strictly_after_and_ignores_seconds") {
    CHECK(next_fires("0 3 * * *", "2026-01-01T03:00:00Z", "UTC", 1) ==
          Fires{"2026-01-02T03:00:00Z"});
    CHECK(next_fires("* * * * *", "2026-01-01T00:00:30Z", "UTC", 2) ==
          Fires{"2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"});
    CHECK(next_fires("59 23 31 12 *", "2026-12-31T23:58:59Z", "UTC", 2) ==
          Fires{"2026-12-31T23:59:00Z", "2027-12-31T23:59:00Z"});
  }

  TEST_CASE("Cron.month_and_day_names_any_case_and_in_ranges") {
    CHECK(next_fires("0 0 1 jan,Jul *", "2026-02-01T00:00:00Z", "UTC", 3) ==
          Fires{"2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-07-01T00:00:00Z"});
    CHECK(next_fires("0 0 1 OCT-dec *", "2026-02-01T00:00:00Z", "UTC", 4) ==
          Fires{"2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z",
                "2027-10-01T00:00:00Z"});
    // 2026-01-02 is a Friday: the working week skips the weekend.
    CHECK(next_fires("0 12 * * mon-FRI", "2026-01-02T00:00:00Z", "UTC", 3) ==
          Fires{"2026-01-02T12:00:00Z", "2026-01-05T12:00:00Z", "2026-01-06T12:00:00Z"});
    CHECK(next_fires("0 12 * * Sat,sun", "2026-01-01T00:00:00Z", "UTC", 3) ==
          Fires{"2026-01-03T12:00:00Z", "2026-01-04T12:00:00Z", "2026-01-10T12:00:00Z"});
  }

  TEST_CASE("Cron.day_of_week_7_is_sunday") {
    const Fires sundays{"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"};
    CHECK(next_fires("0 0 * * 7", "2026-01-01T00:00:00Z", "UTC", 2) == sundays);
    CHECK(next_fires("0 0 * * 0", "2026-01-01T00:00:00Z", "UTC", 2) == sundays);
    CHECK(next_fires("0 0 * * SUN", "2026-01-01T00:00:00Z", "UTC", 2) == sundays);
    // Friday to Sunday, written with 7 because ranges do not wrap around.
    CHECK(next_fires("0 0 * * 5-7", "2026-01-01T00:00:00Z", "UTC", 4) ==
          Fires{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z",
                "2026-01-09T00:00:00Z"});
  }

  TEST_CASE("Cron.day_fields_or_rule_when_both_restricted") {
    // Both restricted: the 13th of a month OR a Friday. January 2026: Fridays 2, 9, 16; the 13th.
    CHECK(next_fires("0 0 13 * 5", "2026-01-01T00:00:00Z", "UTC", 4) ==
          Fires{"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z",
                "2026-01-16T00:00:00Z"});
    // Day-of-month only: just the 13th.
    CHECK(next_fires("0 0 13 * *", "2026-01-01T00:00:00Z", "UTC", 2) ==
          Fires{"2026-01-13T00:00:00Z", "2026-02-13T00:00:00Z"});
    // A field starting with '*' is not restricted even with a step, so both must match: days
    // 1, 11, 21, 31 that are Mondays.
    CHECK(next_fires("0 0 */10 * 1", "2026-01-01T00:00:00Z", "UTC", 3) ==
          Fires{"2026-05-11T00:00:00Z", "2026-06-01T00:00:00Z", "2026-08-31T00:00:00Z"});
    // "1-31" does not start with '*': restricted, so OR with Mondays fires every day.
    CHECK(next_fires("0 0 1-31 * 1", "2026-01-01T00:00:00Z", "UTC", 2) ==
          Fires{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"});
  }

  TEST_CASE("Cron.macros") {
    const std::string after = "2026-01-01T10:30:00Z";  // a Thursday
    CHECK(next_fires("@hourly", after, "UTC", 1) == Fires{"2026-01-01T11:00:00Z"});
    CHECK(next_fires("@daily", after, "UTC", 1) == Fires{"2026-01-02T00:00:00Z"});
    CHECK(next_fires("@midnight", after, "UTC", 1) == Fires{"2026-01-02T00:00:00Z"});
    CHECK(next_fires("@weekly", after, "UTC", 2) ==
          Fires{"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"});
    CHECK(next_fires("@monthly", after, "UTC", 1) == Fires{"2026-02-01T00:00:00Z"});
    CHECK(next_fires("@yearly", after, "UTC", 1) == Fires{"2027-01-01T00:00:00Z"});
    CHECK(next_fires("@annually", after, "UTC", 1) == Fires{"2027-01-01T00:00:00Z"});
    CHECK(next_fires("  @DAILY ", after, "UTC", 1) == Fires{"2026-01-02T00:00:00Z"});
    CHECK(schedule("@daily").expression() == "@daily");
  }

  TEST_CASE("Cron.field_count_errors") {
    const CronParseError six = parse_error("0 0 3 * * *");
    CHECK(six.message ==
          "6 fields given; podflow uses 5-field cron (minute hour day month weekday), seconds are "
          "not supported");
    CHECK(six.offset == 0);
    CHECK(parse_error("0 3 * *").message.find("4 fields given") == 0);
    CHECK(parse_error("").message.find("empty cron expression") == 0);
    CHECK(parse_error("   ").message.find("empty cron expression") == 0);
  }

  TEST_CASE("Cron.macro_errors") {
    const CronParseError reboot = parse_error("@reboot");
    CHECK(reboot.message.find("@reboot is not supported") == 0);
    CHECK(reboot.message.find("no boot-time runs") != std::string::npos);
    const CronParseError unknown = parse_error(" @fortnightly");
    CHECK(unknown.offset == 1);
    CHECK(unknown.message.find("unknown macro '@fortnightly'") == 0);
    CHECK(unknown.message.find("@hourly @daily") != std::string::npos);
    const CronParseError trailing = parse_error("@daily 5");
    CHECK(trailing.offset == 7);
    CHECK(trailing.message == "a macro such as @daily stands alone; remove what follows it");
  }

  TEST_CASE("Cron.out_of_range_values_name_field_range_and_offset") {
    struct Case {
      std::string expression;
      int offset;
      std::string message;
    };
    const std::vector<Case> cases{
        {"61 * * * *", 0, "minute 61 out of range 0-59"},
        {"0 24 * * *", 2, "hour 24 out of range 0-23"},
        {"0 0 32 * *", 4, "day-of-month 32 out of range 1-31"},
        {"0 0 0 * *", 4, "day-of-month 0 out of range 1-31"},
        {"0 0 * 13 *", 6, "month 13 out of range 1-12 (or JAN-DEC)"},
        {"0  0 * * 8", 9, "day-of-week 8 out of range 0-7 (0 and 7 are Sunday; or SUN-SAT)"},
        {"0 0 1-40 * *", 4, "day-of-month 40 out of range 1-31"},
        {"0,70 * * * *", 0, "minute 70 out of range 0-59"},
    };
    for (const Case& c : cases) {
      CAPTURE(c.expression);
      const CronParseError error = parse_error(c.expression);
      CHECK(error.offset == c.offset);
      CHECK(error.message == c.message);
    }
  }

  TEST_CASE("Cron.bad_steps_ranges_items_and_garbage") {
    const CronParseError zero_step = parse_error("*/0 * * * *");
    CHECK(zero_step.message.find("minute step 0 in '*/0' out of range 1-59") == 0);
    CHECK(zero_step.message.find("never advances") != std::string::npos);
    CHECK(parse_error("0 */24 * * *").message.find("hour step 24 in '*/24' out of range 1-23") ==
          0);
    CHECK(parse_error("*/x * * * *").message.find("minute step 'x'") == 0);

    const CronParseError reversed = parse_error("5-1 * * * *");
    CHECK(reversed.message.find("minute range '5-1' is reversed") == 0);
    CHECK(reversed.message.find("write 1-5") != std::string::npos);
    const CronParseError weekend = parse_error("0 0 * * FRI-SUN");
    CHECK(weekend.offset == 8);
    CHECK(weekend.message.find("write 5-7") != std::string::npos);

    const CronParseError empty_item = parse_error("0 1,,2 * * *");
    CHECK(empty_item.offset == 2);
    CHECK(empty_item.message.find("hour field '1,,2' has an empty list item") == 0);
    CHECK(parse_error("0 1, * * *").message.find("empty list item") != std::string::npos);
    CHECK(parse_error("1- * * * *").message.find("missing start or end") != std::string::npos);
    CHECK(parse_error("-5 * * * *").message.find("missing start or end") != std::string::npos);

    const CronParseError garbage = parse_error("0 0 * x *");
    CHECK(garbage.offset == 6);
    CHECK(garbage.message == "month name 'x' is not known; use JAN-DEC or 1-12");
    CHECK(parse_error("0 0 * * MONDAY").message ==
          "day-of-week name 'MONDAY' is not known; use SUN-SAT or 0-7");
    CHECK(parse_error("0 0 * JAN-MON *").message.find("month name 'MON'") == 0);
    CHECK(parse_error("abc * * * *").message.find("minute field item 'abc' is not valid") == 0);
    CHECK(parse_error("0 0 L * *").message.find("Quartz extensions") != std::string::npos);
    CHECK(parse_error("0 0 ? * *").offset == 4);
    CHECK(parse_error("5x * * * *").offset == 0);
  }

  TEST_CASE("Cron.never_matching_expressions_return_nothing_quickly") {
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(schedule("0 0 30 2 *").next_after(utc("2026-01-01T00:00:00Z"), "UTC"));
    CHECK_FALSE(
        schedule("0 0 31 4,6,9,11 *").next_after(utc("2026-01-01T00:00:00Z"), "Europe/Berlin"));
    CHECK_FALSE(schedule("* * 31 2 *").next_after(utc("2026-01-01T00:00:00Z"), "Europe/Berlin"));
    // A search over years skips months and days; it never walks minute by minute.
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds{2});
  }

  TEST_CASE("Cron.leap_days_and_the_31st") {
    CHECK(next_fires("0 0 29 2 *", "2025-01-01T00:00:00Z", "UTC", 2) ==
          Fires{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"});
    // 2100 is not a leap year: eight years between February 29ths, still within the search.
    CHECK(next_fires("0 0 29 2 *", "2096-03-01T00:00:00Z", "UTC", 1) ==
          Fires{"2104-02-29T00:00:00Z"});
    CHECK(next_fires("0 0 31 * *", "2026-01-31T00:00:00Z", "UTC", 4) ==
          Fires{"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z",
                "2026-08-31T00:00:00Z"});
  }

  TEST_CASE("Cron.berlin_spring_forward_wall_clock_runs_once_at_the_transition") {
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST at 01:00Z; 02:30 does not exist that day.
    CHECK(next_fires("30 2 * * *", "2026-03-28T12:00:00Z", "Europe/Berlin", 3) ==
          Fires{"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"});
    // Several times in the gap still run once; 03:00 itself is the same instant.
    CHECK(next_fires("0,30 2,3 * * *", "2026-03-28T23:00:00Z", "Europe/Berlin", 3) ==
          Fires{"2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:00:00Z"});
    // Every other hour is a wall-clock schedule: 02:00 moves to 03:00, then 04:00 as usual.
    CHECK(next_fires("0 */2 * * *", "2026-03-28T22:30:00Z", "Europe/Berlin", 3) ==
          Fires{"2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"});
  }

  TEST_CASE("Cron.berlin_fall_back_wall_clock_runs_once_at_the_first_pass") {
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET at 01:00Z; 02:30 happens at 00:30Z and 01:30Z.
    CHECK(next_fires("30 2 * * *", "2026-10-24T12:00:00Z", "Europe/Berlin", 2) ==
          Fires{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"});
    // Asked between the two passes, the second pass does not fire.
    CHECK(next_fires("30 2 * * *", "2026-10-25T00:45:00Z", "Europe/Berlin", 1) ==
          Fires{"2026-10-26T01:30:00Z"});
    CHECK(next_fires("30 2 * * *", "2026-10-25T01:10:00Z", "Europe/Berlin", 1) ==
          Fires{"2026-10-26T01:30:00Z"});
    CHECK(next_fires("0 */2 * * *", "2026-10-24T21:30:00Z", "Europe/Berlin", 3) ==
          Fires{"2026-10-24T22:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T03:00:00Z"});
  }

  TEST_CASE("Cron.hourly_schedules_follow_real_time_across_dst") {
    // Fall-back: 02:30 local happens twice and fires twice.
    CHECK(next_fires("30 * * * *", "2026-10-24T23:00:00Z", "Europe/Berlin") ==
          Fires{"2026-10-24T23:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z",
                "2026-10-25T02:30:00Z"});
    // Spring-forward: 02:30 never happens, so the hour simply has no fire.
    CHECK(next_fires("30 * * * *", "2026-03-28T23:00:00Z", "Europe/Berlin", 3) ==
          Fires{"2026-03-28T23:30:00Z", "2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z"});
    CHECK(next_fires("*/20 * * * *", "2026-03-29T00:30:00Z", "Europe/Berlin", 3) ==
          Fires{"2026-03-29T00:40:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:20:00Z"});
  }

  TEST_CASE("Cron.new_york_dst") {
    // 2026-03-08: 02:00 EST jumps to 03:00 EDT at 07:00Z.
    CHECK(next_fires("30 2 * * *", "2026-03-07T12:00:00Z", "America/New_York", 2) ==
          Fires{"2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"});
    // 2026-11-01: 02:00 EDT falls back to 01:00 EST at 06:00Z; 01:30 happens at 05:30Z and 06:30Z.
    CHECK(next_fires("30 1 * * *", "2026-10-31T12:00:00Z", "America/New_York", 2) ==
          Fires{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"});
    CHECK(next_fires("30 * * * *", "2026-11-01T04:00:00Z", "America/New_York", 4) ==
          Fires{"2026-11-01T04:30:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z",
                "2026-11-01T07:30:00Z"});
  }

  TEST_CASE("Cron.lord_howe_half_hour_dst") {
    // tz database: 2026-10-04 02:00 +1030 jumps to 02:30 +11 at 2026-10-03T15:30Z (a 30-minute
    // gap); 2026-04-05 02:00 +11 falls back to 01:30 +1030 at 2026-04-04T15:00Z (01:30-01:59
    // twice).
    CHECK(next_fires("15 2 * * *", "2026-10-03T12:00:00Z", "Australia/Lord_Howe", 2) ==
          Fires{"2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"});
    CHECK(next_fires("45 2 * * *", "2026-10-03T12:00:00Z", "Australia/Lord_Howe", 1) ==
          Fires{"2026-10-03T15:45:00Z"});
    CHECK(next_fires("45 1 * * *", "2026-04-04T12:00:00Z", "Australia/Lord_Howe", 2) ==
          Fires{"2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"});
    // Real time: 01:45 fires in both passes of the repeated half hour; 02:15 is skipped in October.
    CHECK(next_fires("45 * * * *", "2026-04-04T13:00:00Z", "Australia/Lord_Howe") ==
          Fires{"2026-04-04T13:45:00Z", "2026-04-04T14:45:00Z", "2026-04-04T15:15:00Z",
                "2026-04-04T16:15:00Z"});
    CHECK(next_fires("15 * * * *", "2026-10-03T14:00:00Z", "Australia/Lord_Howe", 2) ==
          Fires{"2026-10-03T14:45:00Z", "2026-10-03T16:15:00Z"});
  }

  TEST_CASE("Cron.kolkata_half_hour_offset_without_dst") {
    CHECK(next_fires("0 9 * * *", "2026-03-29T00:00:00Z", "Asia/Kolkata", 2) ==
          Fires{"2026-03-29T03:30:00Z", "2026-03-30T03:30:00Z"});
    // Midnight local on the 1st is the previous day in UTC.
    CHECK(next_fires("@monthly", "2026-03-15T00:00:00Z", "Asia/Kolkata", 1) ==
          Fires{"2026-03-31T18:30:00Z"});
  }

  TEST_CASE("Cron.known_time_zones") {
    CHECK(is_known_time_zone("UTC"));
    CHECK(is_known_time_zone("Europe/Berlin"));
    CHECK(is_known_time_zone("Australia/Lord_Howe"));
    CHECK_FALSE(is_known_time_zone("Europe/Berlinn"));
    CHECK_FALSE(is_known_time_zone(""));
    CHECK_FALSE(is_known_time_zone("CEST"));
  }

  TEST_CASE("Cron.format_fire_time_utc_first_then_local") {
    CHECK(format_fire_time(utc("2026-03-29T01:00:00Z"), "Europe/Berlin") ==
          "2026-03-29T01:00:00Z  2026-03-29 03:00:00+02:00 CEST");
    CHECK(format_fire_time(utc("2026-03-29T00:59:59Z"), "Europe/Berlin") ==
          "2026-03-29T00:59:59Z  2026-03-29 01:59:59+01:00 CET");
    CHECK(format_fire_time(utc("2026-11-01T06:30:00Z"), "America/New_York") ==
          "2026-11-01T06:30:00Z  2026-11-01 01:30:00-05:00 EST");
    CHECK(format_fire_time(utc("2026-03-29T03:30:00Z"), "Asia/Kolkata") ==
          "2026-03-29T03:30:00Z  2026-03-29 09:00:00+05:30 IST");
    // A zone whose abbreviation is only its offset does not print it twice.
    CHECK(format_fire_time(utc("2026-06-01T12:00:00Z"), "America/Sao_Paulo") ==
          "2026-06-01T12:00:00Z  2026-06-01 09:00:00-03:00");
  }

  TEST_CASE("Cron.parse_iso8601_forms") {
    const SysSeconds expected = utc("2026-03-29T01:00:00Z");
    CHECK(parse_iso8601("2026-03-29T03:00:00+02:00", "UTC") == expected);
    CHECK(parse_iso8601("2026-03-29T03:00:00+0200", "UTC") == expected);
    CHECK(parse_iso8601("2026-03-28T20:00:00-05:00", "Europe/Berlin") == expected);
    CHECK(parse_iso8601("2026-03-29T03:00", "Europe/Berlin") == expected);
    CHECK(parse_iso8601("2026-03-29 03:00:00", "Europe/Berlin") == expected);
    CHECK(parse_iso8601("2026-03-29T01:00:00z", "Asia/Kolkata") == expected);
    // Date only: local midnight.
    CHECK(parse_iso8601("2026-03-29", "Europe/Berlin") == utc("2026-03-28T23:00:00Z"));
    CHECK(parse_iso8601("2026-03-29", "Asia/Kolkata") == utc("2026-03-28T18:30:00Z"));
  }

  TEST_CASE("Cron.parse_iso8601_local_times_in_gaps_and_overlaps") {
    // In the spring gap: the first valid instant, the transition.
    CHECK(parse_iso8601("2026-03-29T02:30", "Europe/Berlin") == utc("2026-03-29T01:00:00Z"));
    // In the fall-back overlap: the first occurrence.
    CHECK(parse_iso8601("2026-10-25T02:30", "Europe/Berlin") == utc("2026-10-25T00:30:00Z"));
    CHECK(parse_iso8601("2026-04-05T01:45", "Australia/Lord_Howe") == utc("2026-04-04T14:45:00Z"));
  }

  TEST_CASE("Cron.parse_iso8601_rejects_garbage") {
    for (const char* text :
         {"", "tomorrow", "2026-3-29", "2026-13-01", "2026-02-30", "2026-03-29T25:00",
          "2026-03-29T03:60", "2026-03-29T03:00:00Zjunk", "2026-03-29T03:00:00+2", "2026-03-29T",
          "2026-03-29X03:00", "2026-03-29T03:00:00.5Z", "2026-03-29T03:00:00+02:00:00"}) {
      CAPTURE(text);
      CHECK_FALSE(parse_iso8601(text, "Europe/Berlin"));
    }
    // A local time needs a known zone; an explicit offset does not.
    CHECK_FALSE(parse_iso8601("2026-03-29T03:00", "Mars/Olympus_Mons"));
    CHECK(parse_iso8601("2026-03-29T03:00Z", "Mars/Olympus_Mons") == utc("2026-03-29T03:00:00Z"));
  }
}
