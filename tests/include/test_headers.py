"""uringbpf's BPF C headers behave like libbpf's and the kernel UAPI's (issue #14, Build)."""

from __future__ import annotations

import errno
import re

import pytest

from uringbpf.bpf import cc
from uringbpf.bpf.object import BpfObject

INC = cc.include_dir()
_DECL = re.compile(r"static [^;]*?\(\* const (\w+)\)\([^;]*?\)\s*=\s*\(void \*\)\s*(\d+);", re.S)


def _declared(header: str) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for name, hid in _DECL.findall((INC / header).read_text()):
        found.setdefault(int(hid), set()).add(name)
    return found


def test_every_helper_of_the_table_is_declared_once_with_its_id():
    from uringbpf.platform import default_platform

    platform = default_platform()
    upstream = _declared("bpf/bpf_helper_defs.h")
    rfc = _declared("io_uring/bpf_requests.h")
    table = {hid: platform.get_helper(hid).name for hid in platform.helper_ids()}
    assert all(len(names) == 1 for names in upstream.values()), "an id declared twice"
    upstream = {hid: names.pop() for hid, names in upstream.items()}
    assert 203 in table and upstream[203] == "bpf_dynptr_data"
    for hid, name in table.items():
        if hid in (164, 165, 166, 167):
            # the 2021 RFC's own ids: upstream gave these numbers to other helpers, so they
            # live in the RFC's header (with and without the bpf_ prefix), never in libbpf's
            assert hid not in upstream
            assert name in rfc[hid] and len({n.removeprefix("bpf_") for n in rfc[hid]}) == 1, \
                (hid, name, rfc[hid])
        else:
            assert upstream.get(hid) == name, f"helper {hid} {name} missing from bpf_helper_defs.h"
    assert set(upstream) <= set(table), "bpf_helper_defs.h declares a helper the table lacks"


def test_bpf_helpers_h_does_not_pull_in_linux_bpf_h():
    text = (INC / "bpf" / "bpf_helpers.h").read_text()
    assert not re.search(r"#\s*include\s*[<\"]linux/bpf\.h", text)


def test_asm_generic_errno_numbers_are_linux_numbers(tmp_path):
    """Every errno the UAPI subset defines equals Python's (Linux) value: checked by the
    compiler, one _Static_assert per name."""
    names = re.findall(r"#define\s+(E[A-Z0-9]+)\s+\d+",
                       (INC / "asm-generic" / "errno-base.h").read_text()
                       + (INC / "asm-generic" / "errno.h").read_text())
    assert len(names) > 120
    checks = "\n".join(f"_Static_assert({n} == {getattr(errno, n)}, \"{n}\");"
                       for n in names if hasattr(errno, n))
    src = tmp_path / "e.bpf.c"
    src.write_text("#include <linux/errno.h>\n#include <asm/errno.h>\n" + checks + "\nint x;\n")
    cc.compile_c(src, tmp_path / "e.o")


UAPI_PROG = r"""
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/const.h>
#include <linux/errno.h>
#include <linux/limits.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmp.h>
#include <linux/icmpv6.h>
#include <linux/if_packet.h>
#include <linux/pkt_cls.h>
#include <linux/posix_types.h>
#include <asm/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

_Static_assert(sizeof(struct ethhdr) == 14, "ethhdr");
_Static_assert(sizeof(struct iphdr) == 20, "iphdr");
_Static_assert(__builtin_offsetof(struct iphdr, saddr) == 12, "iphdr.saddr");
_Static_assert(sizeof(struct ipv6hdr) == 40, "ipv6hdr");
_Static_assert(sizeof(struct tcphdr) == 20, "tcphdr");
_Static_assert(__builtin_offsetof(struct tcphdr, window) == 14, "tcphdr.window");
_Static_assert(sizeof(struct udphdr) == 8, "udphdr");
_Static_assert(sizeof(struct icmphdr) == 8, "icmphdr");
_Static_assert(sizeof(struct icmp6hdr) == 8 && PACKET_OTHERHOST == 3, "icmp6hdr");
_Static_assert(sizeof(struct sockaddr_in6) == 28, "sockaddr_in6");
_Static_assert(_BITUL(3) == 8 && __KERNEL_DIV_ROUND_UP(9, 4) == 3, "const.h");
_Static_assert(PATH_MAX == 4096 && ETH_P_IPV6 == 0x86DD && IPPROTO_UDP == 17, "values");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

SEC("syscall")
int parse(void *ctx)
{
	/* an Ethernet + IPv4 + TCP header built on the stack, parsed the way XDP programs do */
	unsigned char pkt[sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct tcphdr)] = {};
	struct ethhdr *eth = (void *)pkt;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(ip + 1);
	__u32 k = 0;
	__u64 *v;

	eth->h_proto = bpf_htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->protocol = IPPROTO_TCP;
	tcp->dest = bpf_htons(8080);
	tcp->syn = 1;
	v = bpf_map_lookup_elem(&out, &k);
	if (!v)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IP) && ip->protocol == IPPROTO_TCP && pkt[14] == 0x45)
		*v = ((__u64)bpf_ntohs(tcp->dest) << 8) | tcp->syn | (pkt[14 + 20 + 13] << 1);
	return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""


def test_uapi_subset_builds_and_its_layouts_run(tmp_path):
    src = tmp_path / "uapi.bpf.c"
    src.write_text(UAPI_PROG)
    obj = BpfObject.open(cc.compile_c(src, tmp_path / "uapi.o"))
    try:
        obj.load()
        assert obj.programs["parse"]() == 0
        # dest 8080 << 8, syn bit in byte 13 of the TCP header (bit 1) and the bit-field
        assert int.from_bytes(obj.maps["out"][0], "little") == (8080 << 8) | 1 | (2 << 1)
    finally:
        obj.close()
