"""The real-kernel harness: what Linux netfilter really does with a ruleset and a case.

Topology (all namespaces are created here and deleted on every exit path):

    peer0 ns [veth]----[eth0] fw ns [eth1]----[veth] peer1 ns

The fw namespace holds the ruleset.  Frames are written and read on the peers with AF_PACKET
sockets; locally delivered packets are seen with raw IP sockets inside the fw namespace.
All sockets are opened by this process through setns(), so no helper process is needed.

Verdicts:
  in   ACCEPT: a raw socket in the fw ns got the packet (it only does after LOCAL_IN accepted it)
  fwd  ACCEPT: the packet came out on the peer of the outgoing interface
  out  ACCEPT: the packet came out on the peer; sendto() failing with EPERM means netfilter dropped it
  (a fwd or out packet that a destination NAT such as REDIRECT made local is ACCEPT when the raw
  socket gets it, as for `in`: the simulator too says where it went, not whether a server listens)
  REJECT: netfilter generated a TCP RST / ICMP error answering exactly this packet (copied to
          the harness over NFLOG by the observer table before any filter, so an OUTPUT policy
          that drops it still reads REJECT; late errors about earlier packets do not count)
  DROP: none of these.

The ct state of every packet is counted by the observer table `inet fwc_observe`, whose
chains sit at priority -180 (after conntrack at -200, before mangle -150 and filter 0).
"""

from __future__ import annotations

import atexit
import errno
import ipaddress
import itertools
import os
import select
import signal
import socket
import struct
import subprocess
import threading
import time
from typing import Iterable, Optional

from fwc.packet import Case, CaseResult, Packet
from fwc.testing import netns, nflog, wire

OBSERVE_TABLE = "fwc_observe"
PROBE_MARK = 0x4B480001  # marks packets this harness sends from the fw ns (cleared at once)
REJECT_LOG_GROUP = 0xFC0F  # NFLOG group of the observer's rejection copies (per namespace)
REJECT_LOG_PREFIX = "fwc-reject"
CT_STATES = ("new", "established", "related", "invalid", "untracked")
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_IPV6_HDRINCL = 36  # IPV6_HDRINCL
SENTINEL_TYPE = struct.pack("!H", wire.ETH_P_SENTINEL)
IPV6_FLOWINFO = 11  # linux/in6.h: deliver the flow information with each datagram

# per interface: (IPv4 address/len, IPv4 routes, IPv4 gateway, IPv6 address/len, IPv6 routes)
IFACE_PLAN = {
    "eth0": ("192.0.2.1/24", ("198.51.100.0/24",), "192.0.2.2",
             "2001:db8:f::1/64", ("2001:db8:a::/64",)),
    "eth1": ("203.0.113.1/24", (), "203.0.113.254", "2001:db8:b::1/64", ()),
}
IPV6_GATEWAY = "fe80::2"


def sim_options(ifaces=("eth0", "eth1"), **more):
    """SimOptions describing the harness's host (addresses by position, default route, the
    kernel's jiffies and HZ), so the simulator and the kernel run the same host."""
    from fwc.backends.simulate import SimOptions

    clock = kernel_clock()
    if clock is not None:
        more = {"jiffies": clock[0], "hz": clock[1], **more}
    return SimOptions(interfaces=sim_interfaces(ifaces), default_route=ifaces[0], **more)


def kernel_clock() -> Optional[tuple[int, int]]:
    """(32-bit jiffies now, HZ) of the running kernel, or None when they cannot be read.
    jiffies from /proc/timer_list; HZ from the kernel config, else from jiffies and the uptime
    (jiffies start at -300 s worth of ticks, INITIAL_JIFFIES)."""
    try:
        with open("/proc/timer_list") as f:
            jiffies = next(int(line.split()[1]) for line in f if line.startswith("jiffies:"))
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    hz = _config_hz()
    if hz is None and abs(uptime - 300) > 10:
        guess = (jiffies - 2**32) / (uptime - 300)
        hz = min((100, 250, 300, 1000), key=lambda h: abs(h - guess))
    return (jiffies & 0xFFFFFFFF, hz) if hz else None


def _config_hz() -> Optional[int]:
    import gzip

    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            for line in f:
                if line.startswith("CONFIG_HZ="):
                    return int(line.split("=")[1])
    except (OSError, ValueError):
        pass
    return None


