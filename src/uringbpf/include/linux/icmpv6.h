/* uringbpf: <linux/icmpv6.h> subset: the ICMPv6 header and common types. */
#ifndef _UAPI_LINUX_ICMPV6_H
#define _UAPI_LINUX_ICMPV6_H
#include <linux/types.h>
struct icmp6hdr {
	__u8		icmp6_type;
	__u8		icmp6_code;
	__sum16		icmp6_cksum;
	union {
		__be32	un_data32[1];
		__be16	un_data16[2];
		__u8	un_data8[4];
	} icmp6_dataun;
};
#define ICMPV6_DEST_UNREACH		1
#define ICMPV6_PKT_TOOBIG		2
#define ICMPV6_TIME_EXCEED		3
#define ICMPV6_ECHO_REQUEST		128
#define ICMPV6_ECHO_REPLY		129
#define NDISC_ROUTER_SOLICITATION	133
#define NDISC_NEIGHBOUR_SOLICITATION	135
#define NDISC_NEIGHBOUR_ADVERTISEMENT	136
#endif
