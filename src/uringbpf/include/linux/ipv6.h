/* uringbpf: <linux/ipv6.h> subset: the IPv6 header (little-endian bit-field order). */
#ifndef _UAPI_IPV6_H
#define _UAPI_IPV6_H
#include <linux/types.h>
#include <linux/in6.h>
struct ipv6hdr {
	__u8		priority:4,
			version:4;
	__u8		flow_lbl[3];
	__be16		payload_len;
	__u8		nexthdr;
	__u8		hop_limit;
	union {
		struct {
			struct in6_addr	saddr;
			struct in6_addr	daddr;
		};
		struct {
			struct in6_addr	saddr;
			struct in6_addr	daddr;
		} addrs;
	};
};
#endif
