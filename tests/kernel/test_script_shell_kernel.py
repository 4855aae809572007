"""A script of iptables commands means what the shell makes of it.  The scripts below use the
shell features fwc reads (`;`, `&&` and `||` between commands, unquoted variables split into
words, an empty one vanishing, `-4`, options before the command, bundled list flags `-nvL`,
redirections, for loops); each is run with sh in a throw-away namespace, and fwc's reading of
the script must equal its reading of what iptables-save then prints."""

from __future__ import annotations

import os

import pytest

from fwc.frontends.iptables import parse_iptables_save, parse_iptables_script
from fwc.testing import netns

pytestmark = pytest.mark.kernel

SCRIPT = r"""#!/bin/sh
IPT=iptables
SSH="-p tcp --dport 22"
EMPTY=
LAN=192.168.0.0/24
$IPT -F; $IPT -X ;$IPT -P INPUT DROP
$IPT -N LOGDROP && $IPT -A LOGDROP -j LOG --log-prefix "drop: " && $IPT -A LOGDROP -j DROP
$IPT -A INPUT -i lo -j ACCEPT
$IPT -A INPUT $EMPTY -s $LAN $SSH -m comment --comment "ssh; from the lan" -j ACCEPT
$IPT -4 -A INPUT -p udp --dport 53 -j ACCEPT
$IPT -p tcp -A INPUT --dport 80 -j ACCEPT
$IPT -nvL; $IPT -t nat -vnL >/dev/null
$IPT -A INPUT -j LOGDROP
"""


def test_script_reads_as_the_shell_runs_it(kernel_ok, tmp_path):
    script = tmp_path / "fw.sh"
    script.write_text(SCRIPT)
    ours = parse_iptables_script(script.read_text(), str(script))
    ns = f"fwcsh{os.getpid()}"
    netns.create(ns)
    try:
        netns.run(["sh", "-e", "-c", SCRIPT], ns=ns)
        saved = netns.run(["iptables-save", "-t", "filter"], ns=ns).stdout
    finally:
        netns.delete(ns)
    theirs = parse_iptables_save(saved, "saved", "ip")
    def chains(rs):
        return {c.name: (c.base.policy if c.base else None,
                         [(r.matches, r.statements, r.verdict, r.comment) for r in c.rules])
                for t in rs.tables for c in t.chains}
    mine, kernel = chains(ours), chains(theirs)
    # iptables-save also lists the built-in chains the script never named (empty, accept)
    assert {k: v for k, v in kernel.items() if k in mine} == mine
    assert all(v == ("accept", []) for k, v in kernel.items() if k not in mine)
    assert len(mine["INPUT"][1]) == 5 and mine["INPUT"][0] == "drop"


# `&&` and `||` test exit statuses, which depend on the state earlier commands built: a -C, a
# -N of an existing chain, a -X of a chain still in use, a jump to a chain not created yet.
# Redirections of iptables' messages change no rule.
LISTS = r"""IPT=iptables
$IPT -N LOGDROP 2>/dev/null || true
$IPT -N LOGDROP 2>/dev/null || $IPT -F LOGDROP
$IPT -A LOGDROP -j DROP
$IPT -C INPUT -p tcp --dport 22 -j ACCEPT 2>/dev/null || $IPT -A INPUT -p tcp --dport 22 -j ACCEPT
$IPT -C INPUT -p tcp --dport 22 -j ACCEPT 2>/dev/null || $IPT -A INPUT -p tcp --dport 22 -j ACCEPT
$IPT -D INPUT -p tcp --dport 23 -j ACCEPT >/dev/null 2>&1 || :
$IPT -C INPUT -p tcp --dport 22 -j ACCEPT && $IPT -I INPUT 1 -i lo -j ACCEPT
$IPT -X LOGDROP 2> /dev/null || $IPT -A INPUT -s 192.0.2.9 -j LOGDROP
$IPT -X LOGDROP 2>/dev/null || $IPT -A INPUT -s 192.0.2.10 -j LOGDROP
$IPT -N TMP && $IPT -X TMP && $IPT -A INPUT -p udp --dport 53 -j ACCEPT
false || $IPT -A INPUT -p udp --dport 123 -j ACCEPT
true && $IPT -A INPUT -p icmp -j ACCEPT ||
   $IPT -A INPUT -j REJECT
$IPT -E LOGDROP INPUT 2>/dev/null || $IPT -E LOGDROP DROPLOG
$IPT -A INPUT -j NOPE 2>/dev/null || $IPT -A INPUT -p tcp --dport 80 -j ACCEPT
$IPT -A INPUT -p tcp --dport 81 -j NOPE 2>/dev/null && $IPT -A INPUT -p tcp --dport 82 -j ACCEPT
$IPT -P DROPLOG DROP 2>/dev/null || $IPT -P INPUT DROP >>/dev/null
$IPT -D INPUT -s 192.0.2.11 -j DROPLOG 2>/dev/null || $IPT -F DROPLOG && $IPT -A DROPLOG -j REJECT
$IPT -Z NOPE 2>/dev/null || $IPT -A INPUT -p tcp --dport 443 -j ACCEPT
"""


def _chains(rs):
    return {c.name: (c.base.policy if c.base else None,
                     [(r.matches, r.statements, r.verdict, r.comment) for r in c.rules])
            for t in rs.tables for c in t.chains}


