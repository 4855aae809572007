"""The command line: exit codes, located errors on stderr, nothing on stdout on failure."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from fwc.cli import main
from tests.corpus import REPO

ERROR_LINE = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): error: .+$")


def run_cli(args, capsys, stdin=None, monkeypatch=None):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_translate_to_iptables_example(capsys):
    code, out, err = run_cli(["translate", "--to", "iptables", str(REPO / "examples/host-firewall.sh")],
                             capsys)
    assert code == 0, err
    assert out.startswith("*filter\n:INPUT DROP [0:0]")
    assert "-A INPUT -p tcp -m multiport --dports 22,80,443 -j ACCEPT" in out


@pytest.mark.parametrize("content,code", [
    ("*filter\n-A INPUT -p tcp --dport 70000 -j ACCEPT\nCOMMIT\n", 2),
    ("*filter\n-A INPUT -m string --algo bm --string x -j DROP\nCOMMIT\n", 1),
    ("\x00\x01\x02binary", 2),
    ("", 2),
    ("table ip t { chain c { ip saddr " + "{" * 5000 + "1.2.3.4" + "}" * 5000 + " } }\n", 2),
    ('{"nftables": ' + "[" * 100000 + "]" * 100000 + "}\n", 2),  # deeper than json can read
])
def test_bad_input_is_located_nonzero_and_prints_nothing(tmp_path, capsys, content, code):
    f = tmp_path / "bad.rules"
    f.write_text(content)
    rc, out, err = run_cli(["translate", "--to", "iptables", str(f)], capsys)
    assert rc == code
    assert out == ""
    lines = err.strip().splitlines()
    assert lines and all(ERROR_LINE.match(line) for line in lines), err
    assert ERROR_LINE.match(lines[0]).group("file") == str(f)


def test_output_file_is_not_written_on_failure(tmp_path, capsys):
    f = tmp_path / "bad.rules"
    f.write_text("*filter\n-A INPUT -j ACCEPT\n-A INPUT -s 300.1.1.1 -j DROP\nCOMMIT\n")
    out_file = tmp_path / "out.rules"
    rc, _, _ = run_cli(["translate", "--to", "iptables", str(f), "-o", str(out_file)], capsys)
    assert rc == 2 and not out_file.exists()


def test_missing_file_and_usage_errors(capsys, tmp_path):
    rc, out, err = run_cli(["translate", str(tmp_path / "nope.rules")], capsys)
    assert rc == 2 and "nope.rules" in err and "error:" in err
    with pytest.raises(SystemExit) as ei:
        main(["translate", "--to", "klingon"])
    assert ei.value.code == 2


def test_endless_input_is_cut_off_with_an_error(tmp_path, capsys, monkeypatch):
    import fwc.frontends as F
    monkeypatch.setattr(F, "MAX_INPUT_BYTES", 64)
    f = tmp_path / "big.rules"
    f.write_text("*filter\n" + "-A INPUT -j ACCEPT\n" * 10 + "COMMIT\n")
    rc, out, err = run_cli(["translate", str(f)], capsys)
    assert rc == 2 and out == ""
    assert ERROR_LINE.match(err.strip()) and "larger than" in err
    f.write_text("*filter\n-A INPUT -j ACCEPT\nCOMMIT\n")  # under the cap: read whole
    rc, out, err = run_cli(["translate", str(f)], capsys)
    assert rc == 0, err


def test_python_dash_m_runs_and_never_tracebacks(tmp_path):
    f = tmp_path / "x.rules"
    f.write_text("*filter\n-A INPUT -j nowhere\nCOMMIT\n")
    p = subprocess.run([sys.executable, "-m", "fwc", "translate", "--to", "iptables", str(f)],
                       capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert f"{f}:2:" in p.stderr and "nowhere" in p.stderr


@pytest.mark.kernel
@pytest.mark.parametrize("example", ["host-firewall.rules", "nat-router.rules", "egress-server.rules"])
def test_check_validates_examples_with_libnftables(kernel_ok, capsys, example):
    rc, out, err = run_cli(["translate", "--check", str(REPO / "examples" / example)], capsys)
    assert rc == 0, err
    assert out.startswith("#!/usr/sbin/nft -f")


def test_drop_unsupported_warns_and_comments(tmp_path, capsys):
    f = tmp_path / "c.rules"
    f.write_text("*mangle\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -p udp --dport 68 "
                 "-j CHECKSUM --checksum-fill\n-A POSTROUTING -j ACCEPT\nCOMMIT\n")
    rc, out, err = run_cli(["translate", str(f)], capsys)
    assert rc == 1 and out == "" and f"{f}:3:1: error:" in err and "CHECKSUM" in err
    rc, out, err = run_cli(["translate", "--drop-unsupported", str(f)], capsys)
    assert rc == 0
    assert f"{f}:3:1: warning:" in err
    assert "# fwc: dropped unsupported rule" in out and "accept" in out


def test_two_families_need_output_prefix(tmp_path, capsys):
    v4 = tmp_path / "r.v4"
    v6 = tmp_path / "r.v6"
    v4.write_text("*filter\n:INPUT DROP [0:0]\n-A INPUT -s 192.0.2.0/24 -j ACCEPT\nCOMMIT\n")
    v6.write_text("*filter\n:INPUT DROP [0:0]\n-A INPUT -s 2001:db8::/32 -j ACCEPT\nCOMMIT\n")
    rc, out, err = run_cli(["translate", "--to", "iptables", str(v4), str(v6)], capsys)
    assert rc == 2 and "-o PREFIX" in err
    rc, out, err = run_cli(["translate", "--to", "iptables", str(v4), str(v6), "-o",
                            str(tmp_path / "out")], capsys)
    assert rc == 0
    assert "2001:db8::/32" in (tmp_path / "out.v6").read_text()
    assert "192.0.2.0/24" in (tmp_path / "out.v4").read_text()
    rc, out, err = run_cli(["translate", "--inet", str(v4), str(v6)], capsys)
    assert rc == 0 and "table inet filter" in out


def test_internal_error_is_one_line_not_a_traceback(monkeypatch, tmp_path, capsys):
    import fwc.cli

    def boom(args):
        raise ValueError("an invariant broke")
    path = tmp_path / "r.rules"
    path.write_text("*filter\nCOMMIT\n")
    args = fwc.cli.build_parser().parse_args(["translate", str(path)])
    args.func = boom  # stands for a bug anywhere below the command
    monkeypatch.setattr(fwc.cli, "build_parser", lambda: _FixedParser(args))
    monkeypatch.delenv("FWC_DEBUG", raising=False)
    assert main(["translate", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fwc: internal error: ValueError: an invariant broke")
    assert "Traceback" not in err and err.count("\n") == 1
    monkeypatch.setenv("FWC_DEBUG", "1")
    with pytest.raises(ValueError):
        main(["translate", str(path)])


class _FixedParser:
    def __init__(self, args):
        self.args = args

    def parse_args(self, argv):
        return self.args


def test_simulate_time_sets_the_clock_of_time_matches(tmp_path, capsys):
    f = tmp_path / "t.v4"
    f.write_text("*filter\n-A INPUT -p icmp -m time --weekdays Sa,Su --timestart 12:00 "
                 "-j REJECT\nCOMMIT\n")
    args = ["simulate", str(f), "--packet", "in icmp type 8"]
    code, out, _ = run_cli(args + ["--time", "2026-12-05T14:00"], capsys)  # a Saturday
    assert code == 0 and "REJECT" in out
    code, out, _ = run_cli(args + ["--time", "2026-12-05T11:59:59"], capsys)
    assert code == 0 and "ACCEPT" in out
    code, out, _ = run_cli(args + ["--time", str(1764943200)], capsys)  # 2025-12-05 14:00 (Fri)
    assert code == 0 and "ACCEPT" in out
    code, _, err = run_cli(args + ["--time", "2026-02-30T10:00"], capsys)
    assert code == 2 and "--time" in err


def test_drop_unsupported_also_drops_what_the_front_end_refuses(tmp_path, capsys):
    f = tmp_path / "c.v4"
    f.write_text("*filter\n-A INPUT -m rpfilter -j ACCEPT\n-A INPUT -p tcp --dport 22 "
                 "-j ACCEPT\nCOMMIT\n")
    code, out, err = run_cli(["translate", str(f)], capsys)
    assert code == 1 and out == "" and "c.v4:2:" in err and "reverse routes" in err
    code, out, err = run_cli(["translate", "--drop-unsupported", str(f)], capsys)
    assert code == 0 and "tcp dport 22 accept" in out
    assert "# fwc: dropped unsupported rule: -m rpfilter" in out and "c.v4:2:" in err


def test_simulate_random_draw_picks_the_numgen_element(tmp_path, capsys):
    f = tmp_path / "lb.nft"
    f.write_text("table ip t {\n chain a {\n  accept\n }\n chain b {\n  drop\n }\n"
                 " chain input {\n  type filter hook input priority filter;\n"
                 "  numgen random mod 2 vmap { 0 : goto a, 1 : goto b }\n }\n}\n")
    args = ["simulate", str(f), "--packet", "in udp :1 > :53"]
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and "ACCEPT" in out
    code, out, _ = run_cli(args + ["--random-draw", "3"], capsys)  # 3 mod 2 = 1: chain b
    assert code == 0 and "DROP" in out
    with pytest.raises(SystemExit) as e:  # argparse's usage error
        run_cli(args + ["--random-draw", "-1"], capsys)
    assert e.value.code == 2 and "--random-draw" in capsys.readouterr().err


def test_simulate_iface_describes_the_host(tmp_path, capsys):
    """Docker's DNAT: the new destination 172.17.0.2 is forwarded out of docker0 only when the
    simulated host has that interface (else the default route's, which FORWARD drops)."""
    f = tmp_path / "docker.nft"
    f.write_text("table ip nat {\n chain PREROUTING {\n  type nat hook prerouting priority dstnat;\n"
                 "  fib daddr type local tcp dport 8080 dnat to 172.17.0.2:80\n }\n}\n"
                 "table ip filter {\n chain FORWARD {\n  type filter hook forward priority filter;"
                 " policy drop;\n  oifname \"docker0\" tcp dport 80 accept\n }\n}\n")
    args = ["simulate", str(f), "--packet", "in tcp 198.51.100.7:40000 > 192.0.2.1:8080 flags S"]
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and "DROP" in out
    host = ["--iface", "eth0=192.0.2.1/24,2001:db8:f::1/64", "--iface", "docker0=172.17.0.1/16"]
    code, out, _ = run_cli(args + host, capsys)
    assert code == 0 and "ACCEPT" in out
    for bad in (["--iface", "eth0"], ["--iface", "eth0=10.0.0.1/40"],
                ["--iface", "eth0=10.0.0.1/8", "--iface", "eth0=10.0.0.2/8"],
                ["--default-route", "lo"], host + ["--default-route", "eth1"]):
        code, out, err = run_cli(args + bad, capsys)
        assert code == 2 and out == "" and "error:" in err, bad


def test_simulate_set_fills_ipsets_and_outside_filled_nft_sets(tmp_path, capsys):
    ipt = tmp_path / "ips.rules"
    ipt.write_text("*filter\n-A INPUT -m set --match-set banned src -j DROP\nCOMMIT\n")
    nft = tmp_path / "f2b.nft"
    nft.write_text("table inet f2b {\n set addr-set-sshd {\n  type ipv4_addr\n  flags timeout\n"
                   " }\n chain input {\n  type filter hook input priority filter - 1;\n"
                   "  ip saddr @addr-set-sshd reject\n }\n}\n")
    pkt = ["--packet", "in tcp 198.51.100.7:1 > 192.0.2.1:22 flags S"]
    for path, name, verdict in ((ipt, "banned", "DROP"), (nft, "addr-set-sshd", "REJECT")):
        code, out, _ = run_cli(["simulate", str(path)] + pkt, capsys)
        assert code == 0 and "ACCEPT" in out
        code, out, _ = run_cli(["simulate", str(path), "--set", f"{name}=198.51.100.0/24"] + pkt,
                               capsys)
        assert code == 0 and verdict in out, out
        code, out, err = run_cli(["simulate", str(path), "--set", f"{name}=not-an-address"] + pkt,
                                 capsys)
        assert (code, out) == (2, "") and "error:" in err
        code, out, err = run_cli(["simulate", str(path), "--set", "bannned=198.51.100.0/24"]
                                 + pkt, capsys)  # a misspelt name is not silently ignored
        assert (code, out) == (2, "") and f"its sets: {name}" in err, err


@pytest.mark.parametrize("name,why", [("a b", "letters"), ("", "letters"), ("table", "keyword"),
                                      ("x" * 256, "255")])
def test_table_option_refuses_names_nft_cannot_take(capsys, name, why):
    src = str(REPO / "examples/host-firewall.rules")
    code, out, err = run_cli(["translate", "--table", name, src], capsys)
    assert (code, out) == (2, "") and why in err, err


def test_table_option_takes_the_longest_name_and_only_for_nft(capsys):
    src = str(REPO / "examples/host-firewall.rules")
    code, out, err = run_cli(["translate", "--table", "x" * 255, src], capsys)
    assert code == 0 and f"table ip {'x' * 255} {{" in out
    code, out, err = run_cli(["translate", "--to", "iptables", "--table", "fw", src], capsys)
    assert (code, out) == (2, "") and "nft output only" in err


@pytest.mark.parametrize("command", [
    ["translate"], ["translate", "--from", "nft"], ["lint"], ["cost"], ["import"],
    ["simulate", "--packet", "in tcp 192.0.2.1:1000 > 192.0.2.2:22"],
    ["explain", "--packet", "in tcp 192.0.2.1:1000 > 192.0.2.2:22"],
])
@pytest.mark.parametrize("content", [b"\xff\xfe\x00binary\n", None])
def test_every_command_refuses_binary_or_missing_input_located(tmp_path, capsys, command, content):
    f = tmp_path / "in.rules"
    if content is not None:
        f.write_bytes(content)
    rc, out, err = run_cli([command[0], str(f), *command[1:]], capsys)
    assert rc == 2 and out == ""
    line = err.strip().splitlines()[0]
    m = ERROR_LINE.match(line)
    assert m and m.group("file") == str(f), err
    assert "internal error" not in err


@pytest.mark.parametrize("name,text", [
    ("bom.nft", "table ip filter {\n chain INPUT { type filter hook input priority 0; policy drop;"
                "\n  tcp dport 22 accept\n }\n}\n"),
    ("bom.rules", "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"),
    ("bom.policy", "input policy drop {\n  allow ssh\n}\n"),
])
def test_a_byte_order_mark_is_not_part_of_the_input(tmp_path, capsys, name, text):
    """A Windows editor's BOM: the file means what it means without one (it used to hide an
    nft file's first keyword, so the file was read as iptables and refused)."""
    reads_alike(tmp_path, capsys, name, text.encode(), b"\xef\xbb\xbf" + text.encode())


def reads_alike(tmp_path, capsys, name: str, plain_bytes: bytes, marked_bytes: bytes):
    """fwc's output and messages for the two files are the same (but for the file name)."""
    plain, marked = tmp_path / ("plain-" + name), tmp_path / name
    plain.write_bytes(plain_bytes)
    marked.write_bytes(marked_bytes)
    command = "compile" if name.endswith(".policy") else "translate"
    want = run_cli([command, str(plain)], capsys)
    assert want[0] == 0, want
    got = run_cli([command, str(marked)], capsys)
    assert got == tuple(x.replace(str(plain), str(marked)) if isinstance(x, str) else x
                        for x in want)


@pytest.mark.parametrize("name,body", [
    ("c.rules", b"*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"),
    ("c.sh", b"iptables -P INPUT DROP\niptables -A INPUT -p tcp --dport 22 -j ACCEPT\n"),
    ("c.nft", b"table ip filter {\n chain INPUT { type filter hook input priority 0; "
              b"policy drop;\n  tcp dport 22 accept\n }\n}\n"),
    ("c.policy", b"input policy drop {\n  allow ssh\n}\n"),
])
def test_a_latin1_comment_line_means_nothing_and_is_read(tmp_path, capsys, name, body):
    """A `# comment` line in another encoding (an author's name in Latin-1) means nothing in
    any format: the file reads as it does without the line (it was refused whole)."""
    reads_alike(tmp_path, capsys, name, b"# Jose\n" + body,
                b"# Jos\xe9 Mar\xeda, \xa9 2020\n" + body)


def test_a_latin1_byte_is_located_and_named(tmp_path, capsys):
    f = tmp_path / "lat.rules"
    f.write_bytes(b"*filter\n:INPUT DROP [0:0]\n-A INPUT -m comment --comment \"caf\xe9\" -j ACCEPT\n"
                  b"COMMIT\n")
    rc, out, err = run_cli(["translate", str(f)], capsys)
    assert (rc, out) == (2, "")
    assert err.startswith(f"{f}:3:35: error: input is not UTF-8 text (byte 0xe9"), err
    assert "Latin-1" in err


def test_output_targets_are_written_not_clobbered(tmp_path, capsys):
    """-o through a symlink writes its target; an existing file keeps its mode; a FIFO is
    written into, not replaced; several outputs are all written or none."""
    import os
    import stat
    import threading
    src = str(REPO / "examples" / "host-firewall.rules")
    real = tmp_path / "real.nft"
    real.write_text("old\n")
    os.chmod(real, 0o640)
    link = tmp_path / "link.nft"
    link.symlink_to(real)
    assert main(["translate", src, "-o", str(link)]) == 0
    assert link.is_symlink() and real.read_text().startswith("#!/usr/sbin/nft -f")
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o640
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    assert main(["translate", src, "-o", str(fifo)]) == 0
    reader.join(10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and "table ip filter" in got[0]
    dual = tmp_path / "dual.rules"
    dual.write_text("*filter\n:INPUT DROP [0:0]\n-4 -A INPUT -p icmp -j ACCEPT\n"
                    "-6 -A INPUT -p ipv6-icmp -j ACCEPT\nCOMMIT\n")
    (tmp_path / "pre.v6").mkdir()
    capsys.readouterr()
    assert main(["translate", str(dual), "--to", "iptables", "-o", str(tmp_path / "pre")]) == 2
    assert "pre.v6:0:0: error: cannot write output: it is a directory" in capsys.readouterr().err
    assert not (tmp_path / "pre.v4").exists()  # nothing written when one output cannot be


def test_a_full_stdout_is_an_error_not_a_traceback():
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "fwc", "translate",
                            str(REPO / "examples" / "host-firewall.rules")], stdout=full,
                           stderr=subprocess.PIPE, text=True)
    assert r.returncode == 2 and "cannot write output: No space left on device" in r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr


