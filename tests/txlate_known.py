"""iptables-translate vectors whose expected nft differs from fwc's output, with the reason.

kind "equivalent": a test or the kernel shows both mean the same (or the vector is wrong and fwc
is right); kind "gap": fwc refuses the construct (a located 'unsupported' error) - listed in README.
Equivalences checked in the kernel are in tests/kernel/test_txlate_equivalence.py.
"""

_E, _G = "equivalent", "gap"

_AHLEN = "vector wrong: ip6t_ah compares --ahlen with the header length in bytes ((hdrlen+2)*4)"
_AHRES = "vector wrong: --ahres matches a zero reserved field (ip6t_ah: !(hdrres && reserved))"
_OPTLEN = ("vector wrong: --rt-len/--hbh-len are the header length in bytes ((hdrlength+1)*8); "
           "22 is no possible length, so fwc emits a relation no packet satisfies")
_FULLSPI = ("vector inexact: the xt module also requires a non-fragment with a readable header, "
            "which fwc keeps as 'spi 0-4294967295'; upstream's form is not loadable or drops that")
_TPROXY = ("vector wrong: xt TPROXY drops when no transparent socket is found, nft tproxy lets the "
           "packet go on; fwc adds the drop rule")
_TIME = ("exact form: xt_time compares whole UTC seconds; fwc emits 'meta time >= start' and "
         "'< stop+1s' (TZ independent), upstream a range that misses the last fraction of a second")
_WEEKDAYS = ("vector wrong: nft's meta day (and a quoted meta time/hour) use the kernel's or nft's "
             "time zone, xt_time UTC; fwc looks the UTC days up as intervals of meta time up to "
             "xt_time's date_stop (tests/test_timewindow.py, kernel: test_time_kernel.py)")
_DATESTOP = ("vector inexact: xt_time never matches after its default --datestop "
             "2038-01-19 03:14:07 (libxt_time sets date_stop = INT_MAX); fwc keeps "
             "'meta time < 2147483648'")
_MH = "fwc keeps -p mh (meta l4proto mobility-header) as written; same packets as mh type"
_CLUSTER = ("cluster with a mask naming only some nodes: xt_cluster hashes the master "
            "connection of an expected one (FTP data), which nft cannot read (and the vectors "
            "test 'eq node', xt_cluster bit hash of the mask: node N is hash N-1)")
_CLUSTER_ONE = ("vector wrong: 'jhash ... mod 1 ... eq 1' never matches (mod 1 is 0); with one "
                "node xt_cluster matches every packet with a conntrack entry and rewrites "
                "pkt_type multicast to host for unicast destinations, matched or not; fwc's "
                "'ip daddr != 224.0.0.0/4 meta pkttype multicast meta pkttype set host' rule, "
                "then 'ct state established,related,new' (kernel: test_cluster_kernel.py); nft "
                "1.0.6 loads the vector but aborts listing it")

_FIRSTFRAG = ("vector inexact: the xt {m} match returns false for non-first fragments and needs a "
              "readable header; 'meta l4proto {m}' also matches fragments, fwc's '{m} sport "
              "0-65535' does not")
_LENGTH = ("vector inexact: xt_length reads the IP header's length (tot_len / payload_len + 40), "
           "fwc emits that field ('ip length'); 'meta length' is skb->len, which differs for "
           "GSO/BIG TCP packets and link-layer padding")
_TOS = ("vector wrong: xt_TOS sets tos = (tos & ~mask) ^ value on the whole traffic class, "
        "ECN bits included; fwc writes exactly those bits (kernel: test_tos_vectors_same_bytes_"
        "as_xt_tos); upstream only writes DSCP")
_TOS_NFT = (" and its 'ip6 dscp set ip6 dscp and/or/xor X' is refused by nft 1.0.6 (sub-byte "
            "fields take constants only)")
_EXPIRE = ("vector wrong: xt_conntrack compares whole seconds (expires / HZ), nft's ct expiration "
           "milliseconds; fwc's 'Ns-Ns999ms' (listed as Ns-Ns) is exact, upstream's 'N' matches "
           "exactly N000 ms")

