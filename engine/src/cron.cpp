// Cron parsing (5 fields, names, lists, ranges, steps, macros) and next-fire computation in an IANA
// time zone with the DST rules of DESIGN.md section 5, using Howard Hinnant's date/tz.
#include "podflow/engine/cron.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <array>
#include <bit>
#include <cassert>
#include <cctype>
#include <exception>
#include <string>

namespace podflow::engine {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using LocalSeconds = date::local_seconds;

// How far next_after() looks: the rest of the year of `after` plus this many whole years. Eight
// years covers the longest gap between two February 29ths (2096 -> 2104); an expression that has
// not fired by then is treated as never firing (`0 0 30 2 *`).
constexpr int kSearchYears = 8;

// One of the five fields: its name in messages, its values, and the names it accepts.
struct FieldSpec {
  std::string_view name;
  int min;
  int max;
  std::string_view range_hint;  // appended to range errors: how else the value may be written
  const std::array<std::string_view, 12>* names;  // index + names_base is the value; or nullptr
  int names_base;
};

constexpr std::array<std::string_view, 12> kMonthNames{"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 12> kDayNames{"SUN", "MON", "TUE", "WED", "THU", "FRI",
                                                     "SAT", "",    "",    "",    "",    ""};

// Day-of-week accepts 0-7 where 7 is Sunday again (as Vixie cron and croniter do).
constexpr std::array<FieldSpec, 5> kFields{{
    {"minute", 0, 59, "", nullptr, 0},
    {"hour", 0, 23, "", nullptr, 0},
    {"day-of-month", 1, 31, "", nullptr, 0},
    {"month", 1, 12, " (or JAN-DEC)", &kMonthNames, 1},
    {"day-of-week", 0, 7, " (0 and 7 are Sunday; or SUN-SAT)", &kDayNames, 0},
}};

constexpr std::string_view kFieldOrder = "(minute hour day month weekday)";

struct Macro {
  std::string_view name;
  std::string_view expansion;
};
constexpr std::array<Macro, 7> kMacros{{
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
}};

std::string to_upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

struct Token {
  std::string_view text;
  int offset;
};

std::vector<Token> split_fields(std::string_view expression) {
  std::vector<Token> fields;
  std::size_t i = 0;
  while (i < expression.size()) {
    while (i < expression.size() && is_space(expression[i])) ++i;
    const std::size_t start = i;
    while (i < expression.size() && !is_space(expression[i])) ++i;
    if (i > start) {
      fields.push_back({expression.substr(start, i - start), static_cast<int>(start)});
    }
  }
  return fields;
}

// Parses one field into a bit set; on failure returns the message (the caller adds the offset).
class FieldParser {
 public:
  FieldParser(const FieldSpec& spec, std::string_view text) : spec_(spec), text_(text) {}

  std::optional<std::string> parse(std::uint64_t& bits) {
    bits = 0;
    std::size_t item_start = 0;
    while (true) {
      const std::size_t comma = text_.find(',', item_start);
      const std::string_view item =
          text_.substr(item_start, comma == std::string_view::npos ? std::string_view::npos
                                                                   : comma - item_start);
      if (item.empty()) {
        return std::string(spec_.name) + " field '" + std::string(text_) +
               "' has an empty list item; separate values with single commas, as in 1,15";
      }
      if (auto error = parse_item(item, bits)) return error;
      if (comma == std::string_view::npos) break;
      item_start = comma + 1;
    }
    return std::nullopt;
  }