@pytest.mark.parametrize("args,needle", [
    (["simulate", "{ex}", "--iface", "lo=1.2.3.4/24", "--packet", "in tcp > :22"],
     "needs an interface besides lo"),
    (["simulate", "{ex}", "--default-route", "", "--packet", "in tcp > :22"],
     "not an interface of the simulated host"),
    (["cost", "{ex}", "--traffic", "est=nan,new=1"], "finite number"),
    (["cost", "{ex}", "--traffic", "est=1e400"], "finite number"),
])
def test_bad_option_values_are_usage_errors(args, needle, capsys):
    ex = str(REPO / "examples" / "host-firewall.rules")
    code, out, err = run_cli([a.replace("{ex}", ex) for a in args], capsys)
    assert (code, needle in err, "internal error" in err) == (2, True, False), err


@pytest.mark.parametrize("packet,needle", [
    ("in tcp > [::1", "bad address '[::1' (an IPv6 address with a port is written [ADDR]:PORT)"),
    ("in tcp [::1]x > ::2", "bad address '[::1]x'"),
    ("in tcp 2001:db8::1::80 > ::2", "written [ADDR]:PORT"),
    ("in tcp ::1 > ::2", None),  # a bare IPv6 address, no port: the default ports
    ("in tcp [::1]:22 > [::2]", None),
])
def test_packet_addresses_ipv6_bracketed_or_bare(packet, needle, capsys):
    """An unbalanced `[` was read as if closed (exit 0); `::1` was read as the port ':1'."""
    code, out, err = run_cli(["simulate", str(REPO / "examples" / "host-firewall.rules"),
                              "--packet", packet], capsys)
    if needle is None:
        assert code == 0 and out.count("packet") == 1, err
    else:
        assert (code, out, needle in err) == (2, "", True), err


