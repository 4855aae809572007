"""Reload semantics of the nft backend's output, in a real kernel.

fwc's nft text starts each table with `table F N {}` + `delete table F N` (README, nft backend,
"Output shape").  Loading it must leave each of its tables holding exactly what the text says,
whatever an earlier version of the table held (extra base chains with policy drop, sets, maps,
user chains, objects, table flags, other policies), on a host where the table exists
and on one where it does not, and must leave every other table alone (handles included).

The reference is the same text loaded into an empty namespace that holds only the same foreign
tables.  A control shows that the comparison sees stale objects: with the `delete` replaced by
`flush table` (which only empties chains), the stale chain, set and policy-drop hook survive and
the listings differ."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from fwc.backends.nft import emit_nft
from fwc.frontends.iptables import parse_iptables_save
from fwc.passes import optimize
from fwc.testing.kernel import kernel_or_skip

pytestmark = pytest.mark.kernel

NEW_SAVE = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:svc - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -s 192.0.2.7/32 -j DROP
-A INPUT -s 192.0.2.9/32 -j DROP
-A INPUT -s 198.51.100.3/32 -j DROP
-A INPUT -p tcp -j svc
-A svc -p tcp --dport 22 -j ACCEPT
-A svc -p tcp --dport 443 -j ACCEPT
COMMIT
"""

# An earlier, different version of fwc's table, with everything a reload must remove or reset.
OLD_FILTER = """
table ip filter {
	flags dormant
	comment "old version"
	counter hits { }
	ct helper ftp-old { type "ftp" protocol tcp; }
	set oldset { type ipv4_addr; flags interval; elements = { 203.0.113.0/24 } }
	map oldmap { type inet_service : verdict; elements = { 80 : drop } }
	chain INPUT {
		type filter hook input priority filter; policy accept;
		ip saddr @oldset drop
		tcp dport vmap @oldmap
		jump stale
	}
	chain stale { counter name hits; ip daddr 203.0.113.9 drop; }
	chain svc { tcp dport 8080 accept; }
	chain pre_old { type filter hook prerouting priority -5; policy drop; }
	chain OUTPUT { type filter hook output priority 10; policy drop; }
}
"""

# Tables of other tools; a reload must not touch them (same names in other families too).
FOREIGN = """
table ip docker {
	set dset { type ipv4_addr; elements = { 192.0.2.1 } }
	chain DOCKER-USER { type filter hook forward priority -1; policy accept; ip saddr @dset return; }
}
table inet filter {
	chain input { type filter hook input priority 5; policy accept; tcp dport 9 drop; }
}
table ip6 filter {
	chain INPUT { type filter hook input priority 0; policy accept; }
}
"""


def sh(ns, *argv, input=None):
    p = subprocess.run(["ip", "netns", "exec", ns, *argv], input=input, capture_output=True,
                       text=True)
    assert p.returncode == 0, f"{argv}: {p.stderr}\n{input or ''}"
    return p.stdout


@pytest.fixture
def netns():
    """Two throw-away namespaces: one for the reload, one for the reference load."""
    kernel_or_skip()
    names = [f"fwcrl{os.getpid()}{x}" for x in "ab"]
    made = []
    try:
        for n in names:
            subprocess.run(["ip", "netns", "add", n], check=True)
            made.append(n)
            sh(n, "ip", "link", "set", "lo", "up")
        yield names
    finally:
        for n in made:
            subprocess.run(["ip", "netns", "delete", n])


def listing(ns) -> list[dict]:
    return [o for o in json.loads(sh(ns, "nft", "-j", "list", "ruleset"))["nftables"]
            if "metainfo" not in o]


def _strip(x):
    """Handles dropped (they count a namespace's history), set elements sorted."""
    if isinstance(x, dict):
        out = {k: _strip(v) for k, v in x.items() if k != "handle"}
        for k in ("elem", "set"):
            if isinstance(out.get(k), list):
                out[k] = sorted(out[k], key=json.dumps)
        return out
    if isinstance(x, list):
        return [_strip(v) for v in x]
    return x


def by_table(objs: list[dict], strip=True) -> dict[tuple[str, str], list]:
    """Objects of each (family, table), in listing order."""
    out: dict[tuple[str, str], list] = {}
    for o in objs:
        (kind, body), = o.items()
        key = (body["family"], body["name"] if kind == "table" else body["table"])
        out.setdefault(key, []).append(_strip(o) if strip else o)
    return out