def sim_interfaces(ifaces=("eth0", "eth1")) -> dict:
    """The harness's addresses per interface in `SimOptions.interfaces` form (by position)."""
    plans = list(IFACE_PLAN.values())
    out = {"lo": ("127.0.0.1/8", "::1/128")}
    for i, name in enumerate(ifaces):
        out[name] = tuple(a for a in (plans[i][0], plans[i][3]) if a) if i < 2 else ()
    return out


class KernelError(RuntimeError):
    """Loading a ruleset or preparing the namespaces failed; the message holds the tool's stderr."""


def kernel_available() -> tuple[bool, str]:
    """(True, "") when this process can build namespaces, else (False, why not)."""
    if os.geteuid() != 0:
        return False, "the kernel harness needs root (network namespaces, raw sockets)"
    ok, why = netns.ip_netns_usable()
    if not ok:
        return False, why
    for tool in ("nft", "iptables-restore", "ip6tables-restore"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            return False, f"`{tool}` is not installed"
    try:
        import nftables  # noqa: F401  (python3-nftables, libnftables bindings)
    except ImportError:
        return False, "the python3-nftables bindings are not importable"
    return True, ""


def kernel_or_skip() -> None:
    """For tests: skip when the harness cannot run here, but fail in CI (env CI=true)."""
    import pytest

    ok, why = kernel_available()
    if ok:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"kernel tests must run in CI but cannot: {why}", pytrace=False)
    pytest.skip(f"kernel harness unavailable: {why}")


# --- cleanup on every exit path -------------------------------------------------------------

_live: set["KernelHarness"] = set()
_live_lock = threading.Lock()
_previous_sigterm = None


def _cleanup_all() -> None:
    with _live_lock:
        harnesses = list(_live)
    for h in harnesses:
        h.close()


def _on_sigterm(signum, frame):
    _cleanup_all()
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        raise SystemExit(128 + signum)
    else:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        raise SystemExit(128 + signum)


def _install_sigterm() -> None:
    global _previous_sigterm
    if threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGTERM)
    if current is not _on_sigterm:
        _previous_sigterm = current
        signal.signal(signal.SIGTERM, _on_sigterm)


atexit.register(_cleanup_all)
_counter = itertools.count()


# --- the observer table ----------------------------------------------------------------------

def observer_ruleset() -> str:
    """nft text of `inet fwc_observe`: ct state counters and rejection counters."""
    counters = [f"pre_{s}" for s in CT_STATES] + [f"out_{s}" for s in CT_STATES]
    lines = [f"table inet {OBSERVE_TABLE} {{"]
    lines += [f"  counter {c} {{ }}" for c in counters]
    reject_matches = (
        "tcp flags & rst == rst",
        "icmp type { destination-unreachable, time-exceeded, parameter-problem }",
        "icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem }",
    )
    # Before everything (also before raw -300 and conntrack -200) on output: the harness's own
    # packets carry PROBE_MARK; clear it so the ruleset never sees it.  Every other RST / ICMP
    # error is copied to the harness over NFLOG: netfilter REJECT made it, the fw stack answered
    # an accepted probe (the harness decides ACCEPT before it looks at these), or it is a late
    # error about an earlier packet (the harness only counts what answers the probe itself).  A stack RST has no
    # conntrack entry attached yet (REJECT's RST has one): drop it, or it would close the flow
    # the case is building, where a real server would have answered.
    lines.append("  chain first_out { type filter hook output priority -400; policy accept;")
    lines.append(f"    meta mark {PROBE_MARK:#x} meta mark set 0x0 return")
    for m in reject_matches:
        lines.append(f'    {m} log prefix "{REJECT_LOG_PREFIX}" group {REJECT_LOG_GROUP} snaplen 512')
    lines.append("    tcp flags & rst == rst ct state invalid drop")
    lines.append("  }")
    for chain, hook, dev, prefix in (("pre", "prerouting", "iifname", "pre"),
                                     ("out", "output", "oifname", "out")):
        lines.append(f"  chain {chain} {{ type filter hook {hook} priority -180; policy accept;")
        lines.append(f'    {dev} "lo" return')
        lines.append("    ip6 daddr ff00::/8 return")  # MLD/ND noise of the fw's own links
        for s in CT_STATES:
            lines.append(f'    ct state {s} counter name "{prefix}_{s}" return')
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _parse_counters(data: dict) -> dict[str, int]:
    values = {}
    for item in data.get("nftables", []):
        c = item.get("counter")
        if c:
            values[c["name"]] = c["packets"]
    return values


# --- the harness ------------------------------------------------------------------------------