def test_cases_and_policies_are_read_as_rulesets_are(tmp_path, capsys, monkeypatch):
    """A byte-order mark is skipped (it was refused), a byte that is not UTF-8 is located at
    its line and column (it was 0:0), and `--cases -` reads standard input."""
    import io
    ex = str(REPO / "examples" / "host-firewall.rules")
    bom = tmp_path / "bom.json"
    bom.write_bytes(b'\xef\xbb\xbf[{"probe": {"dport": 22}}]\n')
    code, out, err = run_cli(["simulate", ex, "--cases", str(bom)], capsys)
    assert code == 0 and "ACCEPT" in out, err
    latin = tmp_path / "l.json"
    latin.write_bytes(b'[\n {"name": "caf\xe9", "probe": {}}]\n')
    code, out, err = run_cli(["simulate", ex, "--cases", str(latin)], capsys)
    assert (code, out, err.startswith(f"{latin}:2:15: error: input is not UTF-8")) == (2, "", True), err
    pol = tmp_path / "l.policy"
    pol.write_bytes(b"host a = 192.0.2.1\nhost caf\xe9 = 192.0.2.2\n")
    code, out, err = run_cli(["compile", str(pol)], capsys)
    assert (code, out, err.startswith(f"{pol}:2:9: error: input is not UTF-8")) == (2, "", True), err
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b'[{"probe": {"dport": 22}}]')))
    code, out, err = run_cli(["simulate", ex, "--cases", "-"], capsys)
    assert code == 0 and "ACCEPT" in out, err
    code, out, err = run_cli(["simulate", "-", "--cases", "-"], capsys)
    assert (code, out, "can be read only once" in err) == (2, "", True), err