 private:
  // item = ('*' | value | value '-' value) ['/' step]
  std::optional<std::string> parse_item(std::string_view item, std::uint64_t& bits) {
    std::string_view base = item;
    std::optional<int> step;
    if (const std::size_t slash = item.find('/'); slash != std::string_view::npos) {
      base = item.substr(0, slash);
      const std::string_view step_text = item.substr(slash + 1);
      const std::optional<int> parsed = parse_number(step_text);
      if (!parsed) {
        return std::string(spec_.name) + " step '" + std::string(step_text) + "' in '" +
               std::string(item) + "' is not a number; write a step as */15 or 0-30/5";
      }
      const int step_max = spec_.max;
      if (*parsed < 1 || *parsed > step_max) {
        return std::string(spec_.name) + " step " + std::to_string(*parsed) + " in '" +
               std::string(item) + "' out of range 1-" + std::to_string(step_max) +
               (*parsed == 0 ? "; a step of 0 never advances, use */1 or *" : "");
      }
      step = parsed;
      if (base.empty()) {
        return std::string(spec_.name) + " field '" + std::string(item) +
               "' has a step without a start; write */" + std::to_string(*step);
      }
    }

    int low = 0;
    int high = 0;
    if (base == "*") {
      low = spec_.min;
      // Sunday is 0; 7 is only an alias, so '*' in day-of-week means 0-6.
      high = spec_.name == "day-of-week" ? 6 : spec_.max;
    } else if (const std::size_t dash = base.find('-'); dash != std::string_view::npos) {
      auto first = parse_value(base.substr(0, dash), item);
      if (auto* error = std::get_if<std::string>(&first)) return *error;
      auto second = parse_value(base.substr(dash + 1), item);
      if (auto* error = std::get_if<std::string>(&second)) return *error;
      low = std::get<int>(first);
      high = std::get<int>(second);
      if (low > high) {
        std::string fix = std::to_string(high) + "-" + std::to_string(low);
        if (spec_.name == "day-of-week" && high == 0) fix = std::to_string(low) + "-7";
        return std::string(spec_.name) + " range '" + std::string(base) +
               "' is reversed (ranges do not wrap around); write " + fix +
               " or a list such as 22,23,0";
      }
    } else {
      auto value = parse_value(base, item);
      if (auto* error = std::get_if<std::string>(&value)) return *error;
      low = std::get<int>(value);
      // "5/10" means from 5 to the end of the field, as in cronie and croniter.
      high = step ? spec_.max : low;
    }

    for (int v = low; v <= high; v += step.value_or(1)) {
      // 7 in day-of-week is Sunday.
      const int bit = (spec_.name == "day-of-week" && v == 7) ? 0 : v;
      bits |= std::uint64_t{1} << bit;
    }
    return std::nullopt;
  }

  static std::optional<int> parse_number(std::string_view text) {
    if (text.empty() || text.size() > 4) return std::nullopt;
    int value = 0;
    for (char c : text) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + (c - '0');
    }
    return value;
  }

  // A number or a name, checked against the field's range.
  std::variant<int, std::string> parse_value(std::string_view text, std::string_view item) {
    if (text.empty()) {
      return std::string(spec_.name) + " field '" + std::string(item) +
             "' has a range with a missing start or end; write a range as 1-5";
    }
    if (std::isdigit(static_cast<unsigned char>(text[0]))) {
      const std::optional<int> number = parse_number(text);
      if (!number) return garbage(item);
      if (*number < spec_.min || *number > spec_.max) {
        return std::string(spec_.name) + " " + std::string(text) + " out of range " +
               std::to_string(spec_.min) + "-" + std::to_string(spec_.max) +
               std::string(spec_.range_hint);
      }
      return *number;
    }
    if (spec_.names != nullptr) {
      const std::string upper = to_upper(text);
      for (std::size_t i = 0; i < spec_.names->size(); ++i) {
        if (!(*spec_.names)[i].empty() && (*spec_.names)[i] == upper) {
          return static_cast<int>(i) + spec_.names_base;
        }
      }
      return std::string(spec_.name) + " name '" + std::string(text) + "' is not known; use " +
             (spec_.names == &kMonthNames ? "JAN-DEC or 1-12" : "SUN-SAT or 0-7");
    }
    return garbage(item);
  }

  std::string garbage(std::string_view item) const {
    std::string message = std::string(spec_.name) + " field item '" + std::string(item) +
                          "' is not valid: expected a number " + std::to_string(spec_.min) + "-" +
                          std::to_string(spec_.max) + std::string(spec_.range_hint) +
                          ", '*', a range a-b, a step */n or a-b/n, or a list a,b";
    if (item.find_first_of("?LW#") != std::string_view::npos) {
      message += " (Quartz extensions ? L W # are not supported)";
    }
    return message;
  }

  const FieldSpec& spec_;
  std::string_view text_;
};

// Returns the zone, or nullptr for an unknown name.
const date::time_zone* find_zone(const std::string& name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return nullptr;
  }
}

// The instant a wall-clock local time stands for under the DST rules of DESIGN.md section 5: in a
// spring-forward gap the transition instant (the first valid instant after the gap), in a fall-back
// overlap the first occurrence.
SysSeconds earliest_instant(const date::time_zone& zone, LocalSeconds local) {
  const date::local_info info = zone.get_info(local);
  switch (info.result) {
    case date::local_info::nonexistent:
      return info.second.begin;
    case date::local_info::ambiguous:  // `first` is the earlier offset, so this is the first pass
    case date::local_info::unique:
      break;
  }
  return SysSeconds{local.time_since_epoch() - info.first.offset};
}

