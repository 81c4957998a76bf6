import CairnAgent
import CairnCommon
import Foundation
import Logging
import NIOSSL
import ServiceLifecycle

/// A real agent daemon in this process, talking to a hub over loopback, with the simulated cluster.
public final class TestAgent: Sendable {
    public let daemon: AgentDaemon
    public let site: SimulatedCluster
    public let stateDirectory: String
    let group: ServiceGroup
    let task: Task<Void, any Error>

    public var cache: AgentCache { daemon.cache }

    /// Enrols a new site with `hub`, pinning its CA.
    public convenience init(stateDirectory: String, hub: TestHub, token: String, name: String, labels: [String: String] = [:], resync: Double = 60, readyDelay: Double = 0.05, platform: String = "kubernetes", pollWait: Double = 5, clock: (@Sendable () -> Date)? = nil) throws {
        try self.init(stateDirectory: stateDirectory, hub: hub.url, pin: hub.fingerprint, token: token, name: name, labels: labels, resync: resync, readyDelay: readyDelay, platform: platform, pollWait: pollWait, clock: clock)
    }

    public init(
        stateDirectory: String, hub: String? = nil, pin: String? = nil, token: String? = nil, name: String? = nil, labels: [String: String] = [:],
        resync: Double = 60, readyDelay: Double = 0.05, platform: String = "kubernetes", pollWait: Double = 5, clock: (@Sendable () -> Date)? = nil,
        configure: (inout AgentConfiguration) -> Void = { _ in }
    ) throws {
        var configuration = AgentConfiguration(stateDirectory: stateDirectory)
        configuration.hubURL = hub
        configuration.caFingerprint = pin
        configuration.token = token
        configuration.clusterName = name
        configuration.labels = labels
        configuration.resyncInterval = resync
        configuration.statusInterval = 0.5
        configuration.pollWait = pollWait
        configuration.backoffInitial = 0.05
        configuration.backoffMax = 0.5
        configuration.requestTimeout = 5
        configuration.simulated.readyDelay = readyDelay
        configuration.simulated.platform = platform
        if let clock { configuration.clock = clock }
        configure(&configuration)
        var logger = Logger(label: "test-agent-\(name ?? "resumed")")
        logger.logLevel = .warning
        site = try SimulatedCluster(path: configuration.simulatedClusterPath, configuration: configuration.simulated)
        daemon = try AgentDaemon(configuration: configuration, adapter: site, logger: logger)
        self.stateDirectory = stateDirectory
        group = ServiceGroup(configuration: .init(services: [daemon], logger: logger))
        let group = self.group
        task = Task { try await group.run() }
    }

    public func stop() async throws {
        await group.triggerGracefulShutdown()
        try await value(of: task, within: 30, "the agent did not stop gracefully")
    }

    /// The live object on the site, if any.
    public func object(_ kind: String, _ name: String, namespace: String? = nil, apiVersion: String = "apps/v1") async throws -> JSONValue? {
        try await site.get(ManifestKey(apiVersion: apiVersion, kind: kind, namespace: namespace, name: name))
    }
}

extension TestAgent {
    /// Waits for the daemon to end by itself (for example after refusing to start) and returns its error.
    public func failure(timeout: Double = 10) async throws -> (any Error)? {
        if case .failure(let error) = try await outcome(of: task, within: timeout, "the agent did not stop by itself") { return error }
        return nil
    }

    /// The agent's key and client certificate, as a TLS configuration, to make requests as this site.
    public func clientTLS() throws -> TLSConfiguration {
        guard let identity = try cache.identity() else { throw TimedOut(description: "the agent has no identity yet") }
        return try identity.tls(key: try AgentKey.loadOrCreate(path: daemon.configuration.keyPath))
    }
}
