#!/usr/bin/env python3
"""Write the seed inputs of the fuzz harnesses into tests/fuzz/seeds/.

Every seed is built here from documented field layouts, so no captured
traffic enters the repository. Run again after changing a seed; the
output is deterministic.
"""
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def write(harness, name, data):
    d = os.path.join(ROOT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ipv4(proto, payload, src=b"\x0a\x00\x00\x05", dst=b"\x08\x08\x08\x08"):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 64, proto, 0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def tcp(sport, dport, seq, ack, flags, payload=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload


def ether(payload, ethertype=0x0800):
    return b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + struct.pack("!H", ethertype) + payload


def dns_name(name):
    out = b""
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


# DNS query for www.example.com A, and a response with a compressed A answer.
DNS_QUERY = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + dns_name("www.example.com") + b"\x00\x01\x00\x01"
DNS_RESPONSE = (struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0) + dns_name("www.example.com")
                + b"\x00\x01\x00\x01" + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x5d\xb8\xd8\x22")


def tls_client_hello(sni="example.com", alpn=(b"h2", b"http/1.1")):
    ext = b""
    host = sni.encode()
    sn = struct.pack("!HBH", len(host) + 3, 0, len(host)) + host
    ext += struct.pack("!HH", 0, len(sn)) + sn
    al = b"".join(bytes([len(a)]) + a for a in alpn)
    al = struct.pack("!H", len(al)) + al
    ext += struct.pack("!HH", 16, len(al)) + al
    sv = b"\x04\x03\x04\x03\x03"
    ext += struct.pack("!HH", 43, len(sv)) + sv
    groups = b"\x00\x04\x00\x1d\x00\x17"
    ext += struct.pack("!HH", 10, len(groups)) + groups
    body = (b"\x03\x03" + bytes(range(32)) + b"\x00" + struct.pack("!H", 4) + b"\x13\x01\xc0\x2f"
            + b"\x01\x00" + struct.pack("!H", len(ext)) + ext)
    return b"\x01" + struct.pack("!I", len(body))[1:] + body


def tls_server_hello():
    ext = struct.pack("!HHH", 43, 2, 0x0304)
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x13\x01" + b"\x00" + struct.pack("!H", len(ext)) + ext
    return b"\x02" + struct.pack("!I", len(body))[1:] + body


def tls_record(msg):
    return b"\x16\x03\x01" + struct.pack("!H", len(msg)) + msg


def dtls_record(msg, seq=0):
    # DTLS handshake fragment: type, length, message_seq, offset, fragment length.
    body = msg[4:]
    frag = msg[:1] + struct.pack("!I", len(body))[1:] + struct.pack("!H", seq) + b"\0\0\0" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\xfe\xfd" + b"\0\0" + b"\0" * 6 + struct.pack("!H", len(frag)) + frag


def dtls_client_hello():
    ext = b""
    host = b"example.com"
    sn = struct.pack("!HBH", len(host) + 3, 0, len(host)) + host
    ext += struct.pack("!HH", 0, len(sn)) + sn
    body = (b"\xfe\xfd" + bytes(32) + b"\x00" + b"\x00" + struct.pack("!H", 2) + b"\xc0\x2b"
            + b"\x01\x00" + struct.pack("!H", len(ext)) + ext)
    return b"\x01" + struct.pack("!I", len(body))[1:] + body


HTTP_REQUEST = b"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: fuzz/1.0\r\nContent-Length: 0\r\n\r\n"
HTTP_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"


def dhcp(msg_type=1, hostname=b"printer-3"):
    fixed = struct.pack("!BBBBIHH4s4s4s4s", 1, 1, 6, 0, 0x3903F326, 0, 0, bytes(4), bytes(4), bytes(4), bytes(4))
    fixed += b"\x02\x00\x00\x00\x00\x01" + bytes(10) + bytes(64) + bytes(128)
    opts = b"\x63\x82\x53\x63" + bytes([53, 1, msg_type]) + bytes([50, 4, 10, 0, 0, 7])
    opts += bytes([12, len(hostname)]) + hostname + bytes([60, 8]) + b"MSFT 5.0" + b"\xff"
    return fixed + opts


def ssh_kexinit():
    lists = [b"curve25519-sha256,diffie-hellman-group14-sha256", b"ssh-ed25519",
             b"aes128-ctr", b"aes128-ctr", b"hmac-sha2-256", b"hmac-sha2-256", b"none", b"none", b"", b""]
    payload = b"\x14" + bytes(16) + b"".join(struct.pack("!I", len(x)) + x for x in lists) + b"\x00" + bytes(4)
    pad = 4
    while (len(payload) + 5 + pad) % 8:
        pad += 1
    return struct.pack("!IB", len(payload) + pad + 1, pad) + payload + bytes(pad)


def ssh_streams(client, server):
    """fuzz_ssh tracking input: both streams behind 2-byte lengths."""
    return struct.pack("!H", len(client)) + client + struct.pack("!H", len(server)) + server


def nbns_query(name=b"WORKSTATION"):
    raw = name.ljust(15, b" ") + b"\x00"
    enc = b"".join(bytes([0x41 + (c >> 4), 0x41 + (c & 15)]) for c in raw)
    return struct.pack("!HHHHHH", 0x8001, 0x0110, 1, 0, 0, 0) + b"\x20" + enc + b"\x00" + b"\x00\x20\x00\x01"


def frames(link_byte, *frame_list):
    return bytes([link_byte]) + b"".join(struct.pack("!H", len(f)) + f for f in frame_list)


IP6_CLIENT = bytes.fromhex("fd000001000000000000000000000005")
IP6_SERVER = bytes.fromhex("20010db8000000000000000000000053")


def ipv6(next_header, payload, src=IP6_CLIENT, dst=IP6_SERVER):
    return struct.pack("!IHBB", 0x60000000, len(payload), next_header, 64) + src + dst + payload


def ipv4_fragments(proto, payload, split, ident=0x4242):
    """The IPv4 packet of PAYLOAD cut after SPLIT bytes (a multiple of 8),
    second fragment first."""
    def frag(offset, more, data):
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(data), ident, (0x2000 if more else 0) | offset // 8,
                          64, proto, 0, b"\x08\x08\x08\x08", b"\x0a\x00\x00\x05")
        return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + data
    return [frag(split, False, payload[split:]), frag(0, True, payload[:split])]


def tcp_conversation(sport, dport, requests, responses, src=b"\x0a\x00\x00\x05",
                     dst=b"\x08\x08\x08\x08"):
    """A TCP connection as IPv4 packets: handshake, each request split in
    two segments sent second half first, each response in one segment,
    then FIN from both sides."""
    out, cseq, sseq = [], 1000, 9000
    c = lambda flags, payload=b"": ipv4(6, tcp(sport, dport, cseq, sseq, flags, payload), src, dst)
    s_ = lambda flags, payload=b"": ipv4(6, tcp(dport, sport, sseq, cseq, flags, payload), dst, src)
    out.append(c(0x02))
    cseq += 1
    out.append(s_(0x12))
    sseq += 1
    out.append(c(0x10))
    for req, resp in zip(requests, responses):
        half = len(req) // 2
        out.append(ipv4(6, tcp(sport, dport, cseq + half, sseq, 0x18, req[half:]), src, dst))
        out.append(c(0x18, req[:half]))
        cseq += len(req)
        out.append(s_(0x18, resp))
        sseq += len(resp)
    out.append(c(0x11))
    cseq += 1
    out.append(s_(0x11))
    return out


def packet_seeds(udp_dns, udp_dns_reply, http):
    """Seeds of fuzz_packet beyond one packet per link type: IPv6 with
    extension headers, fragments, TCP conversations, tunnels and the UDP
    protocols that the engine recognizes by port."""
    dns6 = ipv6(0, b"\x11\x00" + bytes(6) + udp(53001, 53, DNS_QUERY))     # hop-by-hop, then UDP
    write("packet", "ipv6-hop-by-hop-dns", frames(0, ether(dns6, 0x86DD)))
    dns_reply = udp(53, 53000, DNS_RESPONSE + bytes(40))
    write("packet", "ipv4-fragments-reversed", frames(3, udp_dns, *ipv4_fragments(17, dns_reply, 32)))
    frag6 = udp(53001, 53, DNS_QUERY)
    write("packet", "ipv6-fragments", frames(3,
          ipv6(44, struct.pack("!BBHI", 17, 0, 16 | 1, 7) + frag6[:16]),
          ipv6(44, struct.pack("!BBHI", 17, 0, 16, 7) + frag6[16:])))
    icmp_unreach = ipv4(1, b"\x03\x03\x00\x00" + bytes(4) + udp_dns[:28], src=b"\x08\x08\x08\x08",
                        dst=b"\x0a\x00\x00\x05")
    icmp6_echo = ipv6(58, b"\x80\x00\x00\x00\x00\x01\x00\x01" + b"ping")
    write("packet", "icmp-unreachable-echo6", frames(3, ipv4(1, b"\x08\x00\x00\x00\x00\x01\x00\x01"),
                                                   icmp_unreach, icmp6_echo))
    http_response = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello")
    second = b"POST /form HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 3\r\n\r\nabc"
    write("packet", "tcp-http-keepalive", frames(3, *tcp_conversation(
        40001, 80, [HTTP_REQUEST, second],
        [http_response, b"HTTP/1.1 204 No Content\r\n\r\n"])))
    kex = ssh_kexinit()
    write("packet", "tcp-ssh", frames(3, *tcp_conversation(
        40002, 22, [b"SSH-2.0-OpenSSH_9.2\r\n" + kex], [b"SSH-2.0-OpenSSH_8.9\r\n" + kex])))
    write("packet", "tcp-tls-both-hellos", frames(3, *tcp_conversation(
        40003, 443, [tls_record(tls_client_hello())], [tls_record(tls_server_hello())])))
    rst = ipv4(6, tcp(40004, 8080, 1, 0, 0x04))
    write("packet", "tcp-rst-alt-port", frames(3, ipv4(6, tcp(40004, 8080, 0, 0, 0x02)), rst))
    # Tunnels: GRE with Ethernet inside, IP in IP, 6in4, VXLAN, MPLS,
    # PPPoE and QinQ around the same DNS query.
    gre = ipv4(47, struct.pack("!HH", 0, 0x6558) + ether(udp_dns), src=b"\xc0\x00\x02\x01",
               dst=b"\xc0\x00\x02\x02")
    write("packet", "tunnels", frames(0,
          ether(gre),
          ether(ipv4(4, udp_dns, src=b"\xc0\x00\x02\x01", dst=b"\xc0\x00\x02\x02")),
          ether(ipv4(41, dns6, src=b"\xc0\x00\x02\x01", dst=b"\xc0\x00\x02\x02")),
          ether(ipv4(17, udp(50000, 4789, b"\x08\x00\x00\x00\x00\x00\x01\x00" + ether(udp_dns_reply)),
                     src=b"\xc0\x00\x02\x01", dst=b"\xc0\x00\x02\x02")),
          ether(struct.pack("!I", (16 << 12) | 0x100 | 64) + udp_dns, 0x8847),
          ether(struct.pack("!BBHH", 0x11, 0, 0x0001, len(udp_dns) + 2) + b"\x00\x21" + udp_dns, 0x8864),
          ether(b"\x00\x64\x81\x00\x00\x0a\x08\x00" + udp_dns, 0x88A8)))
    # UDP protocols by port: mDNS, LLMNR, NBNS, NTP (client mode 3, version 4).
    mdns = udp(5353, 5353, struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 0) + dns_name("printer.local") + b"\x00\x0c\x00\x01")
    llmnr = udp(50001, 5355, struct.pack("!HHHHHH", 7, 0, 1, 0, 0, 0) + dns_name("fileserver") + b"\x00\x01\x00\x01")
    nbns = udp(137, 137, nbns_query())
    ntp = udp(50002, 123, b"\x23" + bytes(47))
    write("packet", "udp-apps", frames(3, ipv4(17, mdns, dst=b"\xe0\x00\x00\xfb"), ipv4(17, llmnr),
                                       ipv4(17, nbns, dst=b"\x0a\xff\xff\xff"), ipv4(17, ntp)))


