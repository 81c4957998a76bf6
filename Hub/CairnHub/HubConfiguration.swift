import Foundation

/// How a hub runs. Every duration is in seconds.
public struct HubConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    public var port: Int = 8443
    public var stateDirectory: String
    /// How often agents are asked to heartbeat.
    public var heartbeatInterval: Double = 10
    /// A cluster silent this long is marked Available=Unknown.
    public var leaseTimeout: Double = 40
    /// The most heartbeats a second the hub asks for: beyond `heartbeatsPerSecond × heartbeatInterval` clusters,
    /// the interval and the lease timeout stretch together (see HeartbeatPacing).
    public var heartbeatsPerSecond: Double = 250
    /// How often the lease monitor looks.
    public var leaseCheckInterval: Double = 5
    /// The longest a bundle long-poll is held open.
    public var maxLongPollSeconds: Double = 60
    /// Bundle long-polls held at once (one per connected agent); beyond it agents are told to come back later.
    public var maxLongPolls: Int = 20_000
    /// Other requests in flight at once; beyond it the hub answers 503 with Retry-After rather than queue.
    public var maxConcurrentRequests: Int = 512
    /// Sites' status reports and heartbeats in flight at once, counted apart from other requests so a fleet
    /// reporting together never crowds out an administrator (nor is held to the same small number: each is a few
    /// KiB, and a rollout to thousands of sites brings them all within a second or two).
    public var maxConcurrentReports: Int = 4096
    /// On a stop (SIGTERM), how long requests in flight may go on before their connections are closed.
    public var stopGraceSeconds: Double = 10
    /// How long a new connection may take to get through TLS before it is closed.
    public var handshakeTimeoutSeconds: Double = 30
    /// How long deletion tombstones are kept; agents further behind get a full bundle.
    public var tombstoneRetention: Double = 7 * 86_400
    /// Extra names (DNS or IP) for the serving certificate, besides localhost, this host's name and the listen address.
    public var subjectAlternativeNames: [String] = []
    /// Lifetime of the client certificates issued to clusters.
    public var certificateLifetime: Double = 30 * 86_400
    /// Enrolment requests per source address: a burst, then a steady rate per second.
    public var enrolmentBurst: Double = 20
    public var enrolmentPerSecond: Double = 2

    public init(stateDirectory: String) {
        self.stateDirectory = stateDirectory
    }

    public var databasePath: String { (stateDirectory as NSString).appendingPathComponent("hub.sqlite") }
    public var pkiDirectory: String { (stateDirectory as NSString).appendingPathComponent("pki") }
    public var caPath: String { (pkiDirectory as NSString).appendingPathComponent("ca.pem") }
    public var adminTokenPath: String { (stateDirectory as NSString).appendingPathComponent("admin-token") }
}
