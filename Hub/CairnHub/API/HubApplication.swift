import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A service the hub's executable runs as a daemon.
public protocol HubService: Service {
    /// Runs until SIGTERM or SIGINT, then shuts down gracefully.
    func runService() async throws
}

/// The hub's HTTP service: what Hummingbird's `Application.run` does, less its date cache.
///
/// Hummingbird's application keeps the Date header fresh with a service that ticks every second through
/// `cancelOnGracefulShutdown()`, a `merge` of swift-async-algorithms 1.1.4 (the newest here). Its `next()` holds a lock
/// while it registers its continuation, and Swift 6.0–6.3 may re-enqueue the task in between; the merge's next tick,
/// run on the event loop the continuation is queued behind, then waits for that lock for ever — the event loop is
/// dead (apple/swift-async-algorithms#430; the fix, #444, is not released). Seen here: a hub that would not stop
/// after a 10,000-site bench, one of its two event loops blocked in `MergeStorage.iterateAsyncSequence` (gdb), and a
/// CI run in which a test hub "did not shut down gracefully" and a test beside it timed out (most likely the same: a
/// test process's hubs share its event loops).
/// The Date header here is formatted when the second changes, on the request's own path; nothing ticks.
///
/// Public for the test suite's own servers, which share the event loops of the process that runs them.
public struct HubApplication<Responder: HTTPResponder>: HubService
where Responder.Context: InitializableFromSource<ApplicationRequestContextSource> {
    let responder: Responder
    let server: HTTPServerBuilder
    let address: BindAddress
    let serverName: String
    let services: [any Service]
    let stopGrace: Duration?
    let onServerRunning: @Sendable (any Channel) async -> Void
    let logger: Logger

    public init(
        responder: Responder, server: HTTPServerBuilder, address: BindAddress, serverName: String = "cairn-hub", services: [any Service] = [],
        stopGrace: Duration? = .seconds(10), onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }, logger: Logger
    ) {
        self.responder = responder
        self.server = server
        self.address = address
        self.serverName = serverName
        self.services = services
        self.stopGrace = stopGrace
        self.onServerRunning = onServerRunning
        self.logger = logger
    }

    public func run() async throws {
        let (responder, logger, serverName, dates) = (responder, logger, serverName, HTTPDates())
        let server = try server.buildServer(
            configuration: ServerConfiguration(address: address, serverName: serverName),
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger
        ) { (request, responseWriter: consuming ResponseWriter, channel) in
            var logger = logger
            logger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
            let context = Responder.Context(source: .init(channel: channel, logger: logger))
            var response: Response
            do {
                response = try await responder.respond(to: request, context: context)
            } catch let error as HTTPParserError {
                throw error
            } catch {
                logger.debug("Unrecognised Error", metadata: ["error.type": "\(error)"])
                response = Response(status: .internalServerError, body: .init())
            }
            response.headers[.date] = dates.now
            response.headers[.server] = serverName
            do {
                try await responseWriter.write(response: response.head, body: response.body)
            } catch is HTTPParserError {
                // Throwing the parser error would have Hummingbird write another response; any other ends the connection.
                throw ParseErrorWhileWritingResponse()
            }
        } onServerRunning: { [onServerRunning] in
            await onServerRunning($0)
        }
        // A graceful stop lets requests in flight finish; one that takes longer than `stopGrace` is cut short, as if
        // the process had been cancelled (each connection is closed, then its requests). A peer that has gone without
        // a word never closes its end, and would hold the stop until the service manager killed the hub.
        var group = ServiceGroupConfiguration(services: services + [server], logger: logger)
        group.maximumGracefulShutdownDuration = stopGrace
        try await ServiceGroup(configuration: group).run()
    }

    public func runService() async throws {
        try await ServiceGroup(configuration: .init(services: [self], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
    }
}

struct ParseErrorWhileWritingResponse: Error {}

/// The Date header's value (RFC 9110 §5.6.7), formatted once a second at most.
final class HTTPDates: Sendable {
    private let last = Mutex<(second: Int, text: String)>((-1, ""))

    var now: String {
        let second = Int(Date().timeIntervalSince1970)
        return last.withLock { last in
            if last.second != second { last = (second, Self.format(second)) }
            return last.text
        }
    }

    static func format(_ second: Int) -> String {
        var time = time_t(second)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
