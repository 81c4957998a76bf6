@testable import CairnHub
import CairnTestSupport
import Glibc
import NIOCore
import Testing

/// The allocator of the hub's connection buffers (`TouchedPages`): a large buffer holds memory only for the pages
/// written to; every buffer keeps its bytes as it grows, whichever way it was allocated.
@Suite(.ownThread) struct TouchedPagesTests {
    /// Of the pages under `buffer`'s storage, how many are resident.
    func residentPages(_ buffer: inout ByteBuffer) -> (resident: Int, pages: Int) {
        let page = TouchedPages.pageSize
        return buffer.withVeryUnsafeMutableBytes { bytes in
            let pages = (bytes.count + page - 1) / page
            var vector = [UInt8](repeating: 0, count: pages)
            let result = mincore(bytes.baseAddress, bytes.count, &vector)
            precondition(result == 0, "mincore: \(errno)")
            return (vector.filter { $0 & 1 == 1 }.count, pages)
        }
    }

    func address(_ buffer: ByteBuffer) -> UInt {
        buffer.withVeryUnsafeBytes { UInt(bitPattern: $0.baseAddress) }
    }

    @Test func `a large buffer holds only the pages written to`() {
        // NIOSSL's read buffer for a connection: 32 KiB, of which an idle site's requests use the start.
        var buffer = TouchedPages.allocator.buffer(capacity: 32 * 1024)
        buffer.writeBytes(Array(repeating: UInt8(7), count: 300))
        #expect(TouchedPages.mapped.withLock { $0[address(buffer)] } != nil, "the buffer has pages of its own")
        let (resident, pages) = residentPages(&buffer)
        #expect(pages == 32 * 1024 / TouchedPages.pageSize)
        #expect(resident == 1, "\(resident) of \(pages) pages resident")
        #expect(buffer.readBytes(length: 300) == Array(repeating: 7, count: 300))
    }

    @Test func `a buffer keeps its bytes as it grows from malloc to pages of its own and on`() {
        let small = TouchedPages.allocator.buffer(capacity: 512)
        #expect(TouchedPages.mapped.withLock { $0[address(small)] } == nil, "a small buffer comes from malloc")
        var buffer = small
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        // 512 B → 1 KiB … 8 KiB (malloc), → 16 KiB (mapped), → 256 KiB (mapped, moved).
        for chunk in stride(from: 0, to: bytes.count, by: 1000) {
            buffer.writeBytes(bytes[chunk..<min(chunk + 1000, bytes.count)])
        }
        #expect(TouchedPages.mapped.withLock { $0[address(buffer)] } != nil)
        #expect(Array(buffer.readableBytesView) == bytes)
        // A copy that is written to gets storage of its own (copy-on-write, through `copy`), with the same bytes.
        var copy = buffer
        copy.writeInteger(UInt8(1))
        #expect(address(copy) != address(buffer))
        #expect(Array(copy.readableBytesView.dropLast()) == bytes)
        #expect(small.capacity == 512 && small.readableBytes == 0)
    }
}
