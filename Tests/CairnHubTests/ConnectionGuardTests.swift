@testable import CairnHub
import CairnTestSupport
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Synchronization
import Testing

/// The guard between TLS and HTTP/2 on each hub connection (`ReadsEndAtFirstError`), on in-memory channels where
/// the order of events is exact.
@Suite struct ConnectionGuardTests {
    typealias Stream = NIOAsyncChannel<HTTP2Frame.FramePayload, HTTP2Frame.FramePayload>

    /// What a plain HTTP/2 client sends to open `count` streams at once (`opening`).
    func clientBytes(opening count: Int) async throws -> ByteBuffer {
        let client = NIOAsyncTestingChannel()
        let streams = try await client.eventLoop.submit {
            try client.pipeline.syncOperations.configureAsyncHTTP2Pipeline(mode: .client) { $0.eventLoop.makeSucceededVoidFuture() }
        }.get()
        try await client.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 443))
        let bytes = try await opening(count, on: streams, of: client)
        _ = try await client.finish(acceptAlreadyClosed: true)
        return bytes
    }

    struct SocketReset: Error {}

    /// In the connection's place: a close asked for while it is open waits (TLS sends close_notify and waits for
    /// the peer's), so what was read goes on being decoded in the meantime.
    final class ClosesLater: ChannelOutboundHandler, Sendable {
        typealias OutboundIn = Any
        let asked = Mutex(false)

        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            if asked.withLock({ asked in defer { asked = true }; return asked }) {
                context.close(mode: mode, promise: promise)
            } else {
                promise?.succeed(())
            }
        }
    }

    /// The socket can fail beneath a read: NIOHTTP2 writes while it decodes (a reset stream, a settings ack), and a
    /// write to a socket the peer has just reset ends the connection then and there — TLS reports an unclean
    /// shutdown and the connection goes inactive, re-entrantly, while frames later in the same read are still to be
    /// decoded. NIOHTTP2 ends its sequence of new streams at the error, yet goes on decoding: a stream opened by a
    /// later frame was dropped unfinished, which traps the process (NIOAsyncWriter's deinit) — it stopped a whole
    /// test run on CI. Here the error arrives as the first of three streams opens.
    @Test func `a connection that fails in the middle of a read still hands over every stream the read opened`() async throws {
        let bytes = try await clientBytes(opening: 3)
        let server = NIOAsyncTestingChannel()
        let opened = Mutex(0)
        let tls = ClosesLater()
        let streams = try await server.eventLoop.submit {
            let pipeline = server.pipeline.syncOperations
            try pipeline.addHandler(tls)
            try pipeline.addHandler(ReadsEndAtFirstError())
            return try pipeline.configureAsyncHTTP2Pipeline(mode: .server) { stream in
                stream.eventLoop.makeCompletedFuture {
                    if opened.withLock({ $0 += 1; return $0 }) == 1 { stream.parent?.pipeline.fireErrorCaught(SocketReset()) }
                    return try Stream(wrappingChannelSynchronously: stream)
                }
            }
        }.get()
        try await server.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 50_000))
        do {
            try await server.writeInbound(bytes)
        } catch is SocketReset {
            // The error reached the end of the pipeline, as it should.
        }
        #expect(tls.asked.withLock { $0 }, "the guard closes the connection")
        #expect(opened.withLock { $0 } == 3)

        // The sequence hands over all three, then ends with the error.
        let received = Task {
            var count = 0
            do {
                for try await stream in streams.inbound {
                    count += 1
                    try await stream.executeThenClose { _, _ in }
                }
            } catch is SocketReset {}
            return count
        }
        #expect(try await value(of: received, within: 10, "the connection's streams") == 3)
        _ = try await server.finish(acceptAlreadyClosed: true)
    }
}
