import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOSSL

/// The hub's connections: TLS, then HTTP/2 where the client offers it (ALPN) so a site's long-poll, heartbeats and
/// status reports share one connection, HTTP/1.1 for everyone else.
///
/// Hummingbird's HTTP/2 channel, made safe to cancel. NIOHTTP2 hands each new stream to the connection's loop; a
/// stream the loop no longer takes is dropped with its writer unfinished, which traps the process (NIOAsyncWriter's
/// deinit). A cancelled loop stops taking streams at once, while the connection it serves stays open until someone
/// closes it — so one request arriving in between stopped the hub. (Errors are not a way in: Hummingbird's connection
/// manager closes the connection in the same event-loop turn as the error that ends the loop.)
struct HubChannel: ServerChildChannel {
    typealias Value = HTTP2UpgradeChannel.Value
    let upgrade: HTTP2UpgradeChannel

    static func builder(tls: TLSConfiguration) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in HubChannel(upgrade: try HTTP2UpgradeChannel(tlsConfiguration: tls, responder: responder)) }
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        upgrade.setup(channel: channel, logger: logger)
    }

    /// Serves the connection until it closes. The server's cancellation does not reach the loop directly: it closes
    /// the connection, and only once it is closed — NIOHTTP2 has then ended its stream sequence itself, on the event
    /// loop, and reads nothing more — are the loop and the requests still running cancelled.
    func handle(value: Value, logger: Logger) async {
        let connection = Task { await upgrade.handle(value: value, logger: logger) }
        await withTaskCancellationHandler {
            await connection.value
        } onCancel: {
            value.channel.close().whenComplete { _ in connection.cancel() }
        }
    }
}
