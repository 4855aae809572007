"""What iptables' `-m time` (ir.Time) means, and its exact nftables form.

`matches` is written from the kernel's xt_time (time_mt, UTC), including its integer arithmetic.

nft has no UTC weekday or day of the month: `meta day` uses the kernel's time zone (sys_tz),
which the ruleset cannot know.  But xt_time only ever matches before its date_stop (at the
latest 2038-12-31), so the seconds whose day is selected form a finite list of intervals, and
`meta time` can look them up.  nft reads a `meta time` value as whole seconds and an interval
set element `A-B` as [A s, B s] in nanoseconds, closed at both ends; so the interval of whole
seconds [lo, hi] becomes the element `lo-(hi+1)` and the end point `hi+1` is excluded with a
second set: `meta time @days meta time != @ends`.  The time of day stays `meta hour`, which
the kernel computes in UTC (nft converts quoted "hh:mm" strings with nft's own TZ, so fwc
writes seconds).
"""

from __future__ import annotations

import functools

import calendar

from fwc import ir

DAY = 86400
ALL_WEEKDAYS = 0xFE
ALL_MONTHDAYS = 0xFFFFFFFE
U32 = 0xFFFFFFFF

# xt_time's days_since_epoch table: 1 January of 2039, 2038, ... 1970
_DSE_FIRST = 2039
_DAYS_SINCE_EPOCH = []
_d = 0
for _y in range(1970, _DSE_FIRST + 1):
    _DAYS_SINCE_EPOCH.append(_d)
    _d += 366 if calendar.isleap(_y) else 365
_DAYS_SINCE_EPOCH.reverse()
_DSY = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
_DSLY = (0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335)


def _dse(stamp: int) -> int:
    """div_u64(stamp, 86400) stored in an unsigned int (a negative stamp wraps, as in C)."""
    return ((stamp % 2**64) // DAY) & U32


def weekday(stamp: int) -> int:
    """localtime_2: 1 Monday .. 7 Sunday."""
    return ((4 + _dse(stamp) - 1) & U32) % 7 + 1


def monthday(stamp: int) -> int:
    """localtime_3: the day of the month, from the kernel's table of years 1970-2039."""
    w = _dse(stamp)
    i, year = 0, _DSE_FIRST
    while _DAYS_SINCE_EPOCH[i] > w:
        i, year = i + 1, year - 1
    w -= _DAYS_SINCE_EPOCH[i]
    table = _DSLY if calendar.isleap(year) else _DSY
    k = len(table) - 1
    while k > 0 and table[k] > w:
        k -= 1
    return (w - table[k] + 1) & 0xFF  # a u8


def _day_selected(m: ir.Time, stamp: int) -> bool:
    if not m.weekdays & (1 << weekday(stamp)):
        return False
    if m.monthdays != ALL_MONTHDAYS:
        # 1 << monthday: x86 shifts count modulo 32 (only reachable after 2039)
        if not m.monthdays & (1 << (monthday(stamp) & 31)):
            return False
    return True


def matches(m: ir.Time, stamp: int) -> bool:
    """xt_time's time_mt at wall-clock second `stamp` (UTC)."""
    if stamp < m.date_start or stamp > m.date_stop:
        return False
    t = stamp % DAY
    if m.daytime_start < m.daytime_stop:
        if t < m.daytime_start or t > m.daytime_stop:
            return False
    else:
        if m.daytime_start > t > m.daytime_stop:
            return False
        if m.contiguous and t <= m.daytime_stop:
            stamp -= DAY
    return _day_selected(m, stamp)


def days_restricted(m: ir.Time) -> bool:
    return m.weekdays & ALL_WEEKDAYS != ALL_WEEKDAYS or m.monthdays != ALL_MONTHDAYS


def hour_ranges(m: ir.Time) -> list[tuple[int, int]]:
    """The seconds of the day xt_time accepts, as inclusive ranges ([] = every second)."""
    lo, hi = m.daytime_start, m.daytime_stop
    if lo < hi:
        return [] if (lo, hi) == (0, DAY - 1) else [(lo, hi)]
    if lo == hi:
        return []  # time_mt's wrap-around test is then never true
    return [(0, hi), (lo, DAY - 1)]


def day_intervals(m: ir.Time) -> list[tuple[int, int]]:
    """The whole seconds of [date_start, date_stop] whose day is selected (the day before for
    the morning part of a --contiguous window), as sorted, disjoint, non-adjacent inclusive
    intervals.  Together with `hour_ranges` this is exactly `matches`."""
    shift = m.contiguous and m.daytime_start >= m.daytime_stop
    # (what the days depend on: rules that share it share the walk over 24,855 days)
    return list(_day_intervals(m.weekdays, m.monthdays, m.date_start, m.date_stop, shift,
                               m.daytime_stop if shift else 0))


@functools.lru_cache(maxsize=256)
def _day_intervals(weekdays: int, monthdays: int, date_start: int, date_stop: int,
                   shift: bool, daytime_stop: int) -> tuple[tuple[int, int], ...]:
    m = ir.Time(weekdays=weekdays, monthdays=monthdays, date_start=date_start,
                date_stop=date_stop, daytime_stop=daytime_stop)
    out: list[list[int]] = []

    def add(lo: int, hi: int) -> None:
        lo, hi = max(lo, m.date_start), min(hi, m.date_stop)
        if lo > hi:
            return
        if out and out[-1][1] + 1 == lo:
            out[-1][1] = hi
        else:
            out.append([lo, hi])

    for d in range(m.date_start // DAY, m.date_stop // DAY + 1):
        base = d * DAY
        if shift:  # [base, base+stop] belongs to the day before
            if _day_selected(m, base - DAY):
                add(base, base + m.daytime_stop)
            if _day_selected(m, base):
                add(base + m.daytime_stop + 1, base + DAY - 1)
        elif _day_selected(m, base):
            add(base, base + DAY - 1)
    return tuple((lo, hi) for lo, hi in out)