@pytest.mark.parametrize("args,needle", [
    (["simulate", "{ex}", "--time", "99999999999999999999", "--packet", "in tcp > :22"],
     "out of range"),
    (["simulate", "{ex}", "--time", "9999-01-01T00:00", "--packet", "in tcp > :22"],
     "out of range"),
    (["cost", "{ex}", "--traffic", "est=50,est=50"], "traffic class 'est' given twice"),
    (["translate", "-o", "", "{ex}"], "argument -o/--output: empty path"),
    (["compile", "-o", "", str(REPO / "examples" / "egress-server.policy")], "empty path"),
])
def test_option_values_fwc_used_to_take_silently_are_usage_errors(args, needle, capsys):
    ex = str(REPO / "examples" / "host-firewall.rules")
    try:
        code, out, err = run_cli([a.replace("{ex}", ex) for a in args], capsys)
    except SystemExit as e:  # (argparse's own usage errors)
        code, (out, err) = e.code, capsys.readouterr()
    assert (code, out, needle in err) == (2, "", True), err


@pytest.mark.parametrize("value", ["eth\u0000x", "a\u0001", "eth0\u007f"])
def test_a_control_character_in_an_interface_name_is_refused(value, tmp_path, capsys):
    cases = tmp_path / "c.json"
    cases.write_text(json.dumps([{"probe": {"iif": value}}]))  # (\u0000 in the JSON text)
    code, out, err = run_cli(["simulate", str(REPO / "examples" / "host-firewall.rules"),
                              "--cases", str(cases)], capsys)
    assert (code, out, "iif must be an interface name" in err) == (2, "", True), err


