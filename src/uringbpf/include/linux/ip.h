/* uringbpf: <linux/ip.h> subset: the IPv4 header (little-endian bit-field order). */
#ifndef _UAPI_LINUX_IP_H
#define _UAPI_LINUX_IP_H
#include <linux/types.h>
#define IPTOS_TOS_MASK	0x1E
#define IPVERSION	4
#define MAXTTL		255
#define IPDEFTTL	64
struct iphdr {
	__u8	ihl:4,
		version:4;
	__u8	tos;
	__be16	tot_len;
	__be16	id;
	__be16	frag_off;
	__u8	ttl;
	__u8	protocol;
	__sum16	check;
	union {
		struct {
			__be32	saddr;
			__be32	daddr;
		};
		struct {
			__be32	saddr;
			__be32	daddr;
		} addrs;
	};
};
#endif
