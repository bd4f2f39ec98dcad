// Test-only bridge for cron_differential.py: reads "<expr>\t<epoch_seconds>\t<count>[\t<zone>]"
// lines and prints each line's next fire times as epoch seconds (one output line per input line).
#include <chrono>
#include <iostream>
#include <sstream>
#include <string>
#include <variant>

#include "podflow/engine/cron.hpp"

int main() {
  using podflow::engine::CronParseError;
  using podflow::engine::CronSchedule;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream fields(line);
    std::string expression;
    std::string epoch_text;
    std::string count_text;
    std::string zone = "UTC";
    std::getline(fields, expression, '\t');
    std::getline(fields, epoch_text, '\t');
    std::getline(fields, count_text, '\t');
    std::getline(fields, zone, '\t');
    if (zone.empty()) zone = "UTC";
    auto parsed = CronSchedule::parse(expression);
    if (const auto* error = std::get_if<CronParseError>(&parsed)) {
      std::cout << "error at " << error->offset << ": " << error->message << '\n';
      continue;
    }
    if (!podflow::engine::is_known_time_zone(zone)) {
      std::cout << "error: unknown time zone " << zone << '\n';
      continue;
    }
    const auto& schedule = std::get<CronSchedule>(parsed);
    podflow::engine::SysSeconds after{std::chrono::seconds{std::stoll(epoch_text)}};
    const int count = std::stoi(count_text);
    std::string separator;
    for (int i = 0; i < count; ++i) {
      const auto next = schedule.next_after(after, zone);
      if (!next) break;
      std::cout << separator << next->time_since_epoch().count();
      separator = " ";
      after = *next;
    }
    std::cout << '\n';
  }
  return 0;
}