class KernelHarness:
    """Namespaces + sockets for running cases against the real kernel.  Use as a context manager."""

    def __init__(self, ifaces=("eth0", "eth1"), tcp_loose: bool = True,
                 drop_timeout: float = 0.02, grace: float = 0.001):
        self.ifaces = tuple(ifaces)
        self.tcp_loose = tcp_loose
        self.drop_timeout = drop_timeout  # give up waiting for a sign of life after this long
        self.grace = grace  # after the ordering sentinel arrived, wait this much longer
        # seconds to wait before each packet: nf_conncount (connlimit, ct count) keeps a stale
        # entry added by another CPU for 2 jiffies; real connections are further apart
        self.packet_gap = 0.0
        prefix = f"kh{os.getpid()}x{next(_counter)}"
        self.fw = prefix + "fw"
        self.peers = {name: f"{prefix}p{i}" for i, name in enumerate(self.ifaces)}
        self._socks: list[socket.socket] = []
        self._peer_sock: dict[str, socket.socket] = {}
        self._fw_sentinel_sock: dict[str, socket.socket] = {}
        self._raw_in: dict[tuple[int, int], socket.socket] = {}
        self._raw_out: dict[int, socket.socket] = {}
        self._reject_log: Optional[nflog.NflogListener] = None
        self._mac: dict[str, bytes] = {}
        self._peer_mac: dict[str, bytes] = {}
        self._local_addrs: set = set()  # the interfaces' own addresses
        # made local for cases: IPv4 address -> devices (for the running case only), IPv6
        # address -> None (for good)
        self._case_addrs: dict = {}
        self._maybe_queued = False  # a packet of the last case may wait for a neighbour
        self._neighbours: set = set()
        self._ident = 0
        self._last_seen: Optional[bytes] = None
        self.last_frames: list[bytes] = []
        self._open = False

    # -- lifecycle

    def __enter__(self) -> "KernelHarness":
        ok, why = kernel_available()
        if not ok:
            raise KernelError(why)
        _install_sigterm()
        with _live_lock:
            _live.add(self)
        self._open = True
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close sockets and delete the namespaces (idempotent, never raises)."""
        with _live_lock:
            _live.discard(self)
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass
        self._socks.clear()
        if self._reject_log is not None:
            self._reject_log.close()
            self._reject_log = None
        for name in [self.fw, *self.peers.values()]:
            netns.delete(name)
        self._open = False

    def namespaces(self) -> list[str]:
        return [self.fw, *self.peers.values()]

    def _build(self) -> None:
        for name in self.namespaces():
            netns.create(name)
        with netns.entered(self.fw):
            for key in ("net.ipv6.conf.default.accept_dad", "net.ipv6.conf.all.accept_dad"):
                netns.write_sysctl(key, "0")
            # a packet routed back out of its incoming interface would draw an ICMP redirect,
            # which reads like a REJECT and is rate-limited per peer (so not even repeatable)
            for key in ("net.ipv4.conf.all.send_redirects", "net.ipv4.conf.default.send_redirects"):
                netns.write_sysctl(key, "0")
        for name in self.peers.values():
            with netns.entered(name):  # peers only carry frames: no IPv6 chatter (MLD, RS, DAD)
                netns.write_sysctl("net.ipv6.conf.all.disable_ipv6", "1")
                netns.write_sysctl("net.ipv6.conf.default.disable_ipv6", "1")
        batch = []
        for ifname, peer in self.peers.items():
            batch.append(f"link add {ifname} type veth peer name veth netns {peer}")
        self._ip_batch(self.fw, batch)
        for peer in self.peers.values():
            self._ip_batch(peer, ["link set veth up"])
        self._ip_batch(self.fw, ["link set lo up"] + [f"link set {i} up" for i in self.ifaces])
        for ifname, peer in self.peers.items():
            self._mac[ifname] = self._read_mac(self.fw, ifname)
            self._peer_mac[ifname] = self._read_mac(peer, "veth")
        self._configure_fw()
        self._open_sockets()
        self.load_nft("")

    def _ip_batch(self, ns: str, commands: list[str]) -> None:
        try:
            netns.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(commands) + "\n")
        except netns.NetnsError as e:
            raise KernelError(str(e)) from None

    def _read_mac(self, ns: str, ifname: str) -> bytes:
        out = netns.run(["ip", "-n", ns, "-o", "link", "show", ifname]).stdout
        mac = out.split("link/ether ")[1].split()[0]
        return bytes.fromhex(mac.replace(":", ""))

    def _configure_fw(self) -> None:
        cmds = []
        for ifname in self.ifaces:
            plan = self._plan(ifname)
            mac = ":".join(f"{b:02x}" for b in self._peer_mac[ifname])
            cmds.append(f"neigh replace {IPV6_GATEWAY} lladdr {mac} dev {ifname} nud permanent")
            if plan is None:
                continue
            v4, routes4, gw4, v6, routes6 = plan
            if v4:
                # brd +: the subnet broadcast, as network managers set it (the netbios-ns
                # helper finds the subnet by it)
                cmds.append(f"addr add {v4} brd + dev {ifname}")
                self._local_addrs.add(ipaddress.ip_interface(v4).ip)
            if v6:
                cmds.append(f"addr add {v6} dev {ifname} nodad")
                self._local_addrs.add(ipaddress.ip_interface(v6).ip)
            cmds.append(f"neigh replace {gw4} lladdr {mac} dev {ifname} nud permanent")
            for r in routes4:
                cmds.append(f"route add {r} via {gw4} dev {ifname} onlink")
            for r in routes6:
                cmds.append(f"route add {r} via {IPV6_GATEWAY} dev {ifname}")
            if ifname == self.ifaces[0]:
                cmds.append(f"route add default via {gw4} dev {ifname} onlink")
                cmds.append(f"route add default via {IPV6_GATEWAY} dev {ifname}")
        self._ip_batch(self.fw, cmds)
        with netns.entered(self.fw):
            settings = {
                "net.ipv4.ip_forward": "1",
                "net.ipv6.conf.all.forwarding": "1",
                "net.ipv4.conf.all.rp_filter": "0",
                "net.ipv4.conf.default.rp_filter": "0",
                # REJECT sends ICMP errors through icmp_send(): no rate limit, or a burst of
                # rejected probes would read as DROP
                "net.ipv4.icmp_ratelimit": "0",
                "net.ipv4.icmp_ratemask": "0",
                "net.ipv4.icmp_msgs_per_sec": "100000000",
                "net.ipv4.icmp_msgs_burst": "100000000",
                "net.ipv6.icmp.ratelimit": "0",
            }
            for ifname in self.ifaces:
                settings[f"net/ipv4/conf/{ifname}/rp_filter"] = "0"
            for key, value in settings.items():
                netns.write_sysctl(key, value)
            try:
                netns.write_sysctl("net.ipv6.icmp.ratemask", "")
            except OSError:
                pass
            netns.write_sysctl("net.netfilter.nf_conntrack_tcp_loose", "1" if self.tcp_loose else "0")

    def _track(self, s: socket.socket) -> socket.socket:
        self._socks.append(s)
        s.setblocking(False)
        return s

    def _open_sockets(self) -> None:
        for ifname, peer in self.peers.items():
            with netns.entered(peer):
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                s.bind(("veth", 0))
                self._peer_sock[ifname] = self._track(s)
            with netns.entered(self.fw):
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(wire.ETH_P_SENTINEL))
                s.bind((ifname, wire.ETH_P_SENTINEL))
                self._fw_sentinel_sock[ifname] = self._track(s)
        with netns.entered(self.fw):
            s4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
            s6.setsockopt(socket.IPPROTO_IPV6, SOL_IPV6_HDRINCL, 1)
            for s in (s4, s6):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, PROBE_MARK)
            s4.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)  # out probes to x.y.z.255
            self._raw_out = {4: self._track(s4), 6: self._track(s6)}
            try:
                self._reject_log = nflog.NflogListener(REJECT_LOG_GROUP)
            except (OSError, nflog.NflogError) as e:
                raise KernelError(f"cannot listen to NFLOG in the fw namespace: {e}") from None

    def _raw_in_sock(self, l3: int, proto: int) -> socket.socket:
        key = (l3, proto)
        if key not in self._raw_in:
            with netns.entered(self.fw):
                family = socket.AF_INET if l3 == 4 else socket.AF_INET6
                s = socket.socket(family, socket.SOCK_RAW, proto)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                if l3 == 6:  # the flow label (the probe's tag) comes as ancillary data
                    s.setsockopt(socket.IPPROTO_IPV6, IPV6_FLOWINFO, 1)
                self._raw_in[key] = self._track(s)
        return self._raw_in[key]

    # -- rulesets

    def exec(self, *argv: str, input: Optional[str] = None) -> subprocess.CompletedProcess:
        """Run a command inside the fw namespace (no check on the exit status)."""
        return netns.run(list(argv), input=input, check=False, ns=self.fw)

    def _must(self, what: str, *argv: str, input: Optional[str] = None) -> None:
        proc = self.exec(*argv, input=input)
        if proc.returncode != 0:
            raise KernelError(f"{what} failed: {proc.stderr.strip() or proc.stdout.strip()}")

    def _finish_load(self) -> None:
        self._must("loading the observer table", "nft", "-f", "-", input=observer_ruleset())
        with netns.entered(self.fw):
            netns.write_sysctl("net.netfilter.nf_conntrack_tcp_loose", "1" if self.tcp_loose else "0")

    def load_nft(self, text: str) -> None:
        """Replace the fw ruleset with nft text (`flush ruleset` first)."""
        self._must("nft flush ruleset", "nft", "flush", "ruleset")
        if text.strip():
            self._must("nft -f (ruleset)", "nft", "-f", "-", input=text)
        self._finish_load()

    def load_iptables(self, v4: Optional[str] = None, v6: Optional[str] = None) -> None:
        """Replace the fw ruleset with iptables-restore / ip6tables-restore text."""
        self._must("nft flush ruleset", "nft", "flush", "ruleset")
        if v4 is not None and v4.strip():
            self._must("iptables-restore", "iptables-restore", input=v4)
        if v6 is not None and v6.strip():
            self._must("ip6tables-restore", "ip6tables-restore", input=v6)
        self._finish_load()

    def nft_list(self) -> str:
        return self.exec("nft", "list", "ruleset").stdout

    def _nft_json(self, command: str) -> dict:
        # a fresh context per call: libnftables 1.0.6 answers a repeated `reset counters` from
        # its cache (zeros) while the ruleset generation is unchanged
        import nftables
        with netns.entered(self.fw):
            nft = nftables.Nftables()
        nft.set_json_output(True)
        rc, out, err = nft.cmd(command)
        if rc != 0:
            raise KernelError(f"nft {command} failed: {err.strip()}")
        import json
        return json.loads(out) if out.strip() else {}

    def _reset_counters(self) -> dict[str, int]:
        return _parse_counters(self._nft_json(f"reset counters table inet {OBSERVE_TABLE}"))

    def clear_recent_lists(self) -> None:
        """Empty every xt_recent list (iptables -m recent) of the fw ns: they outlive conntrack
        flushes, so one case's hits would count in the next."""
        with netns.entered(self.fw):
            folder = "/proc/thread-self/net/xt_recent"
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                return
            for name in names:
                with open(os.path.join(folder, name), "w") as f:
                    f.write("/\n")

    def flush_conntrack(self) -> None:
        """Empty the fw conntrack table (ctnetlink IPCTNL_MSG_CT_DELETE without a tuple)."""
        with netns.entered(self.fw):
            nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
        try:
            nl.bind((0, 0))
            for family in (socket.AF_INET, socket.AF_INET6):
                # nlmsghdr(len, type=CTNETLINK<<8|DELETE, flags=REQUEST|ACK) + nfgenmsg
                msg = struct.pack("=IHHII", 20, (1 << 8) | 2, 0x1 | 0x4, 1, 0) + \
                    struct.pack("=BBH", family, 0, 0)
                nl.send(msg)
                reply = nl.recv(4096)
                err = struct.unpack_from("=i", reply, 16)[0]
                if err not in (0, -errno.ENOENT):
                    raise KernelError(f"conntrack flush failed: {os.strerror(-err)}")
        finally:
            nl.close()

    # -- running cases

    def prepare(self, cases: Iterable[Case]) -> None:
        """Before any case runs: give every on-link address the cases name a neighbour, and
        make every IPv6 `in` destination / `out` source local (IPv6 addresses stay: adding and
        deleting them between cases made about 1 in 100 packets to them vanish)."""
        pkts = [pkt for case in cases for pkt in (*case.setup, case.probe)]
        for pkt in pkts:
            self._prepare_addresses(pkt)
        own = self._own_addresses(pkts)
        self._sync_addresses({a: d for a, d in own.items() if a.version == 6}, drop_v4=False)

    def _own_addresses(self, pkts) -> dict:
        """{address: device} the packets make the firewall's own, besides the interfaces'."""
        need = {}
        for pkt in pkts:
            own = _own_address(pkt)
            if own is not None and own not in self._local_addrs:
                need.setdefault(own, (pkt.iif or self.ifaces[0]) if pkt.dir == "in"
                                else self._route(pkt)[0])
        return need

    def _case_addresses(self, case: Case) -> None:
        """Make exactly this case's IPv4 `in` destinations and `out` sources local (besides
        the interfaces' own): an address left local by an earlier case would turn a forwarded
        or NATed packet of this one into a local delivery (answered by the kernel's port
        unreachable), which the simulator, with its host of interface addresses, rightly does
        not do.  IPv6 ones were all made local by prepare(), or are added here for good."""
        self._sync_addresses(self._own_addresses((*case.setup, case.probe)), drop_v4=True)

    def _sync_addresses(self, need: dict, drop_v4: bool) -> None:
        """Add the `need`ed addresses (an IPv4 one on each device asked for: a move in one
        batch is not needed; an IPv6 one once, for good); with drop_v4 remove the IPv4 ones
        not needed."""
        cmds = []
        have = self._case_addrs
        for addr, dev in need.items():
            if addr.version == 6:
                if addr not in have:
                    cmds.append(f"addr add {addr}/128 dev {dev} nodad")
                    have[addr] = None
            elif dev not in have.get(addr, ()):
                cmds.append(f"addr add {addr}/32 dev {dev}")
                have.setdefault(addr, set()).add(dev)
        added6 = any(c.endswith("nodad") for c in cmds)
        if drop_v4:
            for addr in [a for a in have if a not in need and a.version == 4]:
                for dev in sorted(have.pop(addr)):
                    cmds.append(f"addr del {addr}/32 dev {dev}")
        if cmds:
            self._ip_batch(self.fw, cmds)
        if added6:
            self._await_ipv6_addresses()

    def _await_ipv6_addresses(self, limit: float = 0.5) -> None:
        """Even with nodad an IPv6 address leaves the tentative state from a work queue, a
        moment after `ip addr add` returned; a packet to it before then is dropped."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            out = netns.run(["ip", "-n", self.fw, "-6", "addr", "show", "tentative"]).stdout
            if not out.strip():
                return
            time.sleep(0.0005)
        raise KernelError("IPv6 addresses stayed tentative in the fw namespace")

    def _prepare_addresses(self, pkt: Packet) -> None:
        """Give on-link destinations and sources a neighbour."""
        cmds = []
        # every on-link address a case names gets a neighbour: the firewall may have to send
        # to it (a destination, or a source whose replies come back NATed or forwarded)
        for addr in (pkt.dst, pkt.src):
            if addr in self._local_addrs or addr.is_multicast:
                continue
            if addr == _own_address(pkt):
                continue  # local in this case
            oif, on_link = self._route_addr(addr)
            key = (addr, oif)
            if on_link and key not in self._neighbours:
                mac = ":".join(f"{b:02x}" for b in self._peer_mac[oif])
                cmds.append(f"neigh replace {addr} lladdr {mac} dev {oif} nud permanent")
                self._neighbours.add(key)
        if cmds:
            self._ip_batch(self.fw, cmds)

    def _plan(self, ifname: str):
        """The address plan of an interface: the first two interfaces, whatever their names,
        get eth0's and eth1's plan (by position), so rulesets matching on ppp0 or wlan0 can be driven too."""
        pos = self.ifaces.index(ifname)
        return list(IFACE_PLAN.values())[pos] if pos < 2 else None

    def _route(self, pkt: Packet) -> tuple[str, bool]:
        """(interface the fw ns routes pkt.dst out of, is it on-link) from the address plan."""
        return self._route_addr(pkt.dst)

    def _route_addr(self, dst) -> tuple[str, bool]:
        for ifname in self.ifaces:
            v4, routes4, _, v6, routes6 = self._plan(ifname) or (None, (), None, None, ())
            for net in (v4, v6):
                if net and dst in ipaddress.ip_interface(net).network:
                    return ifname, True
            if any(dst in ipaddress.ip_network(r) for r in (*routes4, *routes6)):
                return ifname, False
        return self.ifaces[0], False  # the default route

    def _drain(self) -> None:
        for s in self._socks:
            if s.type == socket.SOCK_RAW or s.family == socket.AF_PACKET:
                try:
                    while True:
                        s.recv(65535)
                except (BlockingIOError, OSError):
                    pass

    def _send_frame(self, sock_owner: str, iface: str, datagram: bytes, l3: int, to_fw: bool) -> None:
        ethertype = wire.ETH_P_IP if l3 == 4 else wire.ETH_P_IPV6
        if to_fw:
            frame = wire.ether(self._mac[iface], self._peer_mac[iface], ethertype, datagram)
            self._peer_sock[iface].send(frame)
        else:
            frame = wire.ether(self._peer_mac[iface], self._mac[iface], ethertype, datagram)
            self._fw_sentinel_sock[iface].send(frame)

    def _sentinel_to_fw(self, iface: str) -> None:
        frame = wire.ether(self._mac[iface], self._peer_mac[iface], wire.ETH_P_SENTINEL, b"fwc" * 16)
        self._peer_sock[iface].send(frame)

    def _sentinel_to_peer(self, iface: str) -> None:
        frame = wire.ether(self._peer_mac[iface], self._mac[iface], wire.ETH_P_SENTINEL, b"fwc" * 16)
        self._fw_sentinel_sock[iface].send(frame)

    def _watch(self, pkt: Packet, accept_socks: list[tuple[socket.socket, str]],
               sentinel: tuple[socket.socket, bool]) -> bool:
        """Wait until an accept sign arrives (True) or the sentinel and grace passed (False)."""
        deadline = time.monotonic() + self.drop_timeout
        sentinel_sock, sentinel_incoming = sentinel
        grace_until = None
        kinds = {id(s): kind for s, kind in accept_socks}
        socks = list({id(s): s for s in [*(s for s, _ in accept_socks), sentinel_sock]}.values())
        while True:
            now = time.monotonic()
            limit = deadline if grace_until is None else min(deadline, grace_until)
            if now >= limit:
                return False
            ready, _, _ = select.select(socks, [], [], limit - now)
            for s in ready:
                kind = kinds.get(id(s))
                for data, addr in _recv_all(s):
                    if s.family == socket.AF_PACKET:
                        self.last_frames.append(data)  # what the peers got (tests read it)
                    if s is sentinel_sock and data[12:14] == SENTINEL_TYPE and \
                            (addr[2] != PACKET_OUTGOING) == sentinel_incoming:
                        grace_until = time.monotonic() + self.grace
                    elif kind is not None and _accept_sign(kind, pkt, data, addr, self._ident):
                        if kind == "peer":
                            self._last_seen = data[14:]  # as it left: after NAT
                        return True

    def _send(self, pkt: Packet, datagram: bytes) -> tuple[str, bool]:
        """Put one packet on its way; return (verdict guess from the wire, rejected-by-errno)."""
        self._drain()
        if pkt.dir in ("in", "fwd"):
            iif = pkt.iif or self.ifaces[0]
            # delivered locally (an `in` packet, or a `fwd` one a destination NAT such as
            # REDIRECT made local), or forwarded out of any interface (a destination NAT may
            # route it out of another one, even the one it came in by)
            watch = [(self._raw_in_sock(pkt.l3, pkt.proto), "raw")] + \
                [(self._peer_sock[x], "peer") for x in self.ifaces]
            self._send_frame(iif, iif, datagram, pkt.l3, to_fw=True)
            self._sentinel_to_fw(iif)
            accepted = self._watch(pkt, watch, (self._fw_sentinel_sock[iif], True))
            return ("ACCEPT" if accepted else "DROP"), False
        oif, _ = self._route(pkt)
        local_in = self._raw_in_sock(pkt.l3, pkt.proto)  # open before sending: lo is quick
        sock = self._raw_out[pkt.l3]
        addr = (str(pkt.dst), 0) if pkt.l3 == 4 else (str(pkt.dst), 0, 0, 0)
        try:
            sock.sendto(datagram, addr)
        except PermissionError:  # EPERM: a LOCAL_OUT hook dropped it
            return "DROP", True
        except OSError as e:
            raise KernelError(f"sending {pkt.dir} packet to {pkt.dst} failed: {e.strerror}") from None
        self._sentinel_to_peer(oif)
        # out on the wire, or back in over lo when a destination NAT (REDIRECT) made it local
        watch = [(self._peer_sock[oif], "peer"), (local_in, "raw")]
        accepted = self._watch(pkt, watch, (self._peer_sock[oif], True))
        return ("ACCEPT" if accepted else "DROP"), False

    def _run_packet(self, pkt: Packet, flows: wire.Flows, sent: list[bytes]) -> tuple[str, dict]:
        self._prepare_addresses(pkt)
        quoted = sent[pkt.quote] if pkt.quote is not None else None
        self._ident += 1
        datagram = wire.ip_packet(pkt, flows, quoted, self._ident)
        sent.append(datagram)
        self._last_seen = None
        self.last_frames = []
        self._reject_log.drain()  # late errors about earlier packets
        verdict, _ = self._send(pkt, datagram)
        if self._last_seen is not None:
            # an ICMP error from the far side quotes the packet as that side got it (NATed)
            sent[-1] = self._last_seen
        counters = self._reset_counters()
        logged = self._reject_log.drain()
        rejections = [p for prefix, p in logged if prefix == REJECT_LOG_PREFIX]
        if verdict != "ACCEPT" and any(wire.answers_probe(pkt, datagram, self._ident, r)
                                       for r in rejections):
            verdict = "REJECT"
        self._maybe_queued |= verdict == "DROP"  # it may wait for a neighbour (run_case)
        return verdict, counters

    def run_case(self, case: Case) -> CaseResult:
        if not self._open:
            raise KernelError("the harness is not open (use it as a context manager)")
        self._case_addresses(case)
        if self._maybe_queued:
            # a packet read as DROP may sit in a neighbour queue (a NAT target nobody answers
            # for): seconds later its resolution fails and the kernel sends an ICMP error that
            # would read as a REJECT of whichever case then runs. Flushing the resolving
            # entries drops those packets without an error (permanent ones stay).
            self._ip_batch(self.fw, ["neigh flush all"])
            self._maybe_queued = False
        self.flush_conntrack()
        self.clear_recent_lists()
        self._reset_counters()  # whatever happened since the last case must not count
        flows = wire.Flows()
        sent: list[bytes] = []
        setup_verdicts = []
        for pkt in case.setup:
            if self.packet_gap:
                time.sleep(self.packet_gap)
            verdict, _ = self._run_packet(pkt, flows, sent)
            setup_verdicts.append(verdict)
        if self.packet_gap:
            time.sleep(self.packet_gap)
        verdict, counters = self._run_packet(case.probe, flows, sent)
        prefix = "out" if case.probe.dir == "out" else "pre"
        states = [s.upper() for s in CT_STATES if counters.get(f"{prefix}_{s}", 0)]
        ct_state = states[0] if len(states) == 1 else (None if not states else "+".join(states))
        return CaseResult(case.name, verdict, ct_state, tuple(setup_verdicts))

    def run_cases(self, cases: Iterable[Case]) -> list[CaseResult]:
        return [self.run_case(c) for c in cases]


def _own_address(pkt: Packet):
    """The address a case makes the firewall's own: an `in` destination, an `out` source."""
    if pkt.dir == "in":
        return pkt.dst
    if pkt.dir == "out":
        return pkt.src
    return None