int lowest_bit_from(std::uint64_t bits, int from) {
  if (from >= 64) return -1;
  const std::uint64_t masked = bits & (~std::uint64_t{0} << from);
  return masked == 0 ? -1 : std::countr_zero(masked);
}

}  // namespace

std::variant<CronSchedule, std::vector<CronParseError>> CronSchedule::parse_all(
    std::string_view expression) {
  std::vector<Token> fields = split_fields(expression);
  if (fields.empty()) {
    return std::vector<CronParseError>{
        CronParseError{0, "empty cron expression; write 5 fields " + std::string(kFieldOrder) +
                              " such as '0 3 * * *', or a macro such as @daily"}};
  }

  std::string expanded_storage;
  if (fields.size() > 1 && fields[0].text.starts_with('@')) {
    return std::vector<CronParseError>{
        CronParseError{fields[1].offset, "a macro such as " + std::string(fields[0].text) +
                                             " stands alone; remove what follows it"}};
  }
  if (fields[0].text.starts_with('@')) {
    const std::string lower = [&] {
      std::string out(fields[0].text);
      for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return out;
    }();
    if (lower == "@reboot") {
      return std::vector<CronParseError>{
          CronParseError{fields[0].offset,
                         "@reboot is not supported: podflow has no boot-time runs; use a "
                         "schedule such as @daily, or start the run with `podflow run`"}};
    }
    for (const Macro& macro : kMacros) {
      if (macro.name == lower) expanded_storage = macro.expansion;
    }
    if (expanded_storage.empty()) {
      return std::vector<CronParseError>{CronParseError{
          fields[0].offset, "unknown macro '" + std::string(fields[0].text) +
                                "'; use one of @hourly @daily @midnight @weekly @monthly @yearly "
                                "@annually, or 5 fields " +
                                std::string(kFieldOrder)}};
    }
    // The expansion's offsets are meaningless to the user: errors cannot happen in it anyway.
    fields = split_fields(expanded_storage);
  }

  if (fields.size() == 6) {
    return std::vector<CronParseError>{CronParseError{
        fields[0].offset, "6 fields given; podflow uses 5-field cron " + std::string(kFieldOrder) +
                              ", seconds are not supported"}};
  }
  if (fields.size() != 5) {
    return std::vector<CronParseError>{CronParseError{
        fields[0].offset, std::to_string(fields.size()) + " field" +
                              (fields.size() == 1 ? "" : "s") +
                              " given; podflow uses 5-field cron " + std::string(kFieldOrder) +
                              ", for example '0 3 * * *'"}};
  }

  CronSchedule schedule;
  schedule.expression_ = std::string(expression);
  std::array<std::uint64_t, 5> bits{};
  std::vector<CronParseError> errors;  // every bad field, not only the first
  for (std::size_t i = 0; i < 5; ++i) {
    FieldParser parser(kFields[i], fields[i].text);
    if (auto error = parser.parse(bits[i])) errors.push_back({fields[i].offset, std::move(*error)});
  }
  if (!errors.empty()) return errors;
  schedule.minutes_ = bits[0];
  schedule.hours_ = static_cast<std::uint32_t>(bits[1]);
  schedule.days_of_month_ = static_cast<std::uint32_t>(bits[2]);
  schedule.months_ = static_cast<std::uint16_t>(bits[3]);
  schedule.days_of_week_ = static_cast<std::uint8_t>(bits[4]);
  // Vixie cron's rule: a day field is "restricted" unless its text starts with '*' (so "*/2" is not
  // restricted but "1-31" is). Only when both are restricted does a day match on either of them.
  schedule.day_of_month_restricted_ = !fields[2].text.starts_with('*');
  schedule.day_of_week_restricted_ = !fields[4].text.starts_with('*');
  schedule.minute_star_ = schedule.minutes_ == (std::uint64_t{1} << 60) - 1;
  // A schedule that fires in every hour of the day (hour field '*', '*/1', '0-23') follows real
  // elapsed time across DST changes; any other is a wall-clock schedule (see next_after).
  schedule.hour_star_ = schedule.hours_ == (std::uint32_t{1} << 24) - 1;
  return schedule;
}

std::variant<CronSchedule, CronParseError> CronSchedule::parse(std::string_view expression) {
  auto parsed = parse_all(expression);
  if (auto* errors = std::get_if<std::vector<CronParseError>>(&parsed)) return errors->front();
  return std::get<CronSchedule>(std::move(parsed));
}