def test_a_bad_case_is_located_at_its_object(tmp_path, capsys):
    cases = tmp_path / "cases.json"
    cases.write_text('[\n  {"probe": {"dport": 22}},\n  {"name": "x",\n   "probe": {"dport": 70000}}\n]\n')
    code, out, err = run_cli(["simulate", str(REPO / "examples" / "host-firewall.rules"),
                              "--cases", str(cases)], capsys)
    assert code == 2 and f"{cases}:3:3: error: case 1 probe: bad port 70000" in err
    assert out == ""  # (no partial table of results)


@pytest.mark.parametrize("case,needle", [
    ('{"probe": {"proto": "icmp", "dport": 22}}', "dport: icmp has no ports"),
    ('{"probe": {"proto": "udp", "flags": "S"}}', "flags: udp has no TCP flags"),
    ('{"probe": {"proto": "tcp", "icmp_type": 3}}', "icmp_type: tcp is not ICMP"),
    ('{"setup": [{"proto": "udp"}], "probe": {"proto": "udp", "quote": 0}}',
     "quote: udp is not ICMP"),
    ('{"probe": {}, "setpu": []}', "case field(s) setpu mean nothing"),
    ('{"probe": {}, "expect": {"verdict": "DROP"}}', "case field(s) expect mean nothing"),
])
def test_a_case_field_that_cannot_apply_is_a_located_warning(case, needle, tmp_path, capsys):
    """Simulated without it, the packet may not be the one that was asked about: a warning,
    and the case runs (a file of recorded cases may carry their expected results)."""
    cases = tmp_path / "cases.json"
    cases.write_text(f"[\n  {case}\n]\n")
    code, out, err = run_cli(["simulate", str(REPO / "examples" / "host-firewall.rules"),
                              "--cases", str(cases)], capsys)
    assert (code, f"{cases}:2:3: warning: case 0" in err, needle in err, "case0" in out) == \
        (0, True, True, True), err


