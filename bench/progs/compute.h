/*
 * The compute-only benchmark kernel, shared by the BPF program and the native reference
 * build: 1,000 rounds of xorshift64 feeding FNV-1a over the 8 bytes of each state.
 * No helpers, no memory but the stack: what is measured is the engines' code quality.
 */
#ifndef COMPUTE_H
#define COMPUTE_H

#define COMPUTE_ROUNDS 1000

static inline __attribute__((always_inline)) unsigned long long
compute_kernel(unsigned long long x)
{
	unsigned long long h = 0xcbf29ce484222325ULL;

#pragma clang loop unroll(disable)
	for (int i = 0; i < COMPUTE_ROUNDS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		for (int b = 0; b < 8; b++) {
			h ^= (x >> (8 * b)) & 0xff;
			h *= 0x100000001b3ULL;
		}
	}
	return h;
}

#endif
