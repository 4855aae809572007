"""A script of iptables commands means what the shell makes of it.  The script below uses the
shell features fwc reads (`;` and `&&` between commands, unquoted variables split into words,
an empty one vanishing, `-4`, options before the command, bundled list flags `-nvL`); it is run
with sh in a throw-away namespace, and fwc's reading of the script must equal its reading of
what iptables-save then prints."""

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
    script.write_text(SCRIPT.replace(">/dev/null", ""))  # fwc refuses redirections
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
