@_spi(CustomByteBufferAllocator) import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The allocator of a hub connection's buffers: one of 16 KiB or more gets pages of its own from the kernel, so only
/// the pages written to hold memory; smaller ones come from malloc as usual.
///
/// NIOSSL keeps two such buffers for a connection's whole life — 32 KiB it decrypts into and 16 KiB it encrypts into
/// (`NIOSSLHandler.handlerAdded`, `ByteBufferBIO.init`) — and an idle site's connection writes a few hundred bytes
/// at the start of each. From malloc they were whole: the heap they come from is memory earlier connections and
/// requests already wrote to, so all 48 KiB of them stayed resident, for each of 10,000 connections (half of an idle
/// hub's memory per site). Mapped apart, a page nobody writes to is never resident.
///
/// When the kernel will not map (out of memory, or of mappings: each is one, though neighbours usually merge), the
/// buffer comes from malloc after all.
enum TouchedPages {
    /// Buffers this large or larger are mapped: NIOSSL's two, and big reads and writes (whose pages are all written).
    static let threshold = 16 * 1024

    static let allocator: ByteBufferAllocator = {
        #if canImport(Glibc)
        ByteBufferAllocator(allocate: allocate, reallocate: reallocate, deallocate: deallocate, copy: copy)
        #else
        ByteBufferAllocator()
        #endif
    }()

    #if canImport(Glibc)
    /// Each mapped buffer's address and length: `deallocate` is given only the address. A mapping starts on a page,
    /// and few malloc'd buffers do, so only those are looked up here.
    static let mapped = Mutex<[UInt: Int]>([:])
    static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    static func isPageAligned(_ pointer: UnsafeMutableRawPointer) -> Bool {
        UInt(bitPattern: pointer) % UInt(pageSize) == 0
    }

    /// The length of the mapping at `pointer`, if it is one.
    static func mappedLength(_ pointer: UnsafeMutableRawPointer) -> Int? {
        guard isPageAligned(pointer) else { return nil }
        return mapped.withLock { $0[UInt(bitPattern: pointer)] }
    }

    static let allocate: @convention(c) (Int) -> UnsafeMutableRawPointer? = { size in
        guard size >= TouchedPages.threshold else { return malloc(size) }
        let length = (size + TouchedPages.pageSize - 1) / TouchedPages.pageSize * TouchedPages.pageSize
        let pages = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let pages, pages != MAP_FAILED else { return malloc(size) }
        TouchedPages.mapped.withLock { $0[UInt(bitPattern: pages)] = length }
        return pages
    }

    static let reallocate: @convention(c) (UnsafeMutableRawPointer?, Int, Int) -> UnsafeMutableRawPointer? = { pointer, oldSize, newSize in
        guard let pointer else { return TouchedPages.allocate(newSize) }
        let length = TouchedPages.mappedLength(pointer)
        if length == nil, newSize < TouchedPages.threshold { return realloc(pointer, newSize) }
        if let length, newSize <= length { return pointer }
        guard let moved = TouchedPages.allocate(newSize) else { return nil }
        moved.copyMemory(from: pointer, byteCount: min(oldSize, newSize))
        TouchedPages.deallocate(pointer)
        return moved
    }

    static let deallocate: @convention(c) (UnsafeMutableRawPointer) -> Void = { pointer in
        if TouchedPages.isPageAligned(pointer), let length = TouchedPages.mapped.withLock({ $0.removeValue(forKey: UInt(bitPattern: pointer)) }) {
            munmap(pointer, length)
        } else {
            free(pointer)
        }
    }

    static let copy: @convention(c) (UnsafeMutableRawPointer, UnsafeRawPointer, Int) -> Void = { destination, source, count in
        destination.copyMemory(from: source, byteCount: count)
    }
    #endif
}
