"""iptables-restore splits a rule line its own way, not the shell's: only "..." quotes, a
backslash inside them takes the next character, the closing quote ends the word, and outside
quotes ' \\ and # are ordinary characters.  The kernel's iptables-restore is the judge: for each
argument below, fwc must refuse the line exactly when iptables-restore does, and otherwise read
the same comment and log prefix that iptables-save then prints."""

from __future__ import annotations

import pytest

from fwc.errors import ErrorGroup, FwcError
from fwc.frontends.iptables import parse_iptables_save
from fwc.testing import netns

pytestmark = pytest.mark.kernel

ARGS = ["'ab'", "it's", '"a\\tb"', '"ab"cd', "a\\ b", "x -j ACCEPT #x", '""', 'a"b c"d',
        '"a\\"b"', '"a\\\\b"', "a#b", '"Bob\\\'s laptop"', '"x y"', 'ab"c d"', '"a b"c',
        "'a b'", "a\\b", '"#x"', '"tab\there"', '""x']


def _file(arg: str, target: str) -> str:
    return f"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment {arg} {target}\nCOMMIT\n"


def _fwc(text: str):
    try:
        rs = parse_iptables_save(text, "q.rules", "ip")
    except (FwcError, ErrorGroup):
        return None
    return [r for t in rs.tables for c in t.chains for r in c.rules]


@pytest.mark.parametrize("target", ["-j ACCEPT", "-j LOG --log-prefix {arg}"])
def test_fwc_splits_restore_lines_like_iptables_restore(kernel_ok, target):
    ns = "fwc-quote"
    netns.delete(ns)
    netns.create(ns)
    try:
        for arg in ARGS:
            text = _file(arg, target.format(arg=arg))
            loaded = netns.run(["iptables-restore"], input=text, check=False, ns=ns)
            ours = _fwc(text)
            if loaded.returncode != 0:
                assert ours is None, f"iptables-restore refuses {arg!r}, fwc reads {ours}"
                continue
            assert ours is not None, f"iptables-restore reads {arg!r}, fwc refuses it"
            saved = netns.run(["iptables-save", "-t", "filter"], ns=ns).stdout
            assert ours == _fwc(saved), f"{arg!r}: fwc reads {ours}, the kernel saved {saved}"
    finally:
        netns.delete(ns)


SET31 = "s" * 31
STRING_OPTIONS = [
    '-j LOG --log-prefix ""', "-j LOG --log-prefix x", '-j NFLOG --nflog-prefix ""',
    "-j NFLOG --nflog-prefix x", '-m hashlimit --hashlimit-upto 1/s --hashlimit-name "" -j ACCEPT',
    "-m hashlimit --hashlimit-upto 1/s --hashlimit-name h -j ACCEPT",
    f"-m set --match-set {SET31} src -j ACCEPT", f"-m set --match-set {SET31}s src -j ACCEPT",
    '-m set --match-set "" src -j ACCEPT', f"-j SET --add-set {SET31} src",
    f"-j SET --del-set {SET31}s src", '-m comment --comment "" -j ACCEPT',
]


def test_empty_and_overlong_names_are_refused_like_iptables_restore(kernel_ok):
    ns = "fwc-strings"
    netns.delete(ns)
    netns.create(ns)
    try:
        netns.run(["ipset", "create", SET31, "hash:ip"], ns=ns)
        for line in STRING_OPTIONS:
            text = f"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT {line}\nCOMMIT\n"
            loaded = netns.run(["iptables-restore"], input=text, check=False, ns=ns)
            ours = _fwc(text)
            assert (loaded.returncode == 0) == (ours is not None), \
                f"{line}: iptables-restore {loaded.returncode} {loaded.stderr.strip()!r}, fwc {ours}"
            netns.run(["iptables", "-F", "INPUT"], ns=ns)
    finally:
        netns.delete(ns)


LONG_TEXTS = ([f"-j LOG --log-prefix {'p' * n}" for n in (29, 30, 64)]
              + [f"-j NFLOG --nflog-prefix {'n' * n}" for n in (63, 64, 127, 128, 200)]
              + [f"-m comment --comment {'c' * n} -j ACCEPT" for n in (128, 255, 256, 300)])


def test_overlong_prefixes_and_comments_are_read_as_iptables_restore_loads_them(kernel_ok):
    """iptables-restore 1.8.9 (nf_tables) cuts a LOG prefix to 29 bytes and an NFLOG prefix to
    127 without a word; fwc must read what the kernel then holds (as iptables-save shows it)."""
    ns = "fwc-long"
    netns.delete(ns)
    netns.create(ns)
    try:
        for line in LONG_TEXTS:
            text = f"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT {line}\nCOMMIT\n"
            loaded = netns.run(["iptables-restore"], input=text, check=False, ns=ns)
            ours = _fwc(text)
            assert (loaded.returncode == 0) == (ours is not None), (line[:30], loaded.stderr)
            if ours is not None:
                saved = netns.run(["iptables-save", "-t", "filter"], ns=ns).stdout
                assert ours == _fwc(saved), f"{line[:40]}: fwc reads {ours}, the kernel saved {saved}"
            netns.run(["iptables", "-F", "INPUT"], ns=ns)
    finally:
        netns.delete(ns)