std::vector<CronParseError> CronSchedule::problems(std::string_view expression) {
  auto parsed = parse_all(expression);
  if (auto* errors = std::get_if<std::vector<CronParseError>>(&parsed)) return std::move(*errors);
  return {};
}

bool CronSchedule::day_matches(unsigned day_of_month, unsigned weekday) const {
  const bool dom = ((days_of_month_ >> day_of_month) & 1U) != 0;
  const bool dow = ((days_of_week_ >> weekday) & 1U) != 0;
  if (day_of_month_restricted_ && day_of_week_restricted_) return dom || dow;
  return dom && dow;
}

// The first local time at or after `from` (rounded up to a whole minute) whose fields all match,
// before the local time `limit`. Skips whole months and days that cannot match, so a search over
// years costs a few thousand cheap steps at most.
std::optional<seconds> CronSchedule::next_local_match(seconds from, seconds limit) const {
  const LocalSeconds from_minute{date::ceil<minutes>(from)};
  const LocalSeconds limit_time{limit};
  date::local_days day = date::floor<date::days>(from_minute);
  minutes time_of_day = date::floor<minutes>(from_minute - day);
  while (day < limit_time) {
    const date::year_month_day ymd{day};
    if (((months_ >> static_cast<unsigned>(ymd.month())) & 1U) == 0) {
      const date::year_month next_month = ymd.year() / ymd.month() + date::months{1};
      day = date::local_days{next_month / 1};
      time_of_day = minutes{0};
      continue;
    }
    if (day_matches(static_cast<unsigned>(ymd.day()), date::weekday{day}.c_encoding())) {
      const int start_hour = static_cast<int>(date::floor<hours>(time_of_day).count());
      const int start_minute = static_cast<int>((time_of_day % hours{1}).count());
      for (int hour = lowest_bit_from(hours_, start_hour); hour >= 0 && hour < 24;
           hour = lowest_bit_from(hours_, hour + 1)) {
        const int minute = lowest_bit_from(minutes_, hour == start_hour ? start_minute : 0);
        if (minute >= 0) {
          const LocalSeconds match = day + hours{hour} + minutes{minute};
          if (match >= limit_time) return std::nullopt;
          return match.time_since_epoch();
        }
      }
    }
    day += date::days{1};
    time_of_day = minutes{0};
  }
  return std::nullopt;
}

std::optional<SysSeconds> CronSchedule::next_after(SysSeconds after,
                                                   const std::string& time_zone) const {
  const date::time_zone* zone = find_zone(time_zone);
  if (zone == nullptr) {
    assert(false && "next_after: unknown time zone; check with is_known_time_zone first");
    return std::nullopt;
  }
  const LocalSeconds after_local = zone->to_local(after);
  const date::year after_year = date::year_month_day{date::floor<date::days>(after_local)}.year();
  const seconds limit =
      date::local_days{(after_year + date::years{kSearchYears + 1}) / 1 / 1}.time_since_epoch();

  if (hour_star_) {
    // Real elapsed time: walk the time line one UTC-offset period at a time. Within a period local
    // time is sys time plus a constant offset, so the first local match maps to exactly one
    // instant. Local times skipped by spring-forward belong to no period and never fire; the hour
    // repeated by fall-back belongs to two periods and fires in both.
    SysSeconds from = after + seconds{1};
    while (true) {
      const date::sys_info period = zone->get_info(from);
      const auto local = zone->to_local(from);
      const std::optional<seconds> match = next_local_match(local.time_since_epoch(), limit);
      if (!match) return std::nullopt;
      const SysSeconds instant{*match - period.offset};
      if (instant < period.end) return instant;
      from = period.end;
    }
  }

  // Wall clock: local matches in order, each mapped to its instant by earliest_instant(). That
  // mapping never goes backwards, so the first match whose instant is after `after` is the answer.
  // A match in a gap maps to the transition instant; several matches in one gap collapse to that
  // one instant. Matches in the second pass of an overlap map to the first pass, which is not after
  // `after` when `after` is in the second pass: those are skipped, so the overlap runs once.
  LocalSeconds from = after_local + seconds{1};
  while (true) {
    const std::optional<seconds> match = next_local_match(from.time_since_epoch(), limit);
    if (!match) return std::nullopt;
    const SysSeconds instant = earliest_instant(*zone, LocalSeconds{*match});
    if (instant > after) return instant;
    from = LocalSeconds{*match + minutes{1}};
  }
}

bool is_known_time_zone(const std::string& name) { return find_zone(name) != nullptr; }