def test_an_interface_name_with_a_blank_is_an_error(tmp_path, capsys):
    cases = tmp_path / "cases.json"
    cases.write_text('[{"probe": {"iif": "eth 0"}}]')
    code, out, err = run_cli(["simulate", str(REPO / "examples" / "host-firewall.rules"),
                              "--cases", str(cases)], capsys)
    assert code == 2 and "iif must be an interface name" in err and out == ""


@pytest.mark.parametrize("packet,needle", [
    ("in icmp > :22", "<packet>:1:1: warning: --packet: dport: icmp has no ports"),
    ("in udp > :53 flags S", "<packet>:1:1: warning: --packet: flags: udp has no TCP flags"),
])
def test_a_packet_field_that_cannot_apply_is_a_warning(packet, needle, capsys):
    code, out, err = run_cli(["simulate", str(REPO / "examples" / "host-firewall.rules"),
                              "--packet", packet], capsys)
    assert (code, needle in err, "packet" in out) == (0, True, True), err


def test_a_cases_file_that_is_no_list_is_located_at_its_start(tmp_path, capsys):
    cases = tmp_path / "cases.json"
    cases.write_text('{}')
    code, out, err = run_cli(["simulate", str(REPO / "examples" / "host-firewall.rules"),
                              "--cases", str(cases)], capsys)
    assert code == 2 and err.startswith(f"{cases}:1:1: error: "), err
    cases.write_text('{"cases": [{"probe": {}}], "note": 1}')
    code, out, err = run_cli(["simulate", str(REPO / "examples" / "host-firewall.rules"),
                              "--cases", str(cases)], capsys)
    assert code == 0 and err.startswith(f"{cases}:1:1: warning: "), err


def test_output_to_dev_stdout_on_a_pipe():
    """/dev/stdout on a pipe resolves to no real path (pipe:[N]): it is written into."""
    import subprocess
    import sys
    src = str(REPO / "examples" / "host-firewall.rules")
    p = subprocess.run([sys.executable, "-m", "fwc", "translate", src, "-o", "/dev/stdout"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "table ip filter" in p.stdout, p.stderr
