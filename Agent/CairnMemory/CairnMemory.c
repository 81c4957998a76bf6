#include "CairnMemory.h"

#if defined(__linux__)
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <sys/mman.h>
#endif

void cairn_release_freed_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

int cairn_release_code_pages(void) {
#if defined(__linux__) && defined(MADV_PAGEOUT)
    FILE *maps = fopen("/proc/self/maps", "re");
    if (maps == NULL) return -1;
    char line[4096];
    int released = 0;
    while (fgets(line, sizeof line, maps) != NULL) {
        unsigned long start, end, inode;
        char perms[5];
        // address range, permissions, offset and device (skipped), inode
        if (sscanf(line, "%lx-%lx %4s %*x %*s %lu", &start, &end, perms, &inode) != 4) continue;
        // Private mappings of files: the program's code, read-only data and initial data, and the libraries'. Their
        // clean pages go back to the page cache (and out of it, when nothing else maps them), to be read again
        // when touched; pages this process wrote (relocations, variables) are its own and stay, swap aside.
        // Shared mappings (SQLite's -shm file) are left alone.
        if (inode == 0 || perms[3] != 'p') continue;
        if (madvise((void *)start, end - start, MADV_PAGEOUT) == 0) released += 1;
    }
    fclose(maps);
    return released;
#else
    return -1;
#endif
}
