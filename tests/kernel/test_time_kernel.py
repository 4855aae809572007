"""-m time in the kernel: xt_time (iptables) and fwc's nft form give the verdict of
fwc.timewindow.matches at the moment the packet passes, and nft stores fwc's day intervals
with the nanosecond bounds the module docstring relies on."""

from __future__ import annotations

import json
import os
import re
import socket
import time

import pytest

from fwc import timewindow as tw
from fwc.backends.nft import emit_nft
from fwc.frontends.iptables import parse_iptables_script
from fwc.testing import netns

pytestmark = pytest.mark.kernel

PORT = 5999
DAY = 86400


@pytest.fixture(scope="module")
def pair(kernel_ok):
    names = (f"time-xt-{os.getpid()}", f"time-nft-{os.getpid()}")
    for n in names:
        netns.create(n)
    try:
        for n in names:
            netns.run(["ip", "link", "set", "lo", "up"], ns=n)
        yield names
    finally:
        for n in names:
            netns.delete(n)


def _hms(t: int) -> str:
    t %= DAY
    return f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}"


def _date(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))


def _conditions(now: int) -> list[str]:
    """Conditions around `now` (UTC seconds): each weekday, today's and tomorrow's day of the
    month, windows containing now and not, and --contiguous windows whose morning part holds
    now (it then counts as yesterday)."""
    names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    wd, md = tw.weekday(now), tw.monthday(now)
    out = [f"--weekdays {names[d - 1]}" for d in range(1, 8)]
    out += [f"! --weekdays {names[wd - 1]}", f"--monthdays {md}", f"! --monthdays {md}",
            f"--monthdays {md % 28 + 1}"]
    out += [f"--timestart {_hms(now - 300)} --timestop {_hms(now + 300)}",
            f"--timestart {_hms(now + 600)} --timestop {_hms(now + 900)}",
            f"--datestart {_date(now - 3600)}", f"--datestop {_date(now - 3600)}",
            f"--datestart {_date(now - 3 * DAY)} --datestop {_date(now + DAY)} "
            f"--weekdays {names[wd - 1]}"]
    # wrap-around windows: start later today, stop soon after now
    start, stop = (now + 3600) % DAY, (now + 300) % DAY
    if start > stop:
        yesterday = names[(wd - 2) % 7]
        out += [f"--timestart {_hms(start)} --timestop {_hms(stop)} --weekdays {names[wd - 1]}",
                f"--timestart {_hms(start)} --timestop {_hms(stop)} --weekdays {yesterday} "
                "--contiguous",
                f"--timestart {_hms(start)} --timestop {_hms(stop)} --weekdays {names[wd - 1]} "
                "--contiguous"]
    return out


def _script(conds: list[str]) -> str:
    return "".join(f"iptables -A OUTPUT -p udp --dport {PORT} -m time {c}\n" for c in conds)


def _send(ns: str) -> int:
    with netns.entered(ns):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        t = int(time.time())
        s.sendto(b"x", ("127.0.0.1", PORT))
        return t
    finally:
        s.close()


def _xt_counts(ns: str) -> list[int]:
    out = netns.run(["iptables", "-L", "OUTPUT", "-v", "-x", "-n"], ns=ns).stdout
    return [int(line.split()[0]) for line in out.splitlines()[2:] if line.strip()]


def _nft_counts(ns: str) -> list[int]:
    got = json.loads(netns.run(["nft", "-j", "list", "chain", "ip", "filter", "OUTPUT"],
                               ns=ns).stdout)["nftables"]
    counts = []
    for item in got:
        if "rule" in item:
            (c,) = [x["counter"]["packets"] for x in item["rule"]["expr"] if "counter" in x]
            counts.append(c)
    return counts


def test_xt_time_and_fwc_nft_agree_with_the_model_now(pair):
    xt_ns, nft_ns = pair
    conds = _conditions(int(time.time()))
    script = _script(conds)
    rs = parse_iptables_script(script)
    models = [r.matches[-1] for r in rs.tables[0].chain("OUTPUT").rules]
    netns.run(["iptables-restore"], input="*filter\n" + "".join(
        f"-A OUTPUT -p udp --dport {PORT} -m time {c}\n" for c in conds) + "COMMIT\n", ns=xt_ns)
    netns.run(["nft", "-f", "-"], input=emit_nft(rs, counters=True), ns=nft_ns)
    t_xt = _send(xt_ns)
    t_nft = _send(nft_ns)
    xt, nft = _xt_counts(xt_ns), _nft_counts(nft_ns)
    assert len(xt) == len(nft) == len(conds)
    for c, m, a, b in zip(conds, models, xt, nft):
        assert a == int(tw.matches(m, t_xt)), (c, "xt_time", t_xt)
        assert b == int(tw.matches(m, t_nft)), (c, "fwc nft", t_nft)
    assert 0 < sum(xt) < len(conds)  # some conditions hold now and some do not


_ELEM = re.compile(r"element ([0-9a-f]{8}) ([0-9a-f]{8})\s+: (\d) \[end\]")


