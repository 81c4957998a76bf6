import NIOCore
import NIOPosix
import Synchronization

/// A TCP proxy on 127.0.0.1 between an agent and the hub that misbehaves on demand: passes bytes through,
/// delays them, cuts each connection after some bytes (mid-TLS-record, mid-body), or resets new connections.
public final class FaultProxy: Sendable {
    public enum Mode: Sendable, Equatable {
        case pass
        case delay(milliseconds: Int64)
        /// Closes both sides once this many bytes went through a connection (either way).
        case cutAfter(bytes: Int)
        /// Answers every new connection with a TCP reset.
        case reset
        /// Accepts and reads everything, forwards nothing, closes nothing: a link that silently went dark.
        case blackHole
    }

    let mode = Mutex(Mode.pass)
    let counters = Mutex((connections: 0, open: 0, cuts: 0, resets: 0))
    let channel: any Channel
    public let port: Int
    public var url: String { "https://127.0.0.1:\(port)" }

    public var connections: Int { counters.withLock { $0.connections } }
    /// Connections from the agent not yet closed.
    public var open: Int { counters.withLock { $0.open } }
    public var cuts: Int { counters.withLock { $0.cuts } }
    public var resets: Int { counters.withLock { $0.resets } }

    public func set(_ mode: Mode) { self.mode.withLock { $0 = mode } }

    public init(to targetPort: Int) async throws {
        let box = ProxyBox()
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                guard let proxy = box.proxy.withLock({ $0 }) else { return inbound.close() }
                return proxy.accept(inbound, targetPort: targetPort)
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
        box.proxy.withLock { $0 = self }
    }

    public func stop() async throws {
        try await channel.close()
    }

    func accept(_ inbound: any Channel, targetPort: Int) -> EventLoopFuture<Void> {
        counters.withLock {
            $0.connections += 1
            $0.open += 1
        }
        inbound.closeFuture.whenComplete { _ in self.counters.withLock { $0.open -= 1 } }
        if mode.withLock({ $0 }) == .reset {
            counters.withLock { $0.resets += 1 }
            // SO_LINGER 0 makes close send RST instead of FIN.
            guard let provider = inbound as? any SocketOptionProvider else { return inbound.close() }
            return provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).flatMap { inbound.close() }
        }
        let connection = ProxyConnection(proxy: self)
        return ClientBootstrap(group: inbound.eventLoop)
            .channelInitializer { outbound in outbound.pipeline.addHandler(Relay(connection: connection, toward: inbound)) }
            .connect(host: "127.0.0.1", port: targetPort)
            .flatMap { outbound in
                inbound.pipeline.addHandler(Relay(connection: connection, toward: outbound)).flatMap {
                    inbound.setOption(.autoRead, value: true)
                }
            }
            .flatMapError { _ in inbound.close() }
    }
}

final class ProxyBox: Sendable {
    let proxy = Mutex<FaultProxy?>(nil)
}

/// The bytes one proxied connection has carried, both ways.
final class ProxyConnection: Sendable {
    let proxy: FaultProxy
    let carried = Atomic<Int>(0)
    init(proxy: FaultProxy) { self.proxy = proxy }
}

/// Copies what one side reads to the other, as the proxy's mode says.
final class Relay: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let connection: ProxyConnection
    let toward: any Channel

    init(connection: ProxyConnection, toward: any Channel) {
        self.connection = connection
        self.toward = toward
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let toward = self.toward
        let whole = buffer
        let mode = connection.proxy.mode.withLock { $0 }
        switch mode {
        case .pass:
            toward.writeAndFlush(buffer, promise: nil)
        case .blackHole:
            return
        case .reset:
            // Connections open from before are dropped too, not only new ones.
            toward.close(promise: nil)
            context.close(promise: nil)
        case .delay(let milliseconds):
            context.eventLoop.scheduleTask(in: .milliseconds(milliseconds)) { toward.writeAndFlush(whole, promise: nil) }
        case .cutAfter(let limit):
            let before = connection.carried.wrappingAdd(buffer.readableBytes, ordering: .relaxed).oldValue
            guard before < limit else { return }
            if before + buffer.readableBytes > limit, let slice = buffer.readSlice(length: limit - before) {
                connection.proxy.counters.withLock { $0.cuts += 1 }
                let channel = context.channel
                toward.writeAndFlush(slice).whenComplete { _ in
                    toward.close(promise: nil)
                    channel.close(promise: nil)
                }
                return
            }
            toward.writeAndFlush(buffer, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        toward.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
