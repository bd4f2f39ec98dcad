// Workflow durations: what parses, what is refused, and the canonical text form.
#include "podflow/engine/duration.hpp"

#include <doctest/doctest.h>

namespace podflow::engine {
namespace {

using namespace std::chrono_literals;

TEST_CASE("Duration.parses every unit and combinations largest first" * doctest::timeout(5)) {
  CHECK(parse_duration("250ms") == Millis(250));
  CHECK(parse_duration("30s") == Millis(30s));
  CHECK(parse_duration("10m") == Millis(10min));
  CHECK(parse_duration("6h") == Millis(6h));
  CHECK(parse_duration("2d") == Millis(48h));
  CHECK(parse_duration("1h30m") == Millis(90min));
  CHECK(parse_duration("1d2h3m4s5ms") == Millis(93'784'005));
  CHECK(parse_duration("0s") == Millis(0));
}

TEST_CASE("Duration.refuses what a user could misread" * doctest::timeout(5)) {
  for (const char* bad : {"", "30", "s", "1.5h", "-5s", "30sec", "1m1h", "1s1s", "5 m", "1h 30m",
                          "99999999999999999999d", "10w"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_duration(bad).has_value());
  }
}

TEST_CASE("Duration.formats the shortest text that reads back" * doctest::timeout(5)) {
  CHECK(format_duration(Millis(90min)) == "1h30m");
  CHECK(format_duration(Millis(250)) == "250ms");
  CHECK(format_duration(Millis(0)) == "0s");
  CHECK(format_duration(Millis(48h)) == "2d");
  for (const char* text : {"1d2h3m4s5ms", "45s", "3h", "1m500ms"}) {
    CHECK(format_duration(*parse_duration(text)) == text);
  }
}

}  // namespace
}  // namespace podflow::engine