def pcap_file(linktype, frame_list):
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for i, f in enumerate(frame_list):
        out += struct.pack("<IIII", 1764489600 + i, 0, len(f), len(f)) + f
    return out


def pcapng_block(btype, body):
    body += bytes((4 - len(body) % 4) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def pcapng_file(interfaces, packets):
    out = pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    for linktype in interfaces:
        # if_tsresol = 6 (microseconds), then opt_endofopt.
        opts = struct.pack("<HHB", 9, 1, 6) + bytes(3) + bytes(4)
        out += pcapng_block(1, struct.pack("<HHI", linktype, 0, 0) + opts)
    for i, (iface, f) in enumerate(packets):
        ts = (1764489600 + i) * 1000000
        out += pcapng_block(6, struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(f), len(f)) + f)
    return out


def pcapng_variant_seeds(eth_frame, ip_frame):
    """Write pcapng files that use the rarer parts of the format. One has
    a big-endian section, a Simple Packet Block, if_tsresol as a power of
    two and if_tsoffset. The other has an obsolete Packet Block,
    if_tsresol as a power of ten, blocks the reader skips (name
    resolution, interface statistics, custom) and a second section."""
    def block(order, btype, body):
        body += bytes((4 - len(body) % 4) % 4)
        n = 12 + len(body)
        return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)

    def shb(order):
        return block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))

    def idb(order, linktype, opts=b""):
        return block(order, 1, struct.pack(order + "HHI", linktype, 0, 0) + opts + bytes(4))

    def opt(order, code, value):
        return struct.pack(order + "HH", code, len(value)) + value + bytes((4 - len(value) % 4) % 4)

    ts = 1764489600 * 512
    big = (shb(">") + idb(">", 1, opt(">", 9, b"\x89") + opt(">", 14, struct.pack(">q", 3600)))
           + block(">", 3, struct.pack(">I", len(eth_frame)) + eth_frame)
           + block(">", 6, struct.pack(">IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(eth_frame), len(eth_frame))
                   + eth_frame + opt(">", 1, b"comment") + bytes(4)))
    write("pcapng", "big-endian-spb-tsresol-pow2.pcapng", big)
    ts = 1764489600 * 10 ** 9
    little = (shb("<") + idb("<", 101, opt("<", 9, b"\x09"))
              + block("<", 2, struct.pack("<HHIIII", 0, 0, ts >> 32, ts & 0xFFFFFFFF, len(ip_frame), len(ip_frame))
                      + ip_frame)
              + block("<", 4, struct.pack("<HH", 1, 8) + b"\x0a\x00\x00\x05" + b"a.b\x00" + bytes(4))
              + block("<", 5, struct.pack("<III", 0, 0, 0))
              + block("<", 0x00000BAD, struct.pack("<I", 32473) + b"custom")
              + shb("<") + idb("<", 1)
              + block("<", 6, struct.pack("<IIIII", 0, 0, 1, len(eth_frame), len(eth_frame) + 100) + eth_frame))
    write("pcapng", "obsolete-block-skipped-blocks-two-sections.pcapng", little)
    write("pcap_file", "big-endian-spb-tsresol-pow2.pcapng", big)
    write("pcap_file", "obsolete-block-skipped-blocks-two-sections.pcapng", little)


def audit_text(text):
    return bytes([len(text)]) + text


def audit_entry(actor, action, obj, params, role=b"", reason=b"", count=0):
    """An entry of the fuzz_audit_decode script: length-prefixed actor,
    action, object and params, a flag byte for role and reason, and the
    result count."""
    out = audit_text(actor) + audit_text(action) + audit_text(obj) + audit_text(params)
    if role or reason:
        out += b"\x01" + audit_text(role) + audit_text(reason)
    else:
        out += b"\x00"
    return out + bytes([count])


def audit_seeds():
    # Mode 0: store_audit_decode of the rest (version byte 1, then zeros).
    write("audit_decode", "version-prefix", b"\x00\x01" + bytes(64))
    # Mode 1: operations 0 append, 1 two appends, 2 list, 3 retention, 4 prune,
    # 5 tamper, 6 verify. Each time is a day byte and a microsecond byte.
    login = audit_entry(b"admin", b"api.login", b"/api/v1/login", b"ok=1", b"admin", b"", 1)
    export = audit_entry(b"dpo\x07\n", b"export", b"flows", b"from=0&to=1", b"compliance", b"legal basis", 9)
    append = lambda entry, day: b"\x00" + entry + bytes([day, 0])
    chain = append(login, 1) + append(export, 2) + b"\x01" + login + b"\x03\x00" + export + b"\x02\x01"
    write("audit_decode", "append-list-verify", b"\x01" + chain + b"\x02\x00\x00\x05\x02\x01\x00\x05\x06")
    write("audit_decode", "retention-prune", b"\x01" + chain + b"\x03\x02" + b"\x04\x0a\x00\x01\x02"
          + append(login, 20) + b"\x06")
    # Regression seed: a second bit flip that restores the first one's
    # byte. That was a harness bug: it expected every later change to make
    # verification fail too.
    write("audit_decode", "tamper-twice-restores", b"\x01" + chain + bytes([5, 0, 0, 0, 1]) * 2 + b"\x06")
    # Regression seed: a cut to zero bytes, then another cut of the same
    # entry. The harness divided by the empty value's length.
    write("audit_decode", "tamper-cut-empty-twice", b"\x01" + chain + bytes([5, 0, 1, 0]) * 2 + b"\x06")
    # Regression seed: a bit flip in the seq field of entry 2, then a
    # listing. The entry is listed with the altered seq (verification
    # reports it), which the harness took for a wrong listing order.
    write("audit_decode", "tamper-seq-then-list", b"\x01" + chain + bytes([5, 1, 0, 2, 0x40]) + b"\x02\x01\x00\x05")
    for how, name in ((0, "flip"), (1, "cut"), (2, "delete")):
        write("audit_decode", "tamper-" + name, b"\x01" + chain + bytes([5, 1, how, 7, 0x10]))


def main():
    udp_dns = ipv4(17, udp(53000, 53, DNS_QUERY))
    udp_dns_reply = ipv4(17, udp(53, 53000, DNS_RESPONSE), src=b"\x08\x08\x08\x08", dst=b"\x0a\x00\x00\x05")
    syn = ipv4(6, tcp(40000, 443, 1000, 0, 0x02))
    hello = ipv4(6, tcp(40000, 443, 1001, 1, 0x18, tls_record(tls_client_hello())))
    http = ipv4(6, tcp(40001, 80, 5001, 1, 0x18, HTTP_REQUEST))
    dhcp_pkt = ipv4(17, udp(68, 67, dhcp()), src=bytes(4), dst=b"\xff\xff\xff\xff")

    # packet: byte 0 selects Ethernet(0), SLL(1), SLL2(2), raw(3), NULL(4), NFLOG(5), PPP(6).
    write("packet", "ethernet-dns", frames(0, ether(udp_dns), ether(udp_dns_reply)))
    write("packet", "ethernet-tls", frames(0, ether(syn), ether(hello)))
    write("packet", "ethernet-vlan-http", frames(0, ether(b"\x00\x0a\x08\x00" + http, 0x8100)))
    sll = struct.pack("!HHH", 0, 1, 6) + b"\x02\x00\x00\x00\x00\x01\x00\x00" + struct.pack("!H", 0x0800)
    write("packet", "sll-dns", frames(1, sll + udp_dns))
    sll2 = struct.pack("!HHIHBB", 0x0800, 0, 2, 1, 0, 6) + b"\x02\x00\x00\x00\x00\x01\x00\x00"
    write("packet", "sll2-dhcp", frames(2, sll2 + dhcp_pkt))
    write("packet", "raw-http", frames(3, http))
    write("packet", "null-dns", frames(4, struct.pack("<I", 2) + udp_dns))
    nflog = b"\x02\x00\x00\x00" + struct.pack("<HH", 4 + len(udp_dns), 9) + udp_dns
    write("packet", "nflog-dns", frames(5, nflog))
    write("packet", "ppp-dns", frames(6, b"\xff\x03\x00\x21" + udp_dns))
    packet_seeds(udp_dns, udp_dns_reply, http)

    write("pcap_file", "ethernet-dns.pcap", pcap_file(1, [ether(udp_dns), ether(udp_dns_reply)]))
    write("pcap_file", "raw-tls.pcap", pcap_file(101, [syn, hello]))
    mixed = pcapng_file([1, 101], [(0, ether(udp_dns)), (1, http)])
    write("pcap_file", "mixed-links.pcapng", mixed)
    write("pcapng", "mixed-links.pcapng", mixed)
    write("pcapng", "ethernet.pcapng", pcapng_file([1], [(0, ether(udp_dns)), (0, ether(hello))]))
    pcapng_variant_seeds(ether(udp_dns), http)
    # pcap_file: the last byte selects a BPF filter (see fuzz_pcap_file.c);
    # 0 is "udp port 53", 2 "host 10.0.0.5", 5 a filter that does not compile.
    write("pcap_file", "ethernet-dns-filtered.pcap", pcap_file(1, [ether(udp_dns), ether(udp_dns_reply + b"\x00")]))
    write("pcap_file", "mixed-links-filtered.pcapng", mixed + b"\x02")
    write("pcap_file", "bad-filter.pcap", pcap_file(101, [http + b"\x05"]))
    # Big-endian pcap with nanosecond timestamps, its last record cut short.
    be = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)
    be += struct.pack(">IIII", 1764489600, 5, 60, 60) + ether(udp_dns)[:60]
    be += struct.pack(">IIII", 1764489601, 7, 200, 200) + ether(udp_dns_reply)[:30]
    write("pcap_file", "big-endian-nanosecond-truncated.pcap", be)

    write("dns", "query", DNS_QUERY)
    write("dns", "response-compressed", DNS_RESPONSE)
    # A response whose answer name points at itself: must be rejected.
    write("dns", "pointer-loop", struct.pack("!HHHHHH", 1, 0x8180, 1, 1, 0, 0) + dns_name("a.b")
          + b"\x00\x01\x00\x01" + b"\xc0\x11\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x01\x02\x03\x04")

    write("tls", "client-hello-record", b"\x00" + tls_record(tls_client_hello()))
    write("tls", "server-hello-record", b"\x01" + tls_record(tls_server_hello()))
    write("tls", "client-hello-quic", b"\x03" + tls_client_hello())
    dch = dtls_record(dtls_client_hello())
    write("tls", "dtls-client-hello", b"\x05" + struct.pack("!H", len(dch)) + dch)

    write("http", "request", b"\x00" + HTTP_REQUEST)
    write("http", "response", b"\x01" + HTTP_RESPONSE)
    write("dhcp", "discover", dhcp())
    write("dhcp", "request-no-hostname", dhcp(3, b""))
    # ssh: byte 0 bit 0 selects banner and KEXINIT parsing (0) or the
    # per-connection tracking of two streams (1, chunk size in bits 1-7).
    client_stream = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n" + ssh_kexinit()
    server_stream = b"SSH-2.0-OpenSSH_8.9\r\n" + ssh_kexinit()
    write("ssh", "banner-kexinit", b"\x00" + client_stream)
    write("ssh", "banner-only", b"\x00SSH-2.0-dropbear\n")
    write("ssh", "connection-both-sides", b"\x0f" + ssh_streams(client_stream, server_stream))
    write("ssh", "connection-ssh1-and-bad-banner",
          b"\x01" + ssh_streams(b"SSH-1.5-old\r\n", b"HTTP/1.1 400 Bad Request\r\n\r\n"))
    write("ssh", "connection-truncated-kexinit",
          b"\x03" + ssh_streams(b"SSH-1.99-compat\r\n" + ssh_kexinit()[:40], b""))
    write("nbns", "query", nbns_query())

    quic_seeds()

    write("policy", "zones", b"version: 1\nzones:\n  - name: office\n    networks: [10.0.0.0/8, fd00::/8]\n")
    write("policy", "domains", b"version: 1\ndomains:\n  mode: registrable\n  never_record:\n"
          b"    suffixes: [example-health.org]\n")
    write("policy", "retention", b"version: 1\nretention:\n  flow: 30d\n  dns: 7d\n")
    policy_value_seeds()

    write("api_params", "valid", b"2026-11-30T08:00:00.5+01:00\x00100\x00d00000000000000ff\x00text\x00/app.js")
    write("api_params", "epoch", b"1764489600\x001000\x00a0000000000000001\x00\x7f\x00/")
    write("api_params", "traversal", b"x\x000\x00z\x00\x00/../etc/passwd")
    # Fields 6-10: host, proto, port, domain and zone filters; then the
    # filter flags and a record (see fuzz_api_params.c).
    # The fourth field is also a query string for api_args_read.
    write("api_params", "query-window", b"\x00\x00\x00from=2026-11-30T08:00:00Z&to=1764489600&limit=5\x00/")
    write("api_params", "query-unknown-and-repeated", b"\x00\x00\x00host=10.0.0.1&host=x&flag&bogus=1\x00/")
    # Regression seed: the domain "p.\xc3" is rejected after "p." was
    # written to the output, which the first version of the harness then
    # used as a filter. That was a harness bug, because the routes reply
    # 400 and never use the output.
    write("api_params", "domain-rejected-midway", b"\x00\x00p.\xc3\x00" + b"\x00" * 5 + b"p.\xc3\x00\x00\x0f/.")
    write("api_params", "filter-dns-record", b"0\x001\x00\x00\x00/\x00"
          + b"10.1.0.0/24\x00udp\x0053\x00.Example.COM\x00office\x00"
          + b"\x00" + api_record(1, 7, 24, b"\x0a\x01\x00\x00", b"office", 1, b"\x08\x08\x08\x08",
                                    b"external", 53000, 53, 17, 0, b"www.example.com."))
    write("api_params", "filter-alert-token", b"0\x001\x00\x00\x00/\x00"
          + b"IP4-ABCDEFGHIJKLMNOP\x00icmp\x00\x00\x00\x00"
          + b"\x09" + api_record(4, 3, 0, bytes(range(16)), b"lab", 2, bytes(16), b"", 0, 443, 6, 0x21, b""))
    write("api_params", "filter-aggregate", b"0\x001\x00\x00\x00/\x00"
          + b"2001:DB8::1\x00255\x0065535\x00a_b-c.d\x00lab\x00"
          + b"\x40" + api_record(7, 0, 0, bytes(16), b"lab", 2, b"\x20\x01\x0d\xb8" + bytes(11) + b"\x01",
                                    b"external", 0, 443, 6, 0x05, b""))

    write("minimize", "ip-literal-host", b"\x00" + b"10.1.0.5:8080")
    write("minimize", "reverse-name", b"\x01" + b"5.0.1.10.in-addr.arpa")
    write("minimize", "mdns-name", b"\x02" + b"Jane's Mac._airplay._tcp.local")
    write("minimize", "domain-pseudonymize", b"\x08" + b"www.example.co.uk:8080")
    write("minimize", "prefix-preserving-host", b"\x10" + b"10.1.0.5:8080")
    # fd00:2::1 as a reverse name: 32 nibbles, lowest first.
    nibbles = "fd000002" + "0" * 23 + "1"
    write("minimize", "truncate-reverse-v6", b"\x11" + ".".join(reversed(nibbles)).encode() + b".ip6.arpa")
    write("minimize", "keep-embedded", b"\x13" + b"ip-10-3-0-7.ec2.internal")
    write("minimize", "external-pseudonymize", b"\x18" + b"[2001:db8::5]:443")
    write("minimize", "user-agent", b"\x07" + b"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0 alice-laptop")
    # Stored values start with the codec version (1) and the class byte;
    # the store_record harness prepends its own class selector. These
    # short prefixes lead the fuzzer into each class's decoder.
    for cls, cname in enumerate(["flow", "dns", "tls", "http", "alert", "dhcp", "ssh", "aggregate"]):
        write("store_record", "prefix-" + cname, bytes([cls, 1, cls]) + bytes(48))
    audit_seeds()
    # Indicator lists: the first byte selects the format (0 plain list,
    # 1 CSV), the rest is the file.
    write("indicators", "plain_all_types",
          b"\x00# list\n203.0.113.9\n2001:db8::66\n198.51.100.0/24  # net\nEvil.COM.\n"
          b"*.tracker.example\ne7d705a3286e19ea42f587b344ee6865\n"
          b"t13d1516h2_8daaf6152771_b186095e22b6\n")
    write("indicators", "csv_all_types",
          b"\x01indicator,type,note\n203.0.113.7,ip,c2\n\"bad.example\",domain,\"q\"\n"
          b"192.0.2.0/25,cidr\nE7D705A3286E19EA42F587B344EE6865,JA3\n"
          b"q13d0310h3_55b375c5d22e_cd85d2d88918,ja4\n2001:db8::1,,empty type\n")
    write("indicators", "plain_bad_lines",
          b"\x00not a domain\n10.0.0.0/33\n300.1.1.1/8\nexa$mple.com\nlocalhost\n10.0.0.0/\n"
          b"\x00zero\n")
    # Bit 1 also loads the list from a file. 800 domains and addresses
    # fill more than 3/4 of the initial 1024 hash slots, so the table grows.
    write("indicators", "plain_many_from_file", b"\x02" + b"".join(
        b"d%d.io\n10.1.%d.%d\n" % (i, i // 200, i % 200) for i in range(400)))
    write("indicators", "csv_bad_lines",
          b"\x01203.0.113.8,domain\n203.0.113.9,url\n,ip\n2001:db8::2,ipv4\n")
    netflow_seeds()
    api_request_seeds()
    return 0


def policy_value_seeds():
    """Write small policies that each give one value of
    policy/example-policy.yaml a bad value: the key's ancestors (the
    lines above it with less indentation, and the first line of its list
    item) and the key. A scalar key gets a word ("x") and a negative
    number. A list key gets a word where the list belongs and a list with
    a bad item. The parser stops at the first error, so each seed reaches
    the checks of one key. Keys inside flow maps ({a: 1}) are skipped."""
    path = os.path.join(os.path.dirname(ROOT), "..", "..", "policy", "example-policy.yaml")
    with open(path, "rb") as f:
        lines = [ln.split(b" #")[0].rstrip() for ln in f.read().splitlines()]
    lines = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith(b"#")]

    def key_indent(ln):
        return len(ln) - len(ln.lstrip(b" -"))

    def item_indent(ln):
        """Indentation of the line's own block: the dash of a list item."""
        return len(ln) - len(ln.lstrip(b" "))

    for i, line in enumerate(lines):
        key, sep, value = line.partition(b": ")
        if not sep or not value or b"{" in key:
            continue
        ancestors, level = [], item_indent(line)
        for prev in reversed(lines[:i]):
            if level == 0:
                break
            starts_item = prev.lstrip().startswith(b"- ")
            if item_indent(prev) < level or (starts_item and key_indent(prev) == level):
                ancestors.insert(0, prev)
                level = item_indent(prev)
        head = [ln for ln in ancestors if ln != b"version: 1"]
        name = b"-".join(a.strip(b" -").split(b":")[0] for a in head + [key]).decode()
        bad_values = [("word", b"x")]
        bad_values.append(("bad-item", b"[x]") if value.startswith(b"[") else ("negative", b"-1"))
        for label, bad in bad_values:
            text = b"\n".join([b"version: 1"] + head + [key + b": " + bad]) + b"\n"
            write("policy", "bad-%s-%s" % (name, label), text)


def quic_varint(v):
    if v < 0x40:
        return bytes([v])
    if v < 0x4000:
        return struct.pack("!H", 0x4000 | v)
    return struct.pack("!I", 0x80000000 | v)


def quic_crypto(offset, data):
    return b"\x06" + quic_varint(offset) + quic_varint(len(data)) + data


def quic_sealed(*packets):
    """fuzz_quic sealed input: mode byte 1, then per packet a flags byte
    (see fuzz_quic.c), a 2-byte length and the plaintext frames, which
    the harness protects with the Initial keys."""
    return b"\x01" + b"".join(bytes([flags]) + struct.pack("!H", len(f)) + f for flags, f in packets)


def quic_seeds():
    # Raw mode: a version 1 Initial header whose payload does not decrypt.
    write("quic", "version1-short", b"\x00\x00" + struct.pack("!H", 24) + b"\xc3\x00\x00\x00\x01\x08"
          + bytes(range(8)) + b"\x00\x00\x40\x14" + bytes(6))
    hello = tls_client_hello("quic.example", (b"h3",))
    server = tls_server_hello()
    # Flags: bit 0 direction, bit 1 version 2, bit 2 server keys, bits 3-4
    # packet number length - 1, bit 5 coalesce, bit 6 switched DCID.
    write("quic", "sealed-client-hello", quic_sealed((0x00, quic_crypto(0, hello) + bytes(16))))
    write("quic", "sealed-v2-client-hello", quic_sealed((0x1a, quic_crypto(0, hello))))
    half = len(hello) // 2
    write("quic", "sealed-split-out-of-order", quic_sealed(
        (0x08, b"\x01" + quic_crypto(half, hello[half:])),
        (0x48, b"\x02\x00\x00\x00\x00" + quic_crypto(0, hello[:half]))))
    write("quic", "sealed-coalesced-with-server", quic_sealed(
        (0x20, quic_crypto(0, hello[:20])), (0x00, quic_crypto(20, hello[20:])),
        (0x05, b"\x03\x00\x00\x01\x00\x01\x02\x03\x00\x00" + quic_crypto(0, server))))


def api_request(flags, method, url, headers=b"", body=b""):
    """fuzz_api_request input: flags byte, then method, URL and header
    lines as NUL-separated fields, then the body."""
    return bytes([flags]) + method + b"\0" + url + b"\0" + headers + b"\0" + body


def api_request_seeds():
    # flags: bit 0 admin token, bit 1 analyst token, bits 2-3 address
    # family, bits 4-7 body chunk size.
    json_type = b"Content-Type: application/json"

    write("api_request", "health-anonymous", api_request(0, b"GET", b"/api/v1/health"))
    write("api_request", "flows-query", api_request(
        2, b"GET", b"/api/v1/flows?from=2026-01-01T00:00:00Z&to=1767229200&limit=5&cursor=abc"))
    write("api_request", "top-zones", api_request(2, b"GET", b"/api/v1/top/zones?limit=10&k=3"))
    write("api_request", "series", api_request(2, b"GET", b"/api/v1/series?metric=bytes&step=60"))
    write("api_request", "audit-verify", api_request(1, b"GET", b"/api/v1/audit/verify?from=0"))
    write("api_request", "audit-page", api_request(1, b"GET", b"/api/v1/audit?order=desc&limit=2"))

    write("api_request", "login-json", api_request(
        0x24, b"POST", b"/api/v1/login", json_type,
        b'{"user": "admin", "password": "correct horse"}'))
    write("api_request", "login-bad-json", api_request(
        0, b"POST", b"/api/v1/login", json_type + b"\nContent-Length: 9", b'{"user": '))
    write("api_request", "alert-patch", api_request(
        0x31, b"PATCH", b"/api/v1/alerts/00000000000000000000000000000001",
        json_type + b"\nX-CSRF-Token: 00", b'{"state": "acknowledged", "note": "seen"}'))
    write("api_request", "users-create", api_request(
        1, b"POST", b"/api/v1/users", json_type,
        b'{"name": "ana", "role": "analyst", "password": "a long password"}'))
    write("api_request", "token-create", api_request(
        1, b"POST", b"/api/v1/tokens", json_type, b'{"name": "ci", "role": "analyst"}'))

    write("api_request", "session-cookie", api_request(
        0, b"GET", b"/api/v1/me", b"Cookie: fv_session=" + b"ab" * 32 + b"; theme=dark"))
    write("api_request", "static-traversal", api_request(0, b"GET", b"/%2e%2e/etc/passwd%00.html"))
    write("api_request", "get-with-body", api_request(
        2, b"GET", b"/api/v1/dns?limit=1", b"Content-Length: 4", b"abcd"))
    write("api_request", "body-too-large", api_request(
        1, b"POST", b"/api/v1/users", json_type + b"\nContent-Length: 99999999999999"))
    write("api_request", "metrics", api_request(1, b"GET", b"/metrics"))
    write("api_request", "timeline", api_request(
        2, b"GET", b"/api/v1/hosts/h-0123456789abcdef/timeline?from=0&to=1"))


def api_record(cls, kind_a, prefix_a, addr_a, zone_a, kind_b, addr_b, zone_b,
               port_a, port_b, proto, extra, name):
    """fuzz_api_params record: class, two endpoints (kind, prefix length,
    16 address bytes, zone length, zone), two ports, protocol, extra
    byte (alert detector and severity, aggregate hosts) and a name."""
    def endpoint(kind, prefix, addr, zone):
        return bytes([kind, prefix]) + addr.ljust(16, b"\0") + bytes([len(zone)]) + zone
    return (bytes([cls]) + endpoint(kind_a, prefix_a, addr_a, zone_a) + endpoint(kind_b, 0, addr_b, zone_b)
            + struct.pack("!HHBB", port_a, port_b, proto, extra) + name)


def netflow_chain(*datagrams):
    """fuzz_netflow input: datagrams, each behind a 2-byte big-endian length."""
    return b"".join(struct.pack("!H", len(d)) + d for d in datagrams)


def netflow_seeds():
    # NetFlow v5: header (version, count, uptime, secs, nsecs, sequence,
    # engine type/id, sampling 1 in 10) and one 48-byte record.
    v5 = struct.pack("!HHIIIIBBH", 5, 1, 10000, 1764583168, 0, 100, 0, 1, 0x400A)
    v5 += (b"\x0a\x00\x00\x01" + b"\xc6\x33\x64\x07" + bytes(4) + struct.pack("!HHIIII", 1, 2, 5, 300, 5000, 8000)
           + struct.pack("!HHBBBBHHBBH", 50000, 443, 0, 0x1B, 6, 0, 0, 0, 24, 24, 0))
    # NetFlow v9: template 256 (src, dst, ports, protocol, packets,
    # bytes, first and last switched), then a data flowset.
    fields = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (2, 4), (1, 4), (22, 4), (21, 4)]
    template = struct.pack("!HH", 256, len(fields)) + b"".join(struct.pack("!HH", *f) for f in fields)
    record = (b"\x0a\x00\x00\x02" + b"\xc6\x33\x64\x08" + struct.pack("!HHBIIII", 54321, 53, 17, 2, 140, 7000, 8000))
    record += bytes((4 - len(record) % 4) % 4)
    v9_head = lambda seq: struct.pack("!HHIIII", 9, 2, 10000, 1764583168, seq, 42)
    v9_tpl = struct.pack("!HH", 0, 4 + len(template)) + template
    v9_data = struct.pack("!HH", 256, 4 + len(record)) + record
    # IPFIX: options template 257 (scope meteringProcessId; init time,
    # packet interval and space), its record, flow template 258 with an
    # RFC 5103 reverse counter and an enterprise variable-length field,
    # a data record, then a withdrawal of 258.
    opt_tpl = struct.pack("!HHH", 257, 4, 1) + struct.pack("!HHHHHHHH", 143, 4, 160, 8, 305, 4, 306, 4)
    opt_rec = struct.pack("!IQII", 1, 1764583080000, 1, 99)
    flow_tpl = (struct.pack("!HH", 258, 7) + struct.pack("!HHHHHH", 8, 4, 12, 4, 2, 4)
                + struct.pack("!HHI", 0x8002, 4, 29305) + struct.pack("!HHHH", 22, 4, 21, 4)
                + struct.pack("!HHI", 0x8064, 0xFFFF, 31337))
    flow_rec = b"\x0a\x00\x00\x03\x0a\x00\x00\x04" + struct.pack("!IIII", 2, 3, 1000, 2000) + b"\x03abc"

    def ipfix(seq, *sets):
        body = b"".join(struct.pack("!HH", sid, 4 + len(b)) + b for sid, b in sets)
        return struct.pack("!HHIII", 10, 16 + len(body), 1764583168, seq, 1) + body

    write("netflow", "v5-sampled", netflow_chain(v5))
    write("netflow", "v9-template-data", netflow_chain(v9_head(7) + v9_tpl + v9_data, v9_head(8) + v9_data))
    write("netflow", "v9-data-before-template", netflow_chain(v9_head(1) + v9_data, v9_head(2) + v9_tpl))
    write("netflow", "ipfix-options-biflow-withdraw",
          netflow_chain(ipfix(0, (3, opt_tpl), (257, opt_rec), (2, flow_tpl), (258, flow_rec)),
                        ipfix(2, (2, struct.pack("!HH", 258, 0))), ipfix(2, (258, flow_rec))))


if __name__ == "__main__":
    sys.exit(main())
