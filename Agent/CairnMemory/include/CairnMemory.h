// What the agent asks of the C library about its memory, where Swift's Glibc module does not reach (<malloc.h>).
#pragma once

/// Returns every whole free page of the heap to the system (glibc's malloc_trim); a no-op elsewhere.
void cairn_release_freed_memory(void);