def _recv_all(s: socket.socket):
    v6raw = s.family == socket.AF_INET6 and s.type == socket.SOCK_RAW
    while True:
        try:
            if not v6raw:
                yield s.recvfrom(65535)
                continue
            data, anc, _flags, addr = s.recvmsg(65535, socket.CMSG_SPACE(4))
            flow = next((struct.unpack("!I", d[:4])[0] for level, kind, d in anc
                         if level == socket.IPPROTO_IPV6 and kind == IPV6_FLOWINFO
                         and len(d) >= 4), None)
            yield data, tuple(addr) + (flow,)
        except (BlockingIOError, InterruptedError):
            return


def _accept_sign(kind: str, pkt: Packet, data: bytes, addr, ident: int = 0) -> bool:
    if kind == "raw":
        if pkt.l3 == 4:
            return wire.is_same_datagram(pkt, data) or wire.is_tagged_datagram(pkt, data, ident)
        # IPv6 raw sockets deliver only the upper-layer payload; the flow label (ancillary
        # data) carries the tag through NAT, which may rewrite ports (a null binding moving a
        # clashing reply tuple to another port)
        if ipaddress.ip_address(addr[0].split("%")[0]) == pkt.src and \
                wire.l4_matches(pkt, pkt.proto, data):
            return True
        flow = addr[4] if len(addr) > 4 else None
        if flow is None:
            return False
        # (the kernel's IPV6_FLOWINFO is traffic class + flow label, without the version)
        header = struct.pack("!IHBB16s16s", (6 << 28) | (flow & 0x0FFFFFFF), len(data),
                             pkt.proto, 64, b"\0" * 16,
                             b"\0" * 16)
        return wire.is_tagged_datagram(pkt, header + data, ident)
    if addr[2] == PACKET_OUTGOING:
        return False
    ethertype = struct.unpack("!H", data[12:14])[0]
    if ethertype not in (wire.ETH_P_IP, wire.ETH_P_IPV6):
        return False
    # a NATed packet keeps its tag (IPv4 ID / IPv6 flow label) but not its addresses
    return wire.is_same_datagram(pkt, data[14:]) or wire.is_tagged_datagram(pkt, data[14:], ident)
