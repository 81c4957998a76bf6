import AsyncHTTPClient
import CairnAgent
import CairnCommon
import CairnCtlKit
import Foundation
import NIOSSL

/// A hub started for a bench run — `cairn-hub serve` as a child process with its state in a temporary folder —
/// an administrator's client for it, an auto-approving token, and simulated sites enrolled with that token.
final class BenchSession: @unchecked Sendable {
    let binary: String
    let state: String
    let extra: [String]
    private(set) var hub: HubProcess
    /// For the simulated sites: each has its own TLS configuration, so its own connections.
    let sites: HTTPClient
    /// For the administrator's calls: many at once while writes are measured.
    let adminHTTP: HTTPClient
    let admin: AdminClient
    let adminTLS: TLSConfiguration
    let caPEM: String
    let fingerprint: String
    let token: String

    var url: String { hub.url }

    /// Starts the hub and makes a token for `clusters` sites. `binary` defaults to `cairn-hub` beside this program.
    static func start(binary given: String?, clusters: Int, extra more: [String] = []) async throws -> BenchSession {
        let binary = given ?? Self.sibling("cairn-hub")
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw BenchError("no cairn-hub at \(binary): give --hub") }
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-bench-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let extra = ["--enrolment-burst", String(clusters + 16), "--enrolment-rate", "10000", "--max-long-polls", String(max(20_000, clusters * 2))] + more
        let hub = try HubProcess(binary: binary, stateDirectory: state + "/hub", port: 0, log: state + "/hub-1.log", extra: extra)
        do {
            try await hub.waitListening()
            var configuration = Self.siteConfiguration
            let sites = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
            let adminHTTP = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            let adminToken = try String(contentsOfFile: state + "/hub/admin-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let caPEM = try String(contentsOfFile: state + "/hub/pki/ca.pem", encoding: .utf8)
            let adminTLS = try TrustMaterial.clientTLS(roots: try TrustMaterial.certificates(pem: caPEM))
            let admin = AdminClient(http: adminHTTP, baseURL: hub.url, token: adminToken, tls: adminTLS)
            let token = try await admin.createToken(TokenRequest(autoApprove: true, labels: [:], ttlSeconds: 24 * 3600, maxUses: clusters + 16))
            guard let secret = token.token, let fingerprint = token.caFingerprint else { throw BenchError("the hub made no token") }
            return BenchSession(
                binary: binary, state: state, extra: extra, hub: hub, sites: sites, adminHTTP: adminHTTP, admin: admin, adminTLS: adminTLS,
                caPEM: caPEM, fingerprint: fingerprint, token: secret)
        } catch {
            await hub.kill()
            try? FileManager.default.removeItem(atPath: state)
            throw error
        }
    }

    private init(
        binary: String, state: String, extra: [String], hub: HubProcess, sites: HTTPClient, adminHTTP: HTTPClient, admin: AdminClient,
        adminTLS: TLSConfiguration, caPEM: String, fingerprint: String, token: String
    ) {
        self.binary = binary
        self.state = state
        self.extra = extra
        self.hub = hub
        self.sites = sites
        self.adminHTTP = adminHTTP
        self.admin = admin
        self.adminTLS = adminTLS
        self.caPEM = caPEM
        self.fingerprint = fingerprint
        self.token = token
    }

    /// The HTTP clients' configuration: a connect gives up after 10 s.
    static var siteConfiguration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10))
        return configuration
    }

    /// Runs every site's loops (`SimulatedAgent.run`) until the returned task is cancelled.
    static func run(_ agents: [SimulatedAgent], pollWait: Double) -> Task<Void, Never> {
        Task {
            await withTaskGroup(of: Void.self) { group in
                for agent in agents { group.addTask { await agent.run(pollWait: pollWait) } }
            }
        }
    }

    /// A program installed beside this one.
    static func sibling(_ name: String) -> String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path
    }

    /// Enrols `count` simulated sites named `site-00000`…, 32 at a time; returns them and how long it took.
    ///
    /// The anonymous enrolment requests go over a client of their own, shut down once all are enrolled: its
    /// connections (one per site) close now, not a minute later in the middle of a measured phase — at 10,000 sites
    /// their teardown took ~5% of the hub's CPU while it measured writes (each connection's end is a walk through the
    /// server's task group of 20,000).
    func enrol(count: Int, timeline: Timeline?) async throws -> (agents: [SimulatedAgent], seconds: Double) {
        let started = ContinuousClock.now
        let names = (0..<count).map { String(format: "site-%05d", $0) }
        let enrolling = HTTPClient(eventLoopGroupProvider: .singleton, configuration: Self.siteConfiguration)
        let agents: [SimulatedAgent]
        do {
            agents = try await concurrently(names, atMost: 32) { [self] name in
                try await SimulatedAgent.enrol(
                    name: name, http: sites, enrolling: enrolling, hubURL: url, caPEM: caPEM, fingerprint: fingerprint, token: token, timeline: timeline)
            }
        } catch {
            try? await enrolling.shutdown()
            throw error
        }
        try await enrolling.shutdown()
        return (agents, (ContinuousClock.now - started).inSeconds)
    }

    /// Kills the hub (-9) and starts it again on the same port with the same state.
    /// Returns the moment the old hub was gone; the new one starts a second later (`Reconnect` relies on that gap).
    func restartHub(log: String) async throws -> Date {
        await hub.kill()
        let gone = Date()
        try await Task.sleep(for: .seconds(1))
        hub = try HubProcess(binary: binary, stateDirectory: state + "/hub", port: hub.port, log: state + "/" + log, extra: extra)
        try await hub.waitListening()
        return gone
    }

    /// Stops the hub and the clients and removes the state folder. Whether the hub stopped by itself when asked (SIGTERM,
    /// 30 s); one that did not is killed.
    @discardableResult
    func finish(kill: Bool = false) async -> Bool {
        var stopped = true
        if kill { await hub.kill() } else { stopped = await hub.terminate() }
        try? await sites.shutdown()
        try? await adminHTTP.shutdown()
        try? FileManager.default.removeItem(atPath: state)
        return stopped
    }
}
