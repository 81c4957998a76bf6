@testable import CairnHub
import CairnTestSupport
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import NIOSSL
import Synchronization
import Testing

/// A whole hub connection (`HubChannel`: TLS, the guard, HTTP/2 and the loop that serves its streams) on in-memory
/// channels, where the order of events is exact.
@Suite struct HubChannelTests {
    /// Counts the streams the connection opens.
    final class StreamOpened: ChannelInboundHandler, RemovableChannelHandler, Sendable {
        typealias InboundIn = Any
        let counts: Counts

        init(_ counts: Counts) { self.counts = counts }

        func handlerAdded(context: ChannelHandlerContext) { counts.opened.withLock { $0 += 1 } }
    }

    final class Counts: Sendable {
        let opened = Mutex(0)
    }

    final class Negotiated: Sendable {
        let value = Mutex<HubChannel.Value?>(nil)
    }

    /// One hub connection and its client, negotiated to HTTP/2.
    final class Connection: Sendable {
        let counts = Counts()
        let server = NIOAsyncTestingChannel()
        let client = NIOAsyncTestingChannel()
        let logger = Logger(label: "test")
        let hub: HubChannel
        let streams: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>
        let negotiated = Negotiated()

        init(pki: HubPKI) async throws {
            let (server, client, logger, negotiated, counts) = (server, client, logger, negotiated, counts)
            hub = try HubChannel(tls: try pki.serverTLS(), responder: { _, writer, _ in
                try await writer.writeResponse(.init(status: .ok))
            }, streamHandlers: { [StreamOpened(counts)] })
            let hub = hub
            try await server.testingEventLoop.executeInContext {
                hub.setup(channel: server, logger: logger).whenSuccess { value in negotiated.value.withLock { $0 = value } }
            }
            var clientTLS = TLSConfiguration.makeClientConfiguration()
            clientTLS.certificateVerification = .none
            clientTLS.applicationProtocols = ["h2"]
            let sslContext = try NIOSSLContext(configuration: clientTLS)
            streams = try await client.testingEventLoop.executeInContext {
                try client.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: nil))
                return try client.pipeline.syncOperations.configureAsyncHTTP2Pipeline(mode: .client) { $0.eventLoop.makeSucceededVoidFuture() }
            }
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: 443)
            try await server.connect(to: address)
            try await client.connect(to: address)
            try await exchange()
        }

        /// Moves what each side wrote to the other until neither writes any more.
        func exchange() async throws {
            for _ in 0..<50 {
                var moved = false
                while let bytes = try await client.readOutbound(as: ByteBuffer.self) { try await server.writeInbound(bytes); moved = true }
                while let bytes = try await server.readOutbound(as: ByteBuffer.self) { try await client.writeInbound(bytes); moved = true }
                if !moved { return }
            }
        }

        /// What the client sends to ask `count` requests at once.
        func requests(_ count: Int) async throws -> ByteBuffer {
            try await opening(count, on: streams, of: client)
        }

        /// The next thing the hub writes, waiting at most five seconds.
        func nextFromHub() async throws -> ByteBuffer? {
            for _ in 0..<500 {
                if let bytes = try await server.readOutbound(as: ByteBuffer.self) { return bytes }
                try await Task.sleep(for: .milliseconds(10))
            }
            return nil
        }

        func finish(closeNotify: ByteBuffer?) async throws {
            // The client hears the hub's close_notify, so its own close need not wait for one.
            if let closeNotify { _ = try? await client.writeInbound(closeNotify) }
            _ = try await client.finish(acceptAlreadyClosed: true)
            _ = try await server.finish(acceptAlreadyClosed: true)
        }
    }

    func withPKI(_ body: (HubPKI) async throws -> Void) async throws {
        let directory = try TemporaryDirectory("hubchannel")
        defer { directory.remove() }
        try await body(try HubPKI.loadOrCreate(directory: directory.appending("pki"), names: ["localhost"]))
    }

    /// Hummingbird's server hands each negotiated connection to `handle` from a loop; when the server's task is
    /// cancelled the loop stops, and connections negotiated but not yet taken are dropped — open, with nobody
    /// reading their streams. A request on one then opened a stream whose handover failed, and the stream was
    /// dropped unfinished, which trapped the process (CI, once: this backtrace). The hub now closes such a
    /// connection and answers what arrives until it is closed.
    @Test func `a negotiated connection the server drops unserved is closed without stopping the process`() async throws {
        try await withPKI { pki in
            let connection = try await Connection(pki: pki)
            #expect(connection.negotiated.value.withLock { $0 } != nil, "the connection negotiated HTTP/2")
            connection.negotiated.value.withLock { $0 = nil }
            let closeNotify = try await connection.nextFromHub()
            #expect(closeNotify != nil, "the hub closes the connection it was not asked to serve")

            try await connection.server.writeInbound(try await connection.requests(2))
            await connection.server.testingEventLoop.run()
            #expect(connection.counts.opened.withLock { $0 } == 2)

            // The client answers the close; the connection ends.
            if let closeNotify { _ = try? await connection.client.writeInbound(closeNotify) }
            try await connection.exchange()
            for _ in 0..<500 where connection.server.isActive { try await Task.sleep(for: .milliseconds(10)) }
            #expect(!connection.server.isActive)
            try await connection.finish(closeNotify: nil)
        }
    }
}

/// The bytes an HTTP/2 client (`streams` on `client`) sends to open `count` streams, each a GET: what the hub reads
/// in one go when a client's requests arrive together.
func opening(_ count: Int, on streams: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>, of client: NIOAsyncTestingChannel) async throws -> ByteBuffer {
    let request = HPACKHeaders([(":method", "GET"), (":scheme", "https"), (":authority", "hub"), (":path", "/healthz")])
    for _ in 0..<count {
        let stream = try await streams.openStream { $0.eventLoop.makeSucceededFuture($0) }
        try await stream.writeAndFlush(HTTP2Frame.FramePayload.headers(.init(headers: request, endStream: true)))
    }
    var bytes = ByteBuffer()
    while var chunk = try await client.readOutbound(as: ByteBuffer.self) { bytes.writeBuffer(&chunk) }
    return bytes
}

@Suite struct HTTPDatesTests {
    @Test func `the Date header is RFC 9110's IMF-fixdate`() {
        #expect(HTTPDates.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDates.format(1_795_305_600) == "Sun, 22 Nov 2026 00:00:00 GMT")
    }
}