KNOWN: dict[str, tuple[str, str]] = {
    "libxt_CONNMARK.txlate:7": (_E, "vector wrong: --set-xmark 0x16/0x12 is ctmark = (ctmark & "
                                    "~0x12) ^ 0x16; upstream's 'xor 0x16 and 0xffffffed' clears "
                                    "bits 0x12 (kernel: test_connmark_set_xmark_vector)"),
    "libxt_DNAT.txlate:28": (_E, "vector in newer nft syntax ([a-b]:p); respelled for nft 1.0.6 "
                                 "as [a]-[b]:p it compiles to fwc's bytecode (kernel test)"),
    **{f"libxt_TOS.txlate:{n}": (_E, _TOS) for n in (1, 4, 7, 10, 13)},
    **{f"libxt_TOS.txlate:{n}": (_E, _TOS + _TOS_NFT) for n in (16, 19, 22, 25)},
    "libxt_conntrack.txlate:7": (_E, "'ct state != new' vs 'ct state ! new': nft's ct state "
                                     "always holds exactly one state bit, so both are 'not NEW'"),
    "libxt_conntrack.txlate:19": (_E, "nft 1.0.6 reads the vector's untyped 'ct original saddr "
                                      "10.100.0.0/16' as 0.0.10.100; fwc writes 'ct original ip "
                                      "saddr 10.100.0.0/16', what --ctorigsrc means"),
    "libxt_conntrack.txlate:46": (_E, _EXPIRE),
    "libxt_conntrack.txlate:52": (_E, _EXPIRE),
    "libxt_hashlimit.txlate:4": (_E, "same bytecode but for the key order (ip saddr . ip daddr, a "
                                     "one-to-one key) and the 300 s timeout on the set instead of "
                                     "the element: both 'dynset update' with a per-key limit"),
    **{f"libxt_length.txlate:{n}": (_E, _LENGTH) for n in (1, 4, 7, 10)},
    "libxt_multiport.txlate:13": (_E, "the same set of (sport, dport) pairs as disjoint elements "
                                      "(R x any, not-R x R): nft 1.0.6 refuses the vector's "
                                      "overlapping form for port ranges ('File exists')"),
    "libxt_sctp.txlate:1": (_E, _FIRSTFRAG.format(m="sctp")),
    "libxt_sctp.txlate:4": (_E, _FIRSTFRAG.format(m="sctp")),
    "libxt_tcp.txlate:34": (_E, _FIRSTFRAG.format(m="tcp")),
    "libxt_udp.txlate:13": (_E, _FIRSTFRAG.format(m="udp")),
    "libxt_helper.txlate:4": (_E, "vector inexact: '! --helper' also matches packets of a "
                                  "connection without a master, where 'ct helper !=' stops the "
                                  "rule; fwc's 'ct helper \"ftp\" return' in a chain of its own "
                                  "keeps them (kernel: test_ct_helper_kernel.py)"),
    "libxt_tcp.txlate:31": (_E, "vector inexact: nft's 'tcp option 23 missing' adds no "
                                "protocol dependency and holds for UDP packets and non-first "
                                "fragments, which '-p tcp ! --tcp-option 23' does not match; "
                                "fwc's 'tcp sport 0-65535' in front requires a TCP first "
                                "fragment (kernel: test_tcp_options_as_the_harness_sends_them)"),
    "libxt_owner.txlate:7": (_E, "vector inexact: '! --uid-owner' also matches packets without a "
                                 "socket, which 'skuid != X' does not; fwc's 'meta skuid X "
                                 "return' in a chain of its own keeps them (kernel: "
                                 "test_socket_kernel.py)"),
    "libxt_sctp.txlate:46": (_G, "--chunk-types with flags: xt tests every chunk of the type, "
                                 "nft's sctp chunk only the first one"),
    "libxt_sctp.txlate:49": (_G, "--chunk-types only: nft cannot say 'no chunk of any other type' "
                                 "for the types it has no name for"),
    "libip6t_ah.txlate:7": (_E, _AHLEN),
    "libip6t_ah.txlate:10": (_E, _AHRES),
    "libip6t_ah.txlate:13": (_E, _AHLEN),
    "libip6t_ah.txlate:16": (_E, _AHLEN + "; " + _AHRES),
    "libip6t_ah.txlate:19": (_E, _FULLSPI + " (nft 1.0.6 has no 'exthdr ah')"),
    "libipt_ah.txlate:10": (_E, _FULLSPI + " (meta l4proto ah also matches fragments)"),
    "libxt_esp.txlate:13": (_E, _FULLSPI + " (meta l4proto esp also matches fragments)"),
    "libxt_esp.txlate:19": (_E, _FULLSPI + " (nft 1.0.6 has no 'exthdr esp')"),
    "libip6t_frag.txlate:4": (_E, "vector wrong: --fragres matches zero reserved bits "
                                  "(reserved and reserved2 both 0)"),
    "libip6t_hbh.txlate:1": (_E, _OPTLEN),
    "libip6t_hbh.txlate:4": (_E, _OPTLEN),
    "libip6t_rt.txlate:4": (_E, _OPTLEN),
    "libip6t_rt.txlate:10": (_E, _OPTLEN),
    "libip6t_rt.txlate:13": (_E, _OPTLEN),
    "libip6t_rt.txlate:22": (_E, "vector not loadable (seg-left is 8 bits); fwc clamps to 0-255, "
                                 "which no packet with the header satisfies either"),
    "libip6t_mh.txlate:1": (_E, _MH), "libip6t_mh.txlate:4": (_E, _MH),
    "libip6t_mh.txlate:7": (_E, _MH + "; full type range kept"),
    "libip6t_mh.txlate:10": (_E, "full type range kept (requires a readable, non-fragment MH)"),
    "libip6t_mh.txlate:13": (_E, _MH),
    "libxt_devgroup.txlate:16": (_E, "vector wrong: only --src-group is negated"),
    "libxt_ecn.txlate:25": (_E, "vector wrong: '! --ecn-tcp-ece' is 'ECE bit clear' "
                                "(tcp flags & ecn == 0), not 'flags byte != 0x40'"),
    "libxt_ecn.txlate:28": (_E, "same flag test written as tcp flags & cwr == cwr"),
    "libxt_TEE.txlate:10": (_E, "both forms need interface eth0 to exist in the test namespace"),
    "libxt_time.txlate:10": (_E, _TIME), "libxt_time.txlate:13": (_E, _TIME),
    "libxt_time.txlate:16": (_E, _TIME), "libxt_time.txlate:19": (_E, _TIME),
    "libxt_limit.txlate:7": (_E, "vector wrong: the kernel rejects --limit-burst 0 (-ERANGE); fwc "
                                 "reports it"),
    **{f"libxt_TPROXY.txlate:{n}": (_E, _TPROXY) for n in (1, 4, 7, 10, 13, 16, 19)},
    **{f"libxt_cluster.txlate:{n}": (_G, _CLUSTER) for n in (1, 7, 13, 16, 19, 22, 25)},
    **{f"libxt_cluster.txlate:{n}": (_E, _CLUSTER_ONE) for n in (4, 10)},
    "libxt_cgroup.txlate:1": (_G, "xt_cgroup tests skb->sk only when it is a full socket; nft "
                                  "meta cgroup maps request sockets to their listener"),
    "libxt_cgroup.txlate:4": (_G, "as above"),
    "libxt_connlabel.txlate:4": (_E, "vector wrong: xt_connlabel's negated match (--set too) holds "
                                     "for packets without a conntrack entry, where nft's ct label "
                                     "stops the rule; fwc sets the label, then 'ct label 40 "
                                     "return' in a chain of its own (kernel: test_connlabel_fwc_"
                                     "nft_agrees_with_xt_connlabel)"),
    "libxt_tcpmss.txlate:4": (_E, "vector inexact: '! --mss' also matches packets without an "
                                     "MSS option, which 'maxseg size != X' does not; fwc's "
                                     "'maxseg size X return' in a chain of its own keeps them "
                                     "(kernel: test_socket_kernel.py)"),
    "libxt_tcpmss.txlate:10": (_E, "vector inexact: '! --mss' also matches packets without an "
                                     "MSS option, which 'maxseg size != X' does not; fwc's "
                                     "'maxseg size X return' in a chain of its own keeps them "
                                     "(kernel: test_socket_kernel.py)"),
    **{f"libxt_time.txlate:{n}": (_E, _WEEKDAYS) for n in (1, 22, 25)},
    **{f"libxt_time.txlate:{n}": (_E, _DATESTOP) for n in (4, 7)},
    "libxt_CONNMARK.txlate:22": (_E, "vector wrong: --set-mark 0x23/0x42 --right-shift-mark 5 is "
                                     "ctmark = ((ctmark & ~0x63) ^ 0x23) >> 5; nft reads "
                                     "upstream's 'ct mark xor 0x23 and 0xffffff9c' as ct mark "
                                     "xor (0x23 & 0xffffff9c) and lists it as 'ct mark >> 5' "
                                     "(kernel: test_mark_arithmetic_agrees_with_the_kernel)"),
    "libxt_SYNPROXY.txlate:1": (_G, "SYNPROXY not translated yet"),
    "libxt_hashlimit.txlate:1": (_G, "byte-based hashlimit (kb/s, burst 1mb) not supported"),
    **{f"libxt_rpfilter.txlate:{n}": (_G, "fib also accepts reverse routes of non-unicast type; "
                                          "rpfilter does not") for n in (1, 4, 7)},
    **{f"libxt_socket.txlate:{n}": (_E, "vector inexact: nft's `socket wildcard` and `socket "
                                        "mark` stop the rule for time-wait and request sockets, "
                                        "which xt_socket counts; fwc tests `socket transparent` "
                                        "(read for every socket) and leaves out wildcard ones, "
                                        "or restores the mark, in a chain of its own (kernel: "
                                        "tests/kernel/test_socket_kernel.py, real sockets)")
       for n in (2, 5, 10, 13, 16)},
}
