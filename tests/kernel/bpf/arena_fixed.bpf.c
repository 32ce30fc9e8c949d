/* SPDX-License-Identifier: MIT */
/* arena.h's loop_step with the arena at a fixed user address (map_extra = 1 << 44). */
#define ARENA_AT (1ULL << 44)
#include "arena.h"
