import AsyncHTTPClient
import CairnCommon
import CairnTestSupport
import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization
import Testing

/// What the hub does when a connection goes wrong underneath HTTP, from a raw HTTP/2 client on 127.0.0.1.
@Suite struct TransportTests {
    /// Between the socket and TLS: when armed, the next ciphertext written is followed, in the same write, by a copy
    /// of itself with its last byte flipped — a record that can never decrypt, arriving right behind a good one.
    final class CorruptNextWrite: ChannelOutboundHandler, Sendable {
        typealias OutboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let armed = Mutex(false)

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            var buffer = unwrapOutboundIn(data)
            if armed.withLock({ armed in defer { armed = false }; return armed }) {
                var copy = buffer
                let last = copy.writerIndex - 1
                copy.setInteger(copy.getInteger(at: last, as: UInt8.self)! ^ 0xFF, at: last)
                buffer.writeBuffer(&copy)
            }
            context.write(wrapOutboundOut(buffer), promise: promise)
        }
    }

    /// Between TLS and HTTP/2: when armed, nothing the hub sends reaches the client's HTTP/2 — a peer whose link died
    /// without a word, which never acknowledges anything again.
    final class GoesDeaf: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let armed = Mutex(false)

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if !armed.withLock({ $0 }) { context.fireChannelRead(data) }
        }
    }

    typealias Streams = NIOHTTP2Handler.AsyncStreamMultiplexer<Void>

    /// GET `path` on a new stream; the response's :status. Bounded: a stream the hub leaves open fails the test.
    func get(_ path: String, on streams: Streams) async throws -> String? {
        try await ask("GET", path, on: streams)
    }

    /// `method` `path` on a new stream with `headers` and no body, the stream left open for one when `bodyFollows`;
    /// the response's :status. Bounded: a stream the hub leaves unanswered fails the test.
    func ask(_ method: String, _ path: String, headers: [(String, String)] = [], bodyFollows: Bool = false, on streams: Streams) async throws -> String? {
        let answer = Task { try await exchange(method, path, headers: headers, bodyFollows: bodyFollows, on: streams) }
        return try await value(of: answer, within: 10, "no answer to \(method) \(path) on its stream")
    }

    func exchange(_ method: String, _ path: String, headers: [(String, String)], bodyFollows: Bool, on streams: Streams) async throws -> String? {
        let stream = try await streams.openStream { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<HTTP2Frame.FramePayload, HTTP2Frame.FramePayload>(wrappingChannelSynchronously: channel)
            }
        }
        return try await stream.executeThenClose { inbound, outbound in
            let request = HPACKHeaders([(":method", method), (":scheme", "https"), (":authority", "localhost"), (":path", path)] + headers)
            try await outbound.write(.headers(.init(headers: request, endStream: !bodyFollows)))
            for try await payload in inbound {
                if case .headers(let response) = payload { return response.headers.first(name: ":status") }
            }
            return nil
        }
    }

    /// A raw HTTP/2 connection to the hub, with `corrupt` between the socket and TLS.
    func connect(_ hub: TestHub, corrupt: CorruptNextWrite = CorruptNextWrite(), deaf: GoesDeaf = GoesDeaf()) async throws -> (channel: any Channel, streams: Streams) {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(hub.caPath)
        tls.applicationProtocols = ["h2"]
        let context = try NIOSSLContext(configuration: tls)
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: hub.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(corrupt)
                    try pipeline.addHandler(NIOSSLClientHandler(context: context, serverHostname: "localhost"))
                    try pipeline.addHandler(deaf)
                    let streams = try pipeline.configureAsyncHTTP2Pipeline(mode: .client) { $0.eventLoop.makeSucceededVoidFuture() }
                    return (channel, streams)
                }
            }
    }

    @Test func `a record that fails to decrypt behind a request closes that connection, and the hub keeps serving`() async throws {
        let directory = try TemporaryDirectory("transport-record")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let corrupt = CorruptNextWrite()
        let (channel, streams) = try await connect(hub, corrupt: corrupt)
        #expect(try await get("/healthz", on: streams) == "200")

        // A request, then a record that cannot decrypt, in one read: the connection closes.
        corrupt.armed.withLock { $0 = true }
        _ = try? await get("/healthz", on: streams)
        try await eventually("the connection closed by the hub") { !channel.isActive }

        // Everyone else is still served.
        #expect(try await hub.admin { try await $0.clusters() }.isEmpty)
        try await hub.stop()
    }

    @Test func `a hub whose tasks are cancelled closes its connections instead of trapping on the next request`() async throws {
        let directory = try TemporaryDirectory("transport-cancel")
        defer { directory.remove() }
        // Cancelled (as when one of its services fails), a hub must stop taking requests on its open connections by
        // closing them. Before, a request decoded in the moment between the cancellation and the close went to a
        // stream nobody would take, which trapped the process (this test's, here): requests are kept coming from
        // several streams at once while the hub is cancelled, a few times over.
        for round in 0..<10 {
            let hub = try await TestHub(stateDirectory: directory.appending("hub\(round)"))
            let (channel, streams) = try await connect(hub)
            #expect(try await get("/healthz", on: streams) == "200")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        for _ in 0..<10_000 where channel.isActive { _ = try? await get("/healthz", on: streams) }
                    }
                }
                try await hub.cancel()
                try await group.waitForAll()
            }
            #expect(!channel.isActive)
        }
    }

    /// A stopping server asks its connections to quiesce and waits for them to close; a connection still in its
    /// TLS handshake never heard it (HTTP/2 was not on it yet), and one that never sent a byte stayed open for ever —
    /// the hub's stop with it. (A stop cut short by the grace period would hide that: it is longer than the test's
    /// wait here.)
    @Test func `a connection that never finished its handshake does not hold up the hub's stop`() async throws {
        let directory = try TemporaryDirectory("transport-silent")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub")) {
            $0.stopGraceSeconds = 600
            $0.handshakeTimeoutSeconds = 600
        }
        let silent = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: hub.port).get()
        // One more, in the middle of its handshake: the hub has answered its ClientHello when the stop begins.
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        tls.applicationProtocols = ["h2"]
        let context = try NIOSSLContext(configuration: tls)
        let stopsReading = StopsReading()
        let handshake = HandshakeEnds()
        let halfway = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(stopsReading)
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(handshake)
                }
            }
            .connect(host: "127.0.0.1", port: hub.port).get()
        try await eventually("the hub's answer to the ClientHello") { stopsReading.read.withLock { $0 } }
        #expect(!handshake.ended.withLock { $0 }, "the client (so the hub too) is still in its handshake")
        try await hub.stop()
        try await eventually("both connections closed by the hub") { !silent.isActive && !halfway.isActive }
    }

    /// A connection that never gets through its handshake — a port probe, a link that died at the wrong moment —
    /// is closed when its time is up, so such connections cannot pile up while the hub runs.
    @Test func `a connection that takes too long over its handshake is closed`() async throws {
        let directory = try TemporaryDirectory("transport-handshake")
        defer { directory.remove() }
        // Long enough for a handshake on a loaded machine (a debug build, the whole suite beside it).
        let hub = try await TestHub(stateDirectory: directory.appending("hub")) { $0.handshakeTimeoutSeconds = 3 }
        let silent = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: hub.port).get()
        try await eventually("the silent connection closed by the hub", timeout: 15) { !silent.isActive }
        // One that does finish in time is served past the limit.
        let (channel, streams) = try await connect(hub)
        try await Task.sleep(for: .seconds(3.5))
        #expect(try await get("/healthz", on: streams) == "200")
        #expect(channel.isActive)
        try await hub.stop()
    }

    /// Under TLS: passes on the first bytes the hub sends, then reads nothing more (so the handshake never ends).
    final class StopsReading: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let read = Mutex(false)

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let first = read.withLock { read in defer { read = true }; return !read }
            if first { context.fireChannelRead(data) }
        }
    }

    /// Above TLS: whether the handshake has ended.
    final class HandshakeEnds: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let ended = Mutex(false)

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted = event as? TLSUserEvent { ended.withLock { $0 = true } }
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// On a stop, the hub sends GOAWAY and a PING, and closes the connection once the PING is answered and its
    /// streams are done. A peer gone silent answers nothing: after the grace period the hub closes it anyway.
    @Test func `a peer that never answers the hub's goodbye is cut off after the stop's grace period`() async throws {
        let directory = try TemporaryDirectory("transport-deaf")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub")) { $0.stopGraceSeconds = 1 }
        let deaf = GoesDeaf()
        let (channel, streams) = try await connect(hub, deaf: deaf)
        #expect(try await get("/healthz", on: streams) == "200")
        deaf.armed.withLock { $0 = true }
        try await hub.stop()
        try await eventually("the connection closed by the hub") { !channel.isActive }
    }

    /// A body declared larger than the hub takes is refused before any of it is read: here none is ever sent, and
    /// the hub answers all the same.
    @Test func `a request whose declared length is past the limit is refused before its body is read`() async throws {
        let directory = try TemporaryDirectory("transport-declared")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let (channel, streams) = try await connect(hub)
        let headers = [
            ("authorization", "Bearer \(hub.adminToken)"), ("content-type", "application/json"), ("content-length", String(17 * 1024 * 1024)),
        ]
        #expect(try await ask("PUT", "/api/v1/clusters/c1/works/w", headers: headers, bodyFollows: true, on: streams) == "413")
        try await channel.close()
        try await hub.stop()
    }

    @Test(arguments: [HTTPVersion.http2, .http1_1])
    func `a request answered before its body is read ends its stream, and the client can shut down`(version: HTTPVersion) async throws {
        let directory = try TemporaryDirectory("transport-early")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let tls = try TrustMaterial.clientTLS(roots: TrustMaterial.certificates(pem: String(contentsOfFile: hub.caPath, encoding: .utf8)))
        var configuration = HTTPClient.Configuration()
        if version == .http1_1 { configuration.httpVersion = .http1Only }
        // Refused on its token (401) and on its size (413) while megabytes are still to come. AsyncHTTPClient
        // pauses such an upload and, over HTTP/2, leaves the stream open: unless the hub ends the stream, the
        // client's shutdown waits for it forever (cairnctl hung after the error; so did tests). HTTP/1.1 is
        // served the same way, its connection closed by the client.
        // (`withHTTPClient` fails the test when the shutdown takes longer than 30 s.)
        for token in ["nope", hub.adminToken] {
            var request = HTTPClientRequest(url: hub.url + "/api/v1/clusters/c1/works/w")
            request.tlsConfiguration = tls
            request.method = .PUT
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.body = .bytes(Array(repeating: UInt8(ascii: " "), count: 17 * 1024 * 1024))
            let response = try await withHTTPClient(configuration: configuration) { http in
                let response = try await http.execute(request, timeout: .seconds(30))
                _ = try await response.body.collect(upTo: 1 << 20)
                return response
            }
            #expect(response.version == version)
            #expect([401, 413].contains(response.status.code))
        }
        // And an ordinary request over the same version is served.
        var request = HTTPClientRequest(url: hub.url + "/healthz")
        request.tlsConfiguration = tls
        let response = try await withHTTPClient(configuration: configuration) { http in
            let response = try await http.execute(request, timeout: .seconds(30))
            _ = try await response.body.collect(upTo: 1024)
            return response
        }
        #expect(response.status == .ok && response.version == version)
        // Every answer says when (RFC 9110 §6.6.1: a server with a clock sends Date) and who.
        let date = try #require(response.headers.first(name: "Date"))
        let parser = DateFormatter()
        parser.locale = Locale(identifier: "en_US_POSIX")
        parser.timeZone = TimeZone(identifier: "GMT")
        parser.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let sent = try #require(parser.date(from: date), "Date: \(date)")
        #expect(abs(sent.timeIntervalSinceNow) < 60, "Date: \(date)")
        #expect(response.headers.first(name: "Server") == "cairn-hub")
        try await hub.stop()
    }
}
