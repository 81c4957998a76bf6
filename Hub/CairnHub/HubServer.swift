import CairnCommon
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// Assembles a hub: state directory, store, admin token, API application and background services.
public struct HubServer: Sendable {
    public let configuration: HubConfiguration
    public let store: any HubStore
    /// Held while this hub lives: one hub per state directory, and no restore under a running one.
    let lock: HubLock
    public let logger: Logger
    public let bundleCounters = BundleCounters()
    public let leaseCounters = LeaseCounters()
    /// What the hub refused to hold, and how much it holds.
    public let shedder: LoadShedder
    /// The API's OpenAPI 3 description, as served at /api/v1/openapi.yaml.
    public static let openAPIDocument = OpenAPIDocument.yaml + "\n"
    public let pki: HubPKI
    /// Fired when anything placement decisions depend on changes.
    public let rescheduled = Wakeup()
    /// Fired when placement decisions, WorkSets or work statuses change: the rollout controller's cue.
    public let rollout = Wakeup()
    /// The heartbeat interval and lease timeout, stretched with the fleet.
    public let pacing: HeartbeatPacing

    /// Opens (or creates) the state directory and database, and makes sure an admin token exists.
    public init(configuration: HubConfiguration, logger: Logger) async throws {
        self.configuration = configuration
        self.logger = logger
        try FileManager.default.createDirectory(
            atPath: configuration.stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        lock = try HubLock(stateDirectory: configuration.stateDirectory)
        shedder = LoadShedder(
            maxLongPolls: configuration.maxLongPolls, maxRequests: configuration.maxConcurrentRequests, maxReports: configuration.maxConcurrentReports)
        store = try SQLiteHubStore(path: configuration.databasePath)
        pki = try HubPKI.loadOrCreate(directory: configuration.pkiDirectory, names: Self.servingNames(configuration))
        try await Self.ensureAdminToken(store: store, path: configuration.adminTokenPath)
        pacing = HeartbeatPacing(
            interval: configuration.heartbeatInterval, leaseTimeout: configuration.leaseTimeout, heartbeatsPerSecond: configuration.heartbeatsPerSecond)
        // Before the first heartbeat is answered, so a restarted hub asks for the interval its fleet already had.
        pacing.update(clusters: try await store.acceptedClusterCount())
    }

    /// Writes a fresh admin token to `path` (mode 0600) on first start; on later starts re-registers the one there.
    static func ensureAdminToken(store: any HubStore, path: String) async throws {
        let token: String
        if let existing = try? String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !existing.isEmpty {
            token = existing
        } else {
            token = "cairn-admin-" + Secrets.random()
            guard FileManager.default.createFile(atPath: path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
                throw CairnError(.internal, "cannot write the admin token to \(path)")
            }
        }
        try await store.addAdminToken(hash: Secrets.hash(token), role: .admin, now: Date())
    }

    /// Makes a new administrator token in the hub's database (safe while the hub runs) and returns it.
    public static func createAdminToken(stateDirectory: String, role: AdminRole) async throws -> String {
        let configuration = HubConfiguration(stateDirectory: stateDirectory)
        guard FileManager.default.fileExists(atPath: configuration.databasePath) else {
            throw CairnError(.notFound, "no hub database in \(stateDirectory)", field: "state-dir")
        }
        let store = try SQLiteHubStore(path: configuration.databasePath)
        let token = "cairn-\(role.rawValue)-" + Secrets.random()
        try await store.addAdminToken(hash: Secrets.hash(token), role: role, now: Date())
        return token
    }

    /// localhost, this host's name, the listen address (unless a wildcard) and what the operator added.
    static func servingNames(_ configuration: HubConfiguration) -> [String] {
        var names = ["localhost", "127.0.0.1", "::1", ProcessInfo.processInfo.hostName]
        if !["0.0.0.0", "::", ""].contains(configuration.host) { names.append(configuration.host) }
        return names + configuration.subjectAlternativeNames
    }

    /// The HTTPS application; `onServerRunning` receives the bound port (useful with port 0).
    public func application(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> some HubService {
        let router = Router(context: HubRequestContext.self)
        router.middlewares.add(AuditMiddleware(store: store))
        router.middlewares.add(ErrorMiddleware())
        router.middlewares.add(LoadShedMiddleware(shedder: shedder))
        router.get("healthz") { _, _ in "ok" }
        let api = router.group("api/v1")
        api.get("openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: Self.openAPIDocument)))
        }
        let auth = Authenticator(store: store)
        ClusterController(store: store, auth: auth, rescheduled: rescheduled).addRoutes(to: api)
        PlacementRoutes(store: store, auth: auth, rescheduled: rescheduled).addRoutes(to: api)
        WorkController(store: store, auth: auth, limits: WorkLimits()).addRoutes(to: api)
        TokenController(store: store, auth: auth, caFingerprint: pki.fingerprint).addRoutes(to: api)
        AgentController(
            store: store, auth: auth, configuration: configuration, counters: bundleCounters, leases: leaseCounters, shedder: shedder, pki: pki,
            enrolmentLimiter: RateLimiter(burst: configuration.enrolmentBurst, perSecond: configuration.enrolmentPerSecond),
            rescheduled: rescheduled, rollout: rollout, pacing: pacing
        ).addRoutes(to: api)
        WorkSetRoutes(store: store, auth: auth, rollout: rollout).addRoutes(to: api)
        api.get("audit") { request, _ in
            _ = try await auth.requireAdmin(request, write: false)
            let limit = request.uri.queryParameters["limit"].flatMap { Int($0) } ?? 100
            return try Response.json(ItemList(items: try await store.audit(limit: max(1, min(limit, 10_000)))))
        }
        return HubApplication(
            responder: router.buildResponder(),
            server: HubChannel.builder(tls: try pki.serverTLS(), negotiationLimit: .seconds(configuration.handshakeTimeoutSeconds)),
            address: .hostname(configuration.host, port: configuration.port),
            services: [
                LeaseMonitor(store: store, configuration: configuration, pacing: pacing, rescheduled: rescheduled, logger: logger),
                PlacementController(store: store, signal: rescheduled, decided: rollout, logger: logger),
                WorkSetController(store: store, signal: rollout, logger: logger),
            ],
            stopGrace: .seconds(configuration.stopGraceSeconds),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }
}
