/* SPDX-License-Identifier: MIT */
/* arena.h's loop_step with no map_extra: the arena is wherever the first mmap puts it. */
#include "arena.h"
