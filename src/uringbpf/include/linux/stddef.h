/* uringbpf: <linux/stddef.h> subset. */
#ifndef _UAPI_LINUX_STDDEF_H
#define _UAPI_LINUX_STDDEF_H
#ifndef __counted_by
#define __counted_by(m)
#endif
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) \
	struct { struct { } __empty_ ## NAME; TYPE NAME[]; }
#endif
