"""The embedded DNS server's messages and answers (sdcontainer/network/dns.py): built
and parsed here byte by byte, no socket involved."""

from __future__ import annotations

import random
import struct

from sdcontainer.network import dns, hosts
from sdcontainer.network.endpoint import Endpoint
from sdcontainer.network.model import Attachment, Interface, Member

WEB = "a" * 64
CLIENT = "c" * 64
NET = "appnet"


def query(name: str, qtype: int = dns.T_A, qid: int = 0x1234, flags: int = 0x0100) -> bytes:
    """A query as a stub resolver sends it (RD set)."""
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def decode(msg: bytes) -> tuple[int, int, bytes, list[tuple[int, int, bytes]]]:
    """(id, flags, question, [(type, ttl, rdata)]) of a reply whose answers point at
    its question, as ours do."""
    qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", msg)
    assert (qd, ns, ar) == (1, 0, 0)
    end = msg.index(b"\0", 12) + 5
    question, pos, answers = msg[12:end], end, []
    for _ in range(an):
        ptr, rtype, rclass, ttl, size = struct.unpack_from("!HHHIH", msg, pos)
        assert (ptr, rclass) == (0xC00C, 1)
        answers.append((rtype, ttl, msg[pos + 12:pos + 12 + size]))
        pos += 12 + size
    assert pos == len(msg)
    return qid, flags, question, answers


def zone() -> dns.Zone:
    members = [Member(WEB, "web", "10.78.5.2", ("www",), ip6="fd00::2"),
               Member(CLIENT, "client", "10.78.5.3")]
    iface = Interface(network=NET, ifname="eth0", host_ifname="sdcvcccc", ip="10.78.5.3",
                      prefixlen=24, gateway="10.78.5.1", mac="02:00:00:00:00:03",
                      links=("web:bar",))
    client = Endpoint(Attachment(CLIENT, "bridge", "/x", (iface,), (), "h", "r", "n"),
                      name="client", hostname="client", links=[("web", "legacy", "10.0.0.9")])
    return dns.build_zone(NET, members, {CLIENT: client}.get)


def test_a_aaaa_for_names_aliases_and_id_case_insensitively() -> None:
    z = zone()
    for name in ("web", "WeB", "www", "WWW", WEB[:12]):
        qid, flags, question, answers = decode(dns.answer(z, query(name), "10.78.5.9") or b"")
        assert qid == 0x1234 and flags & 0x8000 and flags & 0x0400 and flags & 0xF == 0
        assert flags & 0x0100  # RD echoed
        assert name.encode() in question  # the question comes back as asked
        assert answers == [(dns.T_A, 600, bytes([10, 78, 5, 2]))]
    answers = decode(dns.answer(z, query("web", dns.T_AAAA), "") or b"")[3]
    assert answers == [(dns.T_AAAA, 600, b"\xfd" + b"\0" * 14 + b"\x02")]
    # A known name without an IPv6 address: NOERROR and no answer (NODATA).
    _, flags, _, answers = decode(dns.answer(z, query("client", dns.T_AAAA), "") or b"")
    assert flags & 0xF == dns.NOERROR and answers == []


def test_other_names_are_refused_never_nxdomain() -> None:
    z = zone()
    for name in ("other", "web.example.com", "example.com", "bar"):
        _, flags, _, answers = decode(dns.answer(z, query(name), "10.78.5.9") or b"")
        assert flags & 0xF == dns.REFUSED and answers == []
    # No zone (the network has no members known yet): REFUSED too; class CH: REFUSED.
    assert decode(dns.answer(None, query("web"), "") or b"")[1] & 0xF == dns.REFUSED
    chaos = query("web")[:-2] + struct.pack("!H", 3)
    assert decode(dns.answer(z, chaos, "") or b"")[1] & 0xF == dns.REFUSED


def test_link_aliases_only_for_the_linking_container() -> None:
    z = zone()
    for alias in ("bar", "legacy"):
        answers = decode(dns.answer(z, query(alias), "10.78.5.3") or b"")[3]
        assert answers == [(dns.T_A, 600, bytes([10, 78, 5, 2]))]
        assert decode(dns.answer(z, query(alias), "10.78.5.2") or b"")[1] & 0xF == dns.REFUSED


def test_ptr() -> None:
    answers = decode(dns.answer(zone(), query("2.5.78.10.in-addr.arpa", dns.T_PTR), "")
                     or b"")[3]
    assert answers == [(dns.T_PTR, 600, dns.encode_name("web.appnet"))]


def test_udp_answers_fit_512_bytes_else_tc() -> None:
    many = [Member(f"{i:064x}", f"n{i}", f"10.78.6.{i}", ("pool",)) for i in range(1, 60)]
    z = dns.build_zone(NET, many, lambda _cid: None)
    reply = dns.answer(z, query("pool"), "") or b""
    _, flags, _, answers = decode(reply)
    assert len(reply) <= 512 and flags & 0x0200 and answers == []
    _, flags, _, answers = decode(dns.answer(z, query("pool"), "", dns.TCP_LIMIT) or b"")
    assert not flags & 0x0200 and len(answers) == 59


def test_malformed_and_non_queries_are_dropped() -> None:
    z, good = zone(), query("web")
    assert dns.answer(z, good[:11], "") is None  # short header
    assert dns.answer(z, good[:-3], "") is None  # cut in the question
    assert dns.answer(z, query("web", flags=0x8100), "") is None  # a response
    two = good[:4] + b"\0\2" + good[6:]
    assert dns.answer(z, two, "") is None
    pointer = good[:12] + b"\xc0\x0c" + good[-4:]
    assert dns.answer(z, pointer, "") is None
    # Another opcode (a NOTIFY, an UPDATE): NOTIMP, not silence, not NXDOMAIN.
    reply = dns.answer(z, query("web", flags=0x2000), "") or b""
    assert struct.unpack_from("!H", reply, 2)[0] & 0xF == dns.NOTIMP


def test_fuzz_no_exception_escapes() -> None:
    rng = random.Random(1234)
    z, good = zone(), query("web")
    for _ in range(20000):
        if rng.random() < 0.5:
            data = rng.randbytes(rng.randrange(0, 80))
        else:
            data = bytearray(good)
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data[:rng.randrange(len(data) + 1)])
        reply = dns.answer(z, data, "10.78.5.3")
        assert reply is None or len(reply) <= 512


def test_resolv_conf_lists_the_gateway_first() -> None:
    host = "nameserver 127.0.0.53\nnameserver 10.254.0.53\nsearch example.test\n"
    out = hosts.render_resolv(host, dns=[], search=[], options=[], fallback=[],
                              keep_loopback=False, embedded="10.78.5.1")
    assert out == "nameserver 10.78.5.1\nnameserver 10.254.0.53\nsearch example.test\n"
    out = hosts.render_resolv(host, dns=["10.7.7.7"], search=[], options=[], fallback=[],
                              keep_loopback=False, embedded="10.78.5.1")
    assert out.startswith("nameserver 10.78.5.1\nnameserver 10.7.7.7\nsearch")