def test_nft_keeps_the_interval_bounds_in_nanoseconds(pair):
    """Element `lo-(hi+1)` is [lo s, (hi+1) s] in ns: nft stores its end as the exclusive
    (hi+1) s + 1 ns; the `_ends` set then takes out (hi+1) s exactly."""
    _, ns = pair
    rs = parse_iptables_script("iptables -A INPUT -m time --weekdays Sa,Su "
                               "--datestart 2026-01-01 --datestop 2026-02-01\n")
    netns.run(["nft", "-f", "-"], input=emit_nft(rs), ns=ns)
    dump = netns.run(["nft", "--debug=netlink", "list", "set", "ip", "filter", "fwc_time_1"],
                     ns=ns).stdout
    keys = []
    for high, low, end in _ELEM.findall(dump):  # a 64-bit key: two words, high one first
        raw = bytes.fromhex(low) + bytes.fromhex(high)  # (each word's bytes little-endian)
        keys.append((int.from_bytes(raw, "little"), end == "1"))
    (m,) = rs.tables[0].chain("INPUT").rules[0].matches
    want = set()
    for lo, hi in tw.day_intervals(m):
        want |= {(lo * 10**9, False), ((hi + 1) * 10**9 + 1, True)}
    assert want <= set(keys) and len(want) == 2 * len(tw.day_intervals(m))
    ends = netns.run(["nft", "-j", "list", "set", "ip", "filter", "fwc_time_1_ends"],
                     ns=ns).stdout
    assert "elem" in ends


def test_quoted_meta_hour_and_time_strings_agree_with_the_kernel_now(pair):
    """`meta hour "hh:mm"-"hh:mm"` and `meta time "YYYY-MM-DD hh:mm:ss"` (fw4 writes them):
    nft converts them with its time zone; the simulator reads them the same way."""
    from fwc.backends.simulate import SimOptions, Simulator
    from fwc.frontends.nft import parse_nft
    from fwc.packet import packet_from_dict
    _, ns = pair
    now = int(time.time())
    lt = time.localtime(now)

    def hm(t):
        x = time.localtime(t)
        return f"{x.tm_hour:02d}:{x.tm_min:02d}"
    rules = []
    if lt.tm_hour not in (0, 23):  # (a window across midnight is not modelled)
        rules += [f'meta hour "{hm(now - 600)}"-"{hm(now + 600)}"',
                  f'meta hour "{hm(now + 1200)}"-"{hm(now + 2400)}"']
    day = time.strftime("%Y-%m-%d", lt)
    rules += [f'meta time >= "{time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now - 60))}"',
              f'meta time < "{day}"', f'meta time "{day} 00:00"-"{day} 23:59:59"']
    text = ("table ip filter {\n chain OUTPUT {\n  type filter hook output priority 0;\n"
            + "".join(f"  udp dport {PORT} {r} counter\n" for r in rules) + " }\n}\n")
    netns.run(["nft", "-f", "-"], input=text, ns=ns)
    t = _send(ns)
    counts = _nft_counts(ns)
    want = []
    for r in rules:  # each rule alone: does the simulator's reading match the packet?
        one = ("table ip filter {\n chain OUTPUT {\n  type filter hook output priority 0;\n"
               f"  udp dport {PORT} {r} drop\n }}\n}}\n")
        s = Simulator(parse_nft(one, "one.nft"), SimOptions(clock_ns=t * 10**9))
        pkt = packet_from_dict({"dir": "out", "proto": "udp", "dst": "198.51.100.7",
                                "dport": PORT})
        want.append(int(s.run_packet(pkt)[0] == "DROP"))
    assert counts == want
    assert 0 < sum(want) < len(rules)


def _kernel_tz_minutes_west() -> int:
    """The kernel's sys_tz (gettimeofday's second argument), which nft's `meta day` reads."""
    import ctypes

    class _TZ(ctypes.Structure):
        _fields_ = [("minuteswest", ctypes.c_int), ("dsttime", ctypes.c_int)]

    class _TV(ctypes.Structure):
        _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long)]
    tv, tz = _TV(), _TZ()
    assert ctypes.CDLL(None).gettimeofday(ctypes.byref(tv), ctypes.byref(tz)) == 0
    return tz.minuteswest


def test_meta_day_agrees_with_the_kernel_now(pair):
    """`meta day` (a name, a number, a range, a set): the kernel's weekday in its sys_tz
    (nft_meta_weekday, 0 = Sunday); the simulator reads the same day for the packet's time."""
    from fwc.backends.simulate import SimOptions, Simulator
    from fwc.conntrack.fields import DAYS
    from fwc.frontends.nft import parse_nft
    from fwc.packet import packet_from_dict
    _, ns = pair
    west = _kernel_tz_minutes_west()
    today = (4 + (int(time.time()) - 60 * west) // DAY) % 7
    if (int(time.time()) - 60 * west) % DAY > DAY - 120:
        time.sleep(130)  # (not across midnight)
        today = (4 + (int(time.time()) - 60 * west) // DAY) % 7
    tomorrow = (today + 1) % 7
    rules = [f'meta day "{DAYS[today]}"', f"meta day {tomorrow}", f'meta day != "{DAYS[today]}"',
             f"meta day {{ {DAYS[tomorrow]}, {DAYS[today]} }}",
             f"meta day {min(today, tomorrow)}-{max(today, tomorrow)}"]
    text = ("flush ruleset\ntable ip filter {\n chain OUTPUT {\n  type filter hook output "
            "priority 0;\n" + "".join(f"  udp dport {PORT} {r} counter\n" for r in rules)
            + " }\n}\n")
    netns.run(["nft", "-f", "-"], input=text, ns=ns)
    t = _send(ns)
    counts = _nft_counts(ns)
    want = []
    for r in rules:
        one = ("table ip filter {\n chain OUTPUT {\n  type filter hook output priority 0;\n"
               f"  udp dport {PORT} {r} drop\n }}\n}}\n")
        s = Simulator(parse_nft(one, "one.nft"), SimOptions(clock_ns=t * 10**9,
                                                            kernel_tz_minutes_west=west))
        pkt = packet_from_dict({"dir": "out", "proto": "udp", "dst": "198.51.100.7",
                                "dport": PORT})
        want.append(int(s.run_packet(pkt)[0] == "DROP"))
    assert counts == want
    assert want[:3] == [1, 0, 0] and want[3] == 1
