import CairnCommon
import CairnHub
import CairnTestSupport
import Logging
import Synchronization
import Testing

/// What a logger was given at error level and above.
final class ErrorsLogged: LogHandler, Sendable {
    private let messages = Mutex([String]())
    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }
    var logLevel: Logger.Level {
        get { .error }
        set {}
    }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    func log(event: LogEvent) {
        messages.withLock { $0.append("\(event.message) \(event.metadata ?? [:])") }
    }

    var all: [String] { messages.withLock { $0 } }
}

@Suite struct LeaseMonitorTests {
    @Test func `a lease check the hub's stop interrupts ends quietly`() async throws {
        let directory = try TemporaryDirectory("lease-monitor")
        defer { directory.remove() }
        let store = try SQLiteHubStore(path: directory.appending("hub.sqlite"))
        var configuration = HubConfiguration(stateDirectory: directory.path)
        // Checks back to back, so a stop lands in the middle of one (in a read or write of the store).
        configuration.leaseCheckInterval = 0
        let errors = ErrorsLogged()
        let monitor = LeaseMonitor(
            store: store, configuration: configuration, pacing: HeartbeatPacing(interval: 1, leaseTimeout: 40, heartbeatsPerSecond: 100),
            rescheduled: Wakeup(), logger: Logger(label: "lease-monitor") { _ in errors })
        for _ in 0..<20 {
            let running = Task { try await monitor.run() }
            try await Task.sleep(for: .milliseconds(Int64.random(in: 2...20)))
            running.cancel()
            try await value(of: running, within: 10, "the lease monitor did not stop")
        }
        #expect(errors.all.isEmpty, "a stop is not a failure: \(errors.all)")
    }
}