def reload_vs_fresh(netns, text: str, old: str):
    """Load FOREIGN + `old` then `text` in one namespace, FOREIGN then `text` in the other."""
    reloaded, fresh = netns
    sh(reloaded, "nft", "-f", "-", input=FOREIGN)
    if old:
        sh(reloaded, "nft", "-f", "-", input=old)
    before = by_table(listing(reloaded), strip=False)
    sh(reloaded, "nft", "-f", "-", input=text)
    sh(fresh, "nft", "-f", "-", input=FOREIGN)
    sh(fresh, "nft", "-f", "-", input=text)
    return before, by_table(listing(reloaded), strip=False), by_table(listing(fresh))


def tables_of(text: str) -> set[tuple[str, str]]:
    return {tuple(line.split()[1:3]) for line in text.splitlines()
            if line.startswith("table ") and line.endswith(" {")}


OUTPUTS = {
    "plain": lambda: emit_nft(parse_iptables_save(NEW_SAVE)),
    "-O": lambda: emit_nft(optimize(parse_iptables_save(NEW_SAVE))),
}


@pytest.mark.parametrize("old", ["none", "old-version", "same-version"])
@pytest.mark.parametrize("shape", sorted(OUTPUTS))
def test_reload_leaves_exactly_the_new_tables_and_keeps_foreign_ones(netns, shape, old):
    text = OUTPUTS[shape]()
    ours = tables_of(text)
    assert ours == {("ip", "filter")}
    old_text = {"none": "", "old-version": OLD_FILTER, "same-version": text}[old]
    before, after, fresh = reload_vs_fresh(netns, text, old_text)
    if old == "old-version":
        assert len(before[("ip", "filter")]) > 10  # the old table really was there
    # our table: exactly what loading the text into an empty namespace gives
    ours_after = {k: [_strip(o) for o in v] for k, v in after.items() if k in ours}
    assert ours_after == {k: fresh[k] for k in ours}
    # nothing of the old version survives, by name
    names = {(k, o[k].get("name")) for o in after[("ip", "filter")] for k in o}
    assert not {n for _, n in names} & {"stale", "pre_old", "oldset", "oldmap", "hits",
                                        "ftp-old"}
    assert names == {(k, o[k].get("name")) for o in fresh[("ip", "filter")] for k in o}
    table, = (o["table"] for o in after[("ip", "filter")] if "table" in o)
    assert "flags" not in table and "comment" not in table, table
    # foreign tables: unchanged, handles included, and the same as in the reference
    for key in before:
        if key not in ours:
            assert after[key] == before[key], key
            assert [_strip(o) for o in after[key]] == fresh[key], key
    assert set(after) == set(fresh)


def test_flush_table_instead_of_delete_would_leave_stale_objects(netns):
    """The control: the comparison above fails for a prelude that empties instead of deleting.

    With the old OUTPUT chain at priority 10 the kernel refuses the load outright (a base chain's
    hook and priority cannot be changed in place); at the new priority, the load succeeds and
    the stale base chain, set and user chain survive."""
    text = OUTPUTS["plain"]()
    flushed = text.replace("delete table ip filter\n", "flush table ip filter\n")
    assert flushed != text
    reloaded, _ = netns
    sh(reloaded, "nft", "-f", "-", input=OLD_FILTER)
    p = subprocess.run(["ip", "netns", "exec", reloaded, "nft", "-f", "-"], input=flushed,
                       capture_output=True, text=True)
    assert p.returncode != 0 and "Operation not supported" in p.stderr, p.stderr
    sh(reloaded, "nft", "delete", "table", "ip", "filter")
    same_prio = OLD_FILTER.replace("hook output priority 10;", "hook output priority filter;")
    same_prio = same_prio.replace("\tflags dormant\n", "")  # (+ a new base chain: EINVAL)
    assert same_prio.count("\n") == OLD_FILTER.count("\n") - 1
    _, after, fresh = reload_vs_fresh(netns, flushed, same_prio)
    got = [_strip(o) for o in after[("ip", "filter")]]
    assert got != fresh[("ip", "filter")]
    kinds = {(k, o[k].get("name")) for o in got for k in o}
    assert {("chain", "pre_old"), ("set", "oldset"), ("chain", "stale")} <= kinds
