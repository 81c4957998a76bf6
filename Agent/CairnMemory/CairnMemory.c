#include "CairnMemory.h"

#if defined(__linux__)
#include <malloc.h>
#endif

void cairn_release_freed_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
