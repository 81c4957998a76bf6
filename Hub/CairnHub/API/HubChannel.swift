import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOHTTPTypes
import NIOSSL
import NIOTLS
import Synchronization

/// The hub's connections: TLS, then HTTP/2 where the client offers it (ALPN) so a site's long-poll, heartbeats and
/// status reports share one connection, HTTP/1.1 for everyone else.
///
/// Hummingbird's HTTP/2 channel, made safe to stop. NIOHTTP2 hands each new stream to the connection's loop; a stream
/// the loop no longer takes is dropped with its writer unfinished, which traps the process (NIOAsyncWriter's deinit).
/// The loop is gone while the connection is still open in three ways, each of which stopped the hub or a test run:
/// the loop stopped at the first error on the connection, or when its task was cancelled, while a TLS close waits for
/// the peer's close_notify (`ReadsEndAtFirstError` and `serve`); and the server, when its task is cancelled, drops
/// connections negotiated but not yet handed to `handle` (`Connection`).
struct HubChannel: ServerChildChannel {
    let upgrade: HTTP2UpgradeChannel
    /// How long a connection may take to get through TLS and ALPN (`UnnegotiatedCloses`).
    let negotiationLimit: TimeAmount

    static func builder(tls: TLSConfiguration, negotiationLimit: Duration) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in try HubChannel(tls: tls, responder: responder, negotiationLimit: negotiationLimit) }
    }

    /// `streamHandlers` go on each HTTP/2 stream after the hub's own (tests use them to act in the middle of a read).
    init(
        tls: TLSConfiguration, responder: @escaping HTTPChannelHandler.Responder, negotiationLimit: Duration = .seconds(30),
        streamHandlers: @escaping @Sendable () -> [any RemovableChannelHandler] = { [] }
    ) throws {
        let streams = HTTP1Channel.Configuration(additionalChannelHandlers: [AnsweredStreamEnds()] + streamHandlers())
        upgrade = try HTTP2UpgradeChannel(tlsConfiguration: tls, configuration: .init(streamConfiguration: streams), responder: responder)
        self.negotiationLimit = TimeAmount(negotiationLimit)
    }

    /// A negotiated connection. Hummingbird's server takes each from a loop and hands it to `handle`; when the
    /// server's task is cancelled that loop stops, and connections waiting to be taken are dropped — open, their
    /// stream sequence gone with them, so the next request on one trapped the process. One dropped unserved is
    /// served here instead, as a cancelled one: closed, and its requests answered until it is.
    final class Connection: ServerChildChannelValue {
        let negotiated: HTTP2UpgradeChannel.Value
        let upgrade: HTTP2UpgradeChannel
        let logger: Logger
        let taken = Atomic(false)

        var channel: any Channel { negotiated.channel }

        init(_ negotiated: HTTP2UpgradeChannel.Value, upgrade: HTTP2UpgradeChannel, logger: Logger) {
            self.negotiated = negotiated
            self.upgrade = upgrade
            self.logger = logger
        }

        deinit {
            guard !taken.load(ordering: .acquiring) else { return }
            logger.debug("closing a connection the server dropped before serving it")
            // The task holds the connection's stream sequence from here on: it is never without a reader.
            let (negotiated, upgrade, logger) = (negotiated, upgrade, logger)
            Task { await HubChannel.serve(negotiated, upgrade: upgrade, logger: logger) }.cancel()
        }
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Connection> {
        // Before TLS takes its buffers from it.
        _ = try? channel.syncOptions?.setOption(.allocator, value: TouchedPages.allocator)
        let negotiated = upgrade.setup(channel: channel, logger: logger)
        do {
            let pipeline = channel.pipeline.syncOperations
            let tls = try pipeline.handler(type: NIOSSLHandler.self)
            try pipeline.addHandler(ReadsEndAtFirstError(), position: .after(tls))
            try pipeline.addHandler(CopiesReads(), position: .after(tls))
            try pipeline.addHandler(UnnegotiatedCloses(limit: negotiationLimit), position: .after(tls))
        } catch {
            // Never serve a connection without the guard.
            channel.close(promise: nil)
            return negotiated.flatMapThrowing { _ in throw error }
        }
        return negotiated.map { [upgrade] in Connection($0, upgrade: upgrade, logger: logger) }
    }

    func handle(value: Connection, logger: Logger) async {
        value.taken.store(true, ordering: .releasing)
        await Self.serve(value.negotiated, upgrade: upgrade, logger: logger)
    }

    /// Serves the connection until it closes. The server's cancellation does not reach the loop directly: it closes
    /// the connection, and only once it is closed — NIOHTTP2 has then ended its stream sequence itself, on the event
    /// loop, and reads nothing more — are the loop and the requests still running cancelled.
    static func serve(_ negotiated: HTTP2UpgradeChannel.Value, upgrade: HTTP2UpgradeChannel, logger: Logger) async {
        let connection = Task { await upgrade.handle(value: negotiated, logger: logger) }
        await withTaskCancellationHandler {
            await connection.value
        } onCancel: {
            let channel = negotiated.channel
            // Once the event loop has finished what it was doing (the close can complete in the middle of a read),
            // so NIOHTTP2 has heard the connection end before its sequence's reader goes.
            channel.close().whenComplete { _ in channel.eventLoop.execute { connection.cancel() } }
        }
    }
}

