// How the cairn-agent daemon's process uses malloc, set before main runs and before any thread starts.
//
// The agent is long-lived and does little at once, but glibc sizes itself for servers: one arena per thread (up to
// eight per core), each keeping what a busy moment freed, and a trim threshold that grows with the largest block
// freed. With one arena and a fixed 128 KiB threshold, what applying and decoding bundles freed goes back to the
// system. Measured with `cairn-bench run --clusters 10 --duration 3`, idle with 50 corpus works: see BENCHMARKS.md.
// Only the cairn-agent executable links this target; tests and the hub keep glibc's defaults.
#include "CairnMalloc.h"

#if defined(__linux__)
#include <malloc.h>
#endif

#if defined(__GLIBC__)
__attribute__((constructor)) static void cairn_agent_malloc(void) {
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}
#endif