def _ours_as_the_shell_runs_it(script: str, name: str) -> dict:
    """fwc's reading of `script` (its chains), checked against what `sh -c` leaves in a
    throw-away namespace's filter table."""
    ours = _chains(parse_iptables_script(script, name))
    ns = f"fwcsh{os.getpid()}x"
    netns.create(ns)
    try:
        netns.run(["sh", "-c", script], ns=ns)
        saved = netns.run(["iptables-save", "-t", "filter"], ns=ns).stdout
    finally:
        netns.delete(ns)
    kernel = _chains(parse_iptables_save(saved, "saved", "ip"))
    assert {k: v for k, v in kernel.items() if k in ours} == ours
    assert all(v == ("accept", []) for k, v in kernel.items() if k not in ours)
    return ours


def test_and_or_lists_follow_exit_statuses_as_the_shell_does(kernel_ok, tmp_path):
    ours = _ours_as_the_shell_runs_it(LISTS, "lists.sh")  # (no -e: failing commands count)
    # the script's own story: what ran and what the shell skipped
    assert ours["INPUT"][0] == "drop" and "LOGDROP" not in ours and "TMP" not in ours
    assert len(ours["INPUT"][1]) == 9 and len(ours["DROPLOG"][1]) == 1


# for loops over words, nested, over a variable split into words, quoted words kept whole; the
# loop variable keeps its last value after the loop
LOOPS = r"""PORTS="22 80  443"
LAN=192.168.1.0/24
for p in $PORTS; do iptables -A INPUT -p tcp --dport $p -j ACCEPT; done
for net in 10.0.0.0/8 "$LAN"
do
    for proto in tcp udp; do
        iptables -A INPUT -s $net -p $proto --dport 53 -j ACCEPT
    done
done
for c in web mail; do iptables -N in-$c && iptables -A in-$c -j RETURN; done
for c in web mail web; do iptables -N in-$c 2>/dev/null || iptables -A in-$c -j DROP; done
for prefix in "a b" c; do
  iptables -A INPUT -j LOG --log-prefix "$prefix"
done
for a in 1 2; do for b in 3 4; do iptables -A INPUT -p udp --dport $a$b -j ACCEPT; done
done
iptables -A INPUT -p tcp --dport $p -j REJECT
iptables -A INPUT -p tcp --dport 44\
3 -m comment --comment "x\
y" -j ACCEPT
"""


def test_for_loops_run_as_the_shell_runs_them(kernel_ok):
    ours = _ours_as_the_shell_runs_it(LOOPS, "loops.sh")
    assert len(ours["INPUT"][1]) == 3 + 4 + 2 + 4 + 1 + 1 and len(ours["in-web"][1]) == 3


IDEMPOTENT = r"""#!/bin/sh
iptables -D INPUT -j LOGDROP 2>/dev/null
iptables -F LOGDROP 2>/dev/null
iptables -X LOGDROP 2>/dev/null
iptables -D INPUT -p tcp --dport 22 -j ACCEPT 2>/dev/null
iptables -N LOGDROP
iptables -A LOGDROP -j DROP
iptables -A INPUT -p tcp --dport 22 -j ACCEPT
iptables -A INPUT -j LOGDROP
"""


def test_removing_what_is_not_there_changes_nothing_as_in_the_shell(kernel_ok):
    """The idempotent script idiom: deleting rules and chains that may not exist yet.  Each
    such command fails in sh and changes nothing; fwc warns and reads what sh leaves."""
    warnings: list = []
    ours = parse_iptables_script(IDEMPOTENT, "idem.sh", warnings=warnings)
    assert [w.loc.line for w in warnings] == [2, 3, 4, 5]
    ns = f"fwcid{os.getpid()}"
    netns.create(ns)
    try:
        netns.run(["sh", "-c", IDEMPOTENT], ns=ns)
        saved = netns.run(["iptables-save", "-t", "filter"], ns=ns).stdout
    finally:
        netns.delete(ns)
    theirs = parse_iptables_save(saved, "saved", "ip")
    def chains(rs):
        return {c.name: [(r.matches, r.verdict) for r in c.rules]
                for t in rs.tables for c in t.chains if c.rules}
    assert chains(ours) == chains(theirs) and len(chains(ours)["INPUT"]) == 2


# iptables reads options with getopt_long: a unique prefix of a long option is that option,
# among iptables' own, the loaded modules', the target's and the implicit protocol match's
ABBREVIATED = r"""iptables -A INPUT --proto tcp --dp 22 -m state --sta NEW -j ACCEPT
iptables -A INPUT -p tcp --tcp-f SYN,ACK SYN -m limit --limit 3/s --limit-b 7 -j LOG --log-pref "syn: "
iptables -A INPUT -p udp -m multiport --dpo 1000,2000 -m udp --sport 53 -j REJECT --reject-w icmp-admin-prohibited
iptables -A INPUT -p tcp -m multiport --dport 80,443 -j ACCEPT
iptables -t nat -A PREROUTING -p tcp --dport 80 -j REDIRECT --to-port 8080
iptables -t nat -A POSTROUTING -o eth0 -j SNAT --to-s 192.0.2.1 --random-f
"""


def test_abbreviated_long_options_read_as_iptables_reads_them(kernel_ok):
    ours = parse_iptables_script(ABBREVIATED, "abbrev.sh")
    ns = f"fwcab{os.getpid()}"
    netns.create(ns)
    try:
        netns.run(["sh", "-e", "-c", ABBREVIATED], ns=ns)
        saved = netns.run(["iptables-save"], ns=ns).stdout
    finally:
        netns.delete(ns)
    theirs = parse_iptables_save(saved, "saved", "ip")
    def rules(rs):
        return {(t.name, c.name): [(r.matches, r.statements, r.verdict) for r in c.rules]
                for t in rs.tables for c in t.chains if c.rules}
    assert rules(ours) == rules(theirs) and len(rules(ours)) == 3
