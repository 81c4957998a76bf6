import Logging
import ServiceLifecycle

/// A server running in this process until stopped, and the port it bound (ask for port 0 to get a free one).
public struct RunningService: Sendable {
    let group: ServiceGroup
    let task: Task<Void, any Error>
    public let port: Int

    /// `make` builds the service, handing the given callback to it as the place to report its bound port.
    public static func start(logger: Logger, _ make: (_ bound: @escaping @Sendable (Int) -> Void) throws -> some Service) async throws -> RunningService {
        let (stream, continuation) = AsyncStream.makeStream(of: Int.self)
        let service = try make { continuation.yield($0) }
        let group = ServiceGroup(configuration: .init(services: [service], logger: logger))
        let task = Task { try await group.run() }
        // Bounded: a service that fails before binding never reports a port.
        let reported = Task {
            for await port in stream { return port }
            return 0
        }
        let port: Int
        do {
            port = try await value(of: reported, within: 30, "the server did not report its port")
        } catch {
            task.cancel()
            throw error
        }
        continuation.finish()
        return RunningService(group: group, task: task, port: port)
    }

    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await value(of: task, within: 30, "the server did not shut down gracefully")
    }
}

extension RunningService {
    /// Ends the service the way a cancelled process does: its tasks are cancelled, with no graceful shutdown.
    public func cancel() async throws {
        task.cancel()
        _ = try await outcome(of: task, within: 30, "the server did not stop when cancelled")
    }
}