/// A connection not yet through TLS and ALPN closes when the server stops, and when it has taken `limit` to get there.
///
/// A stopping server asks each open connection to quiesce (`ChannelShouldQuiesceEvent`) and waits for all of them to
/// close. HTTP/1 and HTTP/2 hear that event only once negotiation has put them on the connection; before, it passes
/// through TLS and ALPN to nobody. So a connection in the middle of its handshake when the stop began was then served
/// as if nothing had happened — a site's long-poll, answered and asked again, for ever — and one that never sent a
/// byte (a half-open link, a port probe) stayed open for ever: either held the hub's stop until the test waiting for
/// it gave up (`CARotationTests`, in CI) or, for a daemon, until systemd killed it. Nothing has been asked on such a
/// connection yet, so closing it loses nothing; its client connects again, to whichever hub is there. The limit also
/// keeps connections that never finish a handshake from piling up while the hub runs. Sits right after TLS, which
/// tells it when the handshake is done.
final class UnnegotiatedCloses: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let limit: TimeAmount
    private var deadline: Scheduled<Void>?

    init(limit: TimeAmount) { self.limit = limit }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: limit) { loopBound.value.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is ChannelShouldQuiesceEvent:
            context.close(promise: nil)
        case let tls as TLSUserEvent:
            context.fireUserInboundEventTriggered(event)
            // ALPN puts HTTP on the connection as it hears the handshake end: from here on, HTTP hears a stop.
            if case .handshakeCompleted = tls { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }
}

/// On an HTTP/2 stream, a response that ends before its request does ends the stream (RST_STREAM).
///
/// The hub may answer before it has read a request's body — refused on its token, its size, or under load. RFC 9113
/// §8.1 lets a server then reset the stream, and a client must: AsyncHTTPClient (the agent, cairnctl) pauses such an
/// upload and, over HTTP/2, leaves its stream open, while Hummingbird waits for the rest of the body — so the stream
/// stays open on both sides and the client's shutdown never returns. (HTTP/1.1 connections pass through untouched:
/// the client closes those itself.)
final class AnsweredStreamEnds: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart
    private var isStream = false
    private var requestEnded = false

    func handlerAdded(context: ChannelHandlerContext) {
        // listener → connection → stream: only an HTTP/2 stream's channel has a parent with a parent of its own.
        // (Asking a plain socket channel for an HTTP/2 option is a fatal error in NIO, not a thrown one.)
        isStream = context.channel.parent?.parent != nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) { requestEnded = true }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard isStream, !requestEnded, case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        let written = promise ?? context.eventLoop.makePromise()
        context.write(data, promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}

/// Hands HTTP what TLS decrypted in a buffer of its own, sized to it, so TLS can keep decrypting into the one it has.
///
/// NIOSSL decrypts into a 32 KiB buffer it keeps for the connection and passes that buffer on; NIOHTTP2's frame
/// decoder holds the last buffer it was given until more arrives. So the next read finds the buffer shared, and
/// NIOSSL copies it (copy-on-write) into a new 32 KiB one: every idle connection held two. Copying the few bytes of a
/// request here costs far less than the 32 KiB per connection it saves (see BENCHMARKS.md). Sits right after TLS.
final class CopiesReads: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let read = unwrapInboundIn(data)
        context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(buffer: read)))
    }
}

/// Once a connection reports an error, nothing more read on it reaches HTTP, and it closes; and HTTP hears of an
/// error or the connection's end only once it has finished with what it was reading.
///
/// NIOHTTP2 ends a connection's sequence of new streams at the first error it sees, and when the connection goes
/// inactive (`HubChannel`); a stream opened after that is dropped unfinished, which traps the process. Both can
/// happen in the middle of a read: NIOHTTP2 decodes every frame of a read in one loop, a frame can make it write
/// (a reset stream, a settings ack), and a write to a socket the peer has just reset closes the connection then and
/// there — the error and the end arrive re-entrantly while frames later in the same read, new streams among them,
/// are still to be decoded. (Seen three or four times a test run; one crashed CI.) So the two events wait here
/// until the read in progress returns, and nothing read afterwards passes. Sits between TLS and HTTP.
final class ReadsEndAtFirstError: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum Held {
        case error(any Error)
        case inactive
    }

    private var failed = false
    /// Reads in progress (a read can start another, re-entrantly).
    private var reading = 0
    private var held: [Held] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        reading += 1
        context.fireChannelRead(data)
        reading -= 1
        guard reading == 0, !held.isEmpty else { return }
        let events = held
        held = []
        for event in events {
            switch event {
            case .error(let error): context.fireErrorCaught(error)
            case .inactive: context.fireChannelInactive()
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if reading > 0 {
            held.append(.inactive)
        } else {
            context.fireChannelInactive()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failed = true
        if reading > 0 {
            held.append(.error(error))
        } else {
            context.fireErrorCaught(error)
        }
        context.close(promise: nil)
    }
}
