// What the agent asks of the C library about its memory, where Swift's Glibc module does not reach (<malloc.h>,
// madvise's MADV_PAGEOUT).
#pragma once

/// Returns every whole free page of the heap to the system (glibc's malloc_trim); a no-op elsewhere.
void cairn_release_freed_memory(void);

/// Gives the kernel back the pages of every file this process maps without writing it (its program, the libraries,
/// their read-only data): `madvise(MADV_PAGEOUT)`, Linux 5.4 and later. Pages another process maps stay where they
/// are; the rest are read back from the file when next touched. Returns how many mappings were released, or -1
/// where this cannot be done.
int cairn_release_code_pages(void);
