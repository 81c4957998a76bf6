import AsyncHTTPClient
import CairnCommon
import CairnCtlKit
import CairnHub
import Foundation
import Logging
import ServiceLifecycle

/// A real hub on 127.0.0.1, in this process, with its own state directory.
public final class TestHub: Sendable {
    public let server: HubServer
    public let adminToken: String
    let running: RunningService
    public var port: Int { running.port }

    public var url: String { "https://127.0.0.1:\(port)" }
    /// What a site pins to enrol.
    public var fingerprint: String { server.pki.fingerprint }
    public var caPath: String { server.configuration.caPath }
    public var store: any HubStore { server.store }

    /// Starts a hub; `port` 0 picks a free one. Short intervals keep tests quick.
    public init(
        stateDirectory: String, port: Int = 0, heartbeat: Double = 0.5, leaseTimeout: Double = 40, certificateLifetime: Double = 86_400,
        configure: (inout HubConfiguration) -> Void = { _ in }
    ) async throws {
        var configuration = HubConfiguration(stateDirectory: stateDirectory)
        configuration.port = port
        configuration.heartbeatInterval = heartbeat
        configuration.leaseTimeout = leaseTimeout
        configuration.leaseCheckInterval = 0.2
        configuration.certificateLifetime = certificateLifetime
        configure(&configuration)
        var logger = Logger(label: "test-hub")
        logger.logLevel = .warning
        server = try await HubServer(configuration: configuration, logger: logger)
        let server = self.server
        running = try await RunningService.start(logger: logger) { bound in try server.application { port in bound(port) } }
        adminToken = try String(contentsOfFile: configuration.adminTokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func stop() async throws {
        try await running.stop()
    }

    /// Stops the hub by cancelling its tasks, as when one of its services fails, instead of shutting down gracefully.
    public func cancel() async throws {
        try await running.cancel()
    }

    /// Runs `body` with an admin client for this hub.
    public func admin<T: Sendable>(_ body: (AdminClient) async throws -> T) async throws -> T {
        try await AdminClient.with(hub: url, token: adminToken, trust: .caFile(caPath), body)
    }

    /// Runs `body` with an admin client presenting `token`.
    public func admin<T: Sendable>(token: String, _ body: (AdminClient) async throws -> T) async throws -> T {
        try await AdminClient.with(hub: url, token: token, trust: .caFile(caPath), body)
    }

    /// Waits until the cluster's agent has joined (its first heartbeat with an accepted certificate).
    public func waitJoined(_ name: String, timeout: Double = 10) async throws {
        try await eventually("\(name) to join", timeout: timeout) {
            try await admin { try await $0.cluster(name) }.status.conditions.isTrue(ConditionType.joined)
        }
    }

    /// Creates an enrolment token and returns its secret form.
    public func token(autoApprove: Bool = false, labels: [String: String] = [:], uses: Int? = nil, ttl: Double? = nil) async throws -> String {
        try await admin { try await $0.createToken(TokenRequest(autoApprove: autoApprove, labels: labels, ttlSeconds: ttl, maxUses: uses)) }.token!
    }
}