std::string format_fire_time(SysSeconds when, const std::string& time_zone) {
  std::string out = date::format("%Y-%m-%dT%H:%M:%SZ", when);
  const date::time_zone* zone = find_zone(time_zone);
  if (zone == nullptr) return out + "  (unknown time zone '" + time_zone + "')";
  const date::sys_info info = zone->get_info(when);
  out += "  " + date::format("%Y-%m-%d %H:%M:%S", zone->to_local(when));
  const auto offset = info.offset;
  const auto magnitude = offset < seconds{0} ? -offset : offset;
  const auto offset_hours = date::floor<hours>(magnitude);
  const auto offset_minutes = date::floor<minutes>(magnitude - offset_hours);
  const auto two_digits = [](long value) {
    return std::string(value < 10 ? "0" : "") + std::to_string(value);
  };
  out += (offset < seconds{0} ? "-" : "+") + two_digits(offset_hours.count()) + ":" +
         two_digits(offset_minutes.count());
  // Zones without a letter abbreviation use the offset itself ("-03"); don't print it twice.
  if (!info.abbrev.empty() && info.abbrev[0] != '+' && info.abbrev[0] != '-') {
    out += " " + info.abbrev;
  }
  return out;
}

namespace {

// A tiny cursor over the ISO-8601 text: fixed-width numbers and literal characters.
class IsoReader {
 public:
  explicit IsoReader(std::string_view text) : text_(text) {}
  bool done() const { return pos_ == text_.size(); }
  std::optional<char> peek() const {
    if (done()) return std::nullopt;
    return text_[pos_];
  }
  bool accept(char c) {
    if (done() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  std::optional<int> digits(std::size_t count) {
    if (text_.size() - pos_ < count) return std::nullopt;
    int value = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const char c = text_[pos_ + i];
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + (c - '0');
    }
    pos_ += count;
    return value;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

std::optional<SysSeconds> parse_iso8601(std::string_view text, const std::string& time_zone) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  IsoReader reader(text);
  const auto year = reader.digits(4);
  if (!year || !reader.accept('-')) return std::nullopt;
  const auto month = reader.digits(2);
  if (!month || !reader.accept('-')) return std::nullopt;
  const auto day = reader.digits(2);
  if (!day) return std::nullopt;
  const date::year_month_day ymd{date::year{*year}, date::month{static_cast<unsigned>(*month)},
                                 date::day{static_cast<unsigned>(*day)}};
  if (!ymd.ok()) return std::nullopt;

  seconds time_of_day{0};
  if (!reader.done()) {
    if (!reader.accept('T') && !reader.accept('t') && !reader.accept(' ')) return std::nullopt;
    const auto hour = reader.digits(2);
    if (!hour || !reader.accept(':')) return std::nullopt;
    const auto minute = reader.digits(2);
    if (!minute) return std::nullopt;
    int second = 0;
    if (reader.accept(':')) {
      const auto parsed = reader.digits(2);
      if (!parsed) return std::nullopt;
      second = *parsed;
    }
    if (*hour > 23 || *minute > 59 || second > 59) return std::nullopt;
    time_of_day = hours{*hour} + minutes{*minute} + seconds{second};
  }
  const date::local_seconds local = date::local_days{ymd} + time_of_day;

  if (reader.done()) {  // no offset: local time in the workflow's zone
    const date::time_zone* zone = find_zone(time_zone);
    if (zone == nullptr) return std::nullopt;
    return earliest_instant(*zone, local);
  }
  if (reader.accept('Z') || reader.accept('z')) {
    if (!reader.done()) return std::nullopt;
    return SysSeconds{local.time_since_epoch()};
  }
  int sign = 0;
  if (reader.accept('+')) {
    sign = 1;
  } else if (reader.accept('-')) {
    sign = -1;
  } else {
    return std::nullopt;
  }
  const auto offset_hours = reader.digits(2);
  if (!offset_hours) return std::nullopt;
  int offset_minutes = 0;
  if (!reader.done()) {
    reader.accept(':');  // +02:00 and +0200 are both ISO-8601
    const auto parsed = reader.digits(2);
    if (!parsed || !reader.done()) return std::nullopt;
    offset_minutes = *parsed;
  }
  if (*offset_hours > 23 || offset_minutes > 59) return std::nullopt;
  const seconds offset = sign * (hours{*offset_hours} + minutes{offset_minutes});
  return SysSeconds{local.time_since_epoch() - offset};
}

}  // namespace podflow::engine
