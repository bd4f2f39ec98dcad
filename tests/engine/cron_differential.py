#!/usr/bin/python3
"""Differential test of podflow's cron against python3-croniter: random valid 5-field expressions,
the next few fire times of each from both, compared in UTC.

Run with Debian's /usr/bin/python3 (it has croniter): cron_differential.py PATH/TO/cron_oracle
[--count N] [--seed S]. Prints "N expressions, M fire times compared, K mismatches" and exits
non-zero on any mismatch, listing the first few.

Zones: UTC and zones without DST (Asia/Kolkata +05:30, Asia/Kathmandu +05:45). DST zones are left to
cron_test.cpp: croniter 1.3.5 shifts results by the DST lag in ways that are neither of the rules
in DESIGN.md section 5, so it is no oracle there.

Corners where croniter differs from Vixie cron semantics, and which are therefore never generated:
- croniter decides the day-of-month/day-of-week OR rule on the *expanded* values: a day field is
  "unrestricted" only when it covers every value. Vixie cron (and podflow) decide on the text: a
  field is unrestricted when it starts with '*'. So "*/2" with any day-of-week other than '*' is an
  OR for croniter and an AND for Vixie, and "1-31" (or "0-6", "SUN-SAT", "1/1") with a restricted
  day-of-week is an AND for croniter and an OR for Vixie. The generator makes neither: a "*/n" day
  field only beside a plain '*', and a restricted one that covers every day only beside '*'.
- croniter accepts a day-of-week range ending in Sunday written as 0 or SUN ("FRI-SUN") as if it
  were 7. podflow rejects it as a reversed range (it suggests 5-7), so only ranges with low <= high
  are generated.
- croniter accepts steps larger than the field ("*/75" in minutes); podflow limits steps to
  1..max of the field. Steps are generated within that.
- With the OR rule, croniter gives up (CroniterBadDateError) when the day-of-month half alone can
  never fire ("31 APR MON"), instead of firing on the day-of-week half as Vixie cron does. The
  generator makes no such pair.
- Lists that mix '*' with values ("*,5") are not generated: they mean nothing useful and the two
  disagree on whether the field is restricted.
"""

import argparse
import calendar
import datetime
import random
import subprocess
import sys
import zoneinfo

from croniter import croniter, CroniterBadDateError

UTC = datetime.timezone.utc
ZONES = ["UTC", "UTC", "UTC", "Asia/Kolkata", "Asia/Kathmandu"]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# podflow's search horizon: the rest of the year of the previous time plus 8 whole years.
HORIZON_YEARS = 8

# (low, high, step_max) per field; day-of-week accepts 0-7 (7 = Sunday).
FIELDS = {
    "minute": (0, 59, 59),
    "hour": (0, 23, 23),
    "dom": (1, 31, 31),
    "month": (1, 12, 12),
    "dow": (0, 7, 7),
}


def spell(field, value, rng):
    """A value as a number or, in month and day-of-week fields, sometimes as a name in any case."""
    names = None
    if field == "month":
        names = MONTHS
        index = value - 1
    elif field == "dow" and value <= 6:
        names = DAYS
        index = value
    if names is None or rng.random() < 0.5:
        return str(value)
    name = names[index]
    return rng.choice([name, name.lower(), name.capitalize()])


def item(field, rng):
    low, high, step_max = FIELDS[field]
    kind = rng.random()
    if kind < 0.4:
        return spell(field, rng.randint(low, high), rng)
    if kind < 0.65:
        a, b = sorted((rng.randint(low, high), rng.randint(low, high)))
        return spell(field, a, rng) + "-" + spell(field, b, rng)
    if kind < 0.85:
        a, b = sorted((rng.randint(low, high), rng.randint(low, high)))
        return "%s-%s/%d" % (spell(field, a, rng), spell(field, b, rng), rng.randint(1, step_max))
    # "start/step" means start to the end of the field.
    return "%s/%d" % (spell(field, rng.randint(low, high), rng), rng.randint(1, step_max))


def restricted_field(field, rng):
    """A field that does not start with '*'."""
    return ",".join(item(field, rng) for _ in range(rng.choice([1, 1, 1, 2, 3])))


def star_field(field, rng):
    _, _, step_max = FIELDS[field]
    return "*" if rng.random() < 0.6 else "*/%d" % rng.randint(1, step_max)


def any_field(field, rng):
    return star_field(field, rng) if rng.random() < 0.4 else restricted_field(field, rng)


def covers_all_days(field, text):
    """True when a day field's values are every day (croniter then treats it as '*')."""
    if field == "dom":
        return croniter.expand("* * %s * *" % text)[0][2] == ["*"]
    return croniter.expand("* * * * %s" % text)[0][4] == ["*"]


def dom_can_occur(dom, month):
    """True when some day of `dom` exists in some month of `month` (Feb counted with 29 days)."""
    expanded = croniter.expand("* * %s %s *" % (dom, month))[0]
    days = range(1, 32) if expanded[2] == ["*"] else expanded[2]
    months = range(1, 13) if expanded[3] == ["*"] else expanded[3]
    longest = max([31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1] for m in months)
    return min(days) <= longest


