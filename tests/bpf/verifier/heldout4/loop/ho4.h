/* Held-out corpus 4 (#20 re-check, engineer C): common part of the loop_step programs.
 * The pieces of corpus 3 (ho3.h: the STEP / NAKED_STEP / OPS macros, the assembly
 * snippets, `can_loop`, the kfunc declarations) are reused as they are; the verdicts that
 * count are Linux 7.2's (kernel72_heldout4.json). The comment at the top of each file says
 * what the case probes; "realistic" ones are meant to load, most others hide one fault. */
#include "../../heldout/ho3_loop/ho3.h"
