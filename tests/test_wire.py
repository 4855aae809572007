"""The harness's tie between a probe and the rejection it drew (no kernel needed)."""

import ipaddress
import struct

from fwc.packet import Packet
from fwc.testing import wire

SRC, DST = ipaddress.ip_address("198.51.100.7"), ipaddress.ip_address("192.0.2.1")


def _probe(**kw) -> Packet:
    base = dict(dir="in", l3=4, src=SRC, dst=DST, proto=6, sport=40000, dport=25,
                flags=frozenset({"SYN"}), iif="eth0")
    base.update(kw)
    return Packet(**base)


def _icmp_error(quoted: bytes) -> bytes:
    err = Packet(dir="out", l3=4, src=DST, dst=SRC, proto=1, icmp_type=3, icmp_code=3, oif="eth0")
    return wire.ip_packet(err, wire.Flows(), quoted, 0)


def _rst(seq: int, ack: int, flags: int, sport: int = 25, dport: int = 40000) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 0, 0, 0)
    return wire.ip_header(4, DST.packed, SRC.packed, 6, len(tcp)) + tcp


def test_icmp_error_counts_only_when_it_quotes_this_probe():
    probe = _probe(proto=17, flags=frozenset(), dport=53)
    sent = wire.ip_packet(probe, wire.Flows(), None, 41)
    earlier = wire.ip_packet(probe, wire.Flows(), None, 40)
    assert wire.answers_probe(probe, sent, 41, _icmp_error(sent))
    # the same flow, but an error about the packet before (e.g. a neighbour that never answered)
    assert not wire.answers_probe(probe, sent, 41, _icmp_error(earlier))


def test_rst_must_carry_the_sequence_numbers_reject_derives_from_the_probe():
    probe = _probe()
    sent = wire.ip_packet(probe, wire.Flows(), None, 7)
    seq = struct.unpack("!I", sent[24:28])[0]
    assert wire.answers_probe(probe, sent, 7, _rst(0, seq + 1, 0x14))  # SYN counts one
    assert not wire.answers_probe(probe, sent, 7, _rst(0, seq + 2, 0x14))
    assert not wire.answers_probe(probe, sent, 7, _rst(0, seq + 1, 0x14, dport=40001))


def test_rst_to_a_probe_with_ack_takes_its_sequence_from_the_probes_ack():
    probe = _probe(flags=frozenset({"ACK"}))
    sent = wire.ip_packet(probe, wire.Flows(), None, 9)
    ack = struct.unpack("!I", sent[28:32])[0]
    assert wire.answers_probe(probe, sent, 9, _rst(ack, 0, 0x04))
    assert not wire.answers_probe(probe, sent, 9, _rst(ack + 1, 0, 0x04))


def test_a_packet_to_someone_else_is_no_rejection():
    probe = _probe(proto=17, flags=frozenset(), dport=53)
    sent = wire.ip_packet(probe, wire.Flows(), None, 3)
    other = _probe(src=ipaddress.ip_address("198.51.100.8"), proto=17, flags=frozenset(), dport=53)
    assert not wire.answers_probe(other, sent, 3, _icmp_error(sent))