def day_fields(rng, month):
    shape = rng.random()
    if shape < 0.3:  # both restricted: the OR rule
        while True:
            dom, dow = restricted_field("dom", rng), restricted_field("dow", rng)
            if (not covers_all_days("dom", dom) and not covers_all_days("dow", dow)
                    and dom_can_occur(dom, month)):
                return dom, dow
    if shape < 0.55:
        return restricted_field("dom", rng), "*"
    if shape < 0.8:
        return "*", restricted_field("dow", rng)
    # Both start with '*', so both must match (AND). croniter agrees only when one of them covers
    # every day; with "*/3" and "*/2" it would apply the OR rule (see the module comment).
    if rng.random() < 0.5:
        return star_field("dom", rng), "*"
    return "*", star_field("dow", rng)


def expression(rng):
    if rng.random() < 0.02:
        return rng.choice(["@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually", "@Daily"])
    minute, hour, month = any_field("minute", rng), any_field("hour", rng), any_field("month", rng)
    dom, dow = day_fields(rng, month)
    return " ".join([minute, hour, dom, month, dow])


def start_time(rng):
    epoch = rng.randint(calendar.timegm((2000, 1, 1, 0, 0, 0)), calendar.timegm((2035, 1, 1, 0, 0, 0)))
    shape = rng.random()
    if shape < 0.3:
        epoch -= epoch % 60  # on a minute boundary: "strictly after" must skip it
    elif shape < 0.4:
        epoch -= epoch % 86400
    return epoch


def croniter_next(expr, epoch, tz, limit):
    """croniter's next fire time after `epoch`, worked around a croniter 1.3.5 bug.

    croniter's day-of-month step uses the length of the month the search *started* in (its `month`
    variable is not updated as the search moves on), so a search that starts in February can skip
    the first matching days of March ("*/5" from Feb 28 gives Mar 6, not Mar 1). Its answer is right
    when it lies in the month the search starts in; otherwise this restarts the search at the
    beginning of the next month (croniter adds 60 s before it reads the month) until it does.
    """
    while True:
        start = datetime.datetime.fromtimestamp(epoch + 60, tz)
        try:
            value = int(croniter(expr, datetime.datetime.fromtimestamp(epoch, tz)).get_next(float))
        except CroniterBadDateError:
            return None
        found = datetime.datetime.fromtimestamp(value, tz)
        if (found.year, found.month) == (start.year, start.month):
            return value
        next_month = datetime.datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=tz)
        if next_month >= limit:
            return None
        epoch = int(next_month.timestamp()) - 60


def croniter_times(expr, epoch, zone, count):
    tz = UTC if zone == "UTC" else zoneinfo.ZoneInfo(zone)
    times = []
    for _ in range(count):
        previous = datetime.datetime.fromtimestamp(epoch, tz)
        # podflow's search horizon: it reports no fire time beyond it.
        limit = datetime.datetime(previous.year + HORIZON_YEARS + 1, 1, 1, tzinfo=tz)
        value = croniter_next(expr, epoch, tz, limit)
        if value is None or value >= limit.timestamp():
            break
        times.append(value)
        epoch = value
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("oracle")
    parser.add_argument("--count", type=int, default=5000)  # about 3,000 on UTC
    parser.add_argument("--seed", type=int, default=20260329)
    parser.add_argument("--fires", type=int, default=5)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    cases = []
    for _ in range(args.count):
        cases.append((expression(rng), start_time(rng), rng.choice(ZONES)))

    request = "".join("%s\t%d\t%d\t%s\n" % (expr, epoch, args.fires, zone) for expr, epoch, zone in cases)
    result = subprocess.run([args.oracle], input=request, capture_output=True, text=True, timeout=240)
    if result.returncode != 0:
        print("cron_oracle failed with exit code %d: %s" % (result.returncode, result.stderr))
        return 1
    lines = result.stdout.splitlines()
    if len(lines) != len(cases):
        print("cron_oracle answered %d lines for %d expressions" % (len(lines), len(cases)))
        return 1

    compared = 0
    mismatches = []
    for (expr, epoch, zone), line in zip(cases, lines):
        expected = croniter_times(expr, epoch, zone, args.fires)
        if line.startswith("error"):
            mismatches.append((expr, epoch, zone, expected, line))
            continue
        actual = [int(t) for t in line.split()]
        compared += max(len(expected), len(actual))
        if actual != expected:
            mismatches.append((expr, epoch, zone, expected, actual))

    print("%d expressions, %d fire times compared, %d mismatches" % (len(cases), compared, len(mismatches)))

    def show(times):
        if isinstance(times, str):
            return times
        return " ".join(datetime.datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in times)

    for expr, epoch, zone, expected, actual in mismatches[:10]:
        print("MISMATCH %r after %s in %s" % (expr, show([epoch]), zone))
        print("  croniter: %s" % show(expected))
        print("  podflow:  %s" % show(actual))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
