"""-m time (ir.Time): the nft form (day intervals + meta hour) means what xt_time means."""

import calendar
import datetime

import attrs
import pytest
from hypothesis import given, settings, strategies as st

from fwc import ir, timewindow as tw
from fwc.backends.nft import emit_nft
from fwc.backends.simulate import SimOptions, Simulator
from fwc.frontends.iptables import parse_iptables_save, parse_iptables_script
from fwc.frontends.nft import parse_nft
from fwc.packet import packet_from_dict

LAST = 2**31 - 1


def _utc(*args) -> int:
    return calendar.timegm(datetime.datetime(*args).timetuple())


def test_weekday_and_monthday_follow_the_calendar():
    for t in (0, 86399, 86400, _utc(2000, 2, 29, 12), _utc(2026, 12, 2, 7), _utc(2038, 1, 19)):
        d = datetime.datetime.utcfromtimestamp(t)
        assert tw.weekday(t) == d.isoweekday()
        assert tw.monthday(t) == d.day


def test_the_day_before_the_epoch_wraps_as_in_the_kernel():
    # --contiguous at 1970-01-01 00:00 looks at stamp - 86400 < 0: u64 division, u32 result
    assert tw.weekday(-1) == ((4 + ((2**64 - 1) // 86400 & 0xFFFFFFFF) - 1) & 0xFFFFFFFF) % 7 + 1


def _nft_form_matches(m: ir.Time, t: int) -> bool:
    hours = tw.hour_ranges(m)
    if hours and not any(a <= t % 86400 <= b for a, b in hours):
        return False
    if not tw.days_restricted(m):
        return m.date_start <= t <= m.date_stop
    return any(lo <= t <= hi for lo, hi in tw.day_intervals(m))


times = st.builds(
    ir.Time,
    date_start=st.integers(0, _utc(2030, 1, 1)),
    date_stop=st.integers(_utc(2026, 1, 1), LAST),
    daytime_start=st.integers(0, 86399) | st.sampled_from([0, 3600, 82800, 86399]),
    daytime_stop=st.integers(0, 86399) | st.sampled_from([0, 3600, 82800, 86399]),
    weekdays=st.integers(0, 127).map(lambda b: b << 1),
    monthdays=st.sampled_from([tw.ALL_MONTHDAYS, 1 << 1, 1 << 31, (1 << 29) | (1 << 15)]) |
    st.integers(0, 2**31 - 1).map(lambda b: b << 1),
    contiguous=st.booleans())


@settings(max_examples=150, deadline=None)
@given(m=times, data=st.data())
def test_day_intervals_with_meta_hour_are_time_mt(m, data):
    # --contiguous needs start >= stop (libxt_time refuses it otherwise); at most one year of
    # range, so that the intervals stay quick to compute
    m = attrs.evolve(m, contiguous=m.contiguous and m.daytime_start >= m.daytime_stop,
                     date_start=max(min(m.date_start, m.date_stop), m.date_stop - 366 * 86400))
    edges = [m.date_start, m.date_stop]
    if tw.days_restricted(m):
        ivs = tw.day_intervals(m)
        for a, b in zip(ivs, ivs[1:]):
            assert a[1] + 1 < b[0]  # disjoint and not adjacent: hi+1 is never a start
        edges += [x for lo, hi in ivs[:20] for x in (lo, hi)]
    ts = data.draw(st.lists(st.integers(m.date_start - 2 * 86400, m.date_stop + 2 * 86400),
                            min_size=20, max_size=20))
    for t in ts + [e + d for e in edges for d in (-1, 0, 1)]:
        assert _nft_form_matches(m, t) == tw.matches(m, t), (m, t)


def _verdict(rs, clock_ns: int) -> str:
    sim = Simulator(rs, SimOptions(clock_ns=clock_ns))
    pkt = packet_from_dict({"dir": "in", "proto": "udp", "src": "198.51.100.7",
                            "dst": "192.0.2.1", "sport": 1000, "dport": 53, "iif": "eth0"})
    return sim.run_packet(pkt)[0]


RULES = [
    "-m time --weekdays Sa,Su",
    "-m time --timestart 23:00 --timestop 01:00 --weekdays Fri --contiguous",
    "-m time --monthdays 1,29 --datestart 2028-01-01 --datestop 2028-12-31T12:00",
    "-m time --timestart 12:00 --timestop 19:00 ! --weekdays Mon,Tue,Wed,Thu,Fri",
    "-m time --datestart 2027-03-01T10:00:00 --datestop 2027-03-01T10:00:05",
]


@pytest.mark.parametrize("cond", RULES)
def test_simulated_iptables_and_fwc_nft_output_agree_to_the_nanosecond(cond):
    src = parse_iptables_script(f"iptables -P INPUT ACCEPT\niptables -A INPUT {cond} -j DROP\n")
    (m,) = src.tables[0].chain("INPUT").rules[0].matches
    out = parse_nft(emit_nft(src), "<fwc>")
    edges = tw.day_intervals(m)[:40] if tw.days_restricted(m) else [(m.date_start, m.date_stop)]
    probes = {x for lo, hi in edges for x in (lo - 1, lo, hi, hi + 1)}
    probes |= {_utc(2027, 3, 1, 10) + k for k in range(-2, 8)}
    probes |= {_utc(2028, 2, 29, h) for h in (0, 12, 23)} | {_utc(2026, 12, 4, 23, 30)}
    for t in sorted(probes):
        for ns in (0, 999_999_999):
            want = "DROP" if tw.matches(m, t) else "ACCEPT"
            assert _verdict(src, t * 10**9 + ns) == want, (cond, t, ns)
            assert _verdict(out, t * 10**9 + ns) == want, (cond, t, ns)


def test_round_trip_through_iptables_text():
    from fwc.backends.iptables import emit_iptables
    for cond in RULES + ["-m time", "-m time --timestart 12:00 --timestop 12:00"]:
        src = parse_iptables_script(f"iptables -A INPUT {cond} -j DROP\n")
        back = parse_iptables_save(emit_iptables(src)["ip"], "<back>")
        assert back.tables[0].chain("INPUT").rules[0].matches == \
            src.tables[0].chain("INPUT").rules[0].matches


def test_a_set_is_shared_and_named_apart_from_the_rulesets_own():
    text = emit_nft(parse_iptables_script(
        "iptables -A INPUT -m time --weekdays Sa -j DROP\n"
        "iptables -A OUTPUT -m time --weekdays Sa -j DROP\n"
        "iptables -A OUTPUT -m time --weekdays Su -j DROP\n"))
    assert text.count("set fwc_time_1 {") == 1 and text.count("set fwc_time_2 {") == 1
    assert text.count("meta time @fwc_time_1 meta time != @fwc_time_1_ends") == 2
