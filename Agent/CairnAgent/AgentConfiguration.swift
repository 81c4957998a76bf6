import CairnCommon
import Foundation

/// How an agent runs. Every duration is in seconds.
public struct AgentConfiguration: Sendable {
    public var hubURL: String?
    public var token: String?
    public var clusterName: String?
    /// `sha256:…` of the hub's CA certificate, pinned at enrolment and checked against the cache at every start.
    public var caFingerprint: String?
    public var stateDirectory: String
    public var adapter: String = "simulated"
    /// For the kubernetes adapter: a kubeconfig file (and context); unset means in-cluster.
    public var kubeconfig: String?
    public var kubeContext: String?
    public var labels: [String: String] = [:]
    /// How long the hub may hold a bundle long-poll.
    public var pollWait: Double = 30
    /// Full re-apply of everything cached, which corrects drift on the site.
    public var resyncInterval: Double = 60
    /// How often live status is read back when nothing else happens.
    public var statusInterval: Double = 5
    /// Until the hub says otherwise.
    public var heartbeatInterval: Double = 10
    /// How long one call to the hub may take before it is given up (a long-poll: its wait plus this).
    public var requestTimeout: Double = 30
    public var backoffInitial: Double = 0.2
    public var backoffMax: Double = 30
    public var bundleLimits = BundleCodec.Limits()
    /// A bundle of this many bytes or more (compressed, as it came) moves the agent's calls to a new connection, so
    /// the buffers it grew on the old one go with it (`HubConnections`); 0: never.
    public var freshConnectionAfter = 64 * 1024
    /// How much one bundle may delete before the agent holds the deletions for an administrator.
    public var deletionBrake = DeletionBrake()
    public var simulated = SimulatedCluster.Configuration()
    /// Seconds without a new bundle after which the agent gives back the code pages starting and applying touched
    /// (`CodePages`); nil or 0: never. `cairn-agent run` sets 10; embedded agents (tests) leave it off, since the
    /// pages they would give back are their host's.
    public var releaseCodeAfter: Double?
    /// The time certificate renewal is judged by (tests move it forward).
    public var clock: @Sendable () -> Date = { Date() }

    public init(stateDirectory: String) {
        self.stateDirectory = stateDirectory
    }

    public var keyPath: String { (stateDirectory as NSString).appendingPathComponent("agent.key") }
    public var cachePath: String { (stateDirectory as NSString).appendingPathComponent("agent.sqlite") }
    public var simulatedClusterPath: String { (stateDirectory as NSString).appendingPathComponent("simulated-cluster.sqlite") }
}

/// Exponential backoff with full jitter, so a thousand agents coming back do not arrive together.
struct Backoff {
    let initial: Double
    let maximum: Double
    private var attempt = 0

    init(initial: Double, maximum: Double) {
        self.initial = initial
        self.maximum = maximum
    }

    mutating func next() -> Duration {
        let ceiling = min(maximum, initial * pow(2, Double(min(attempt, 30))))
        attempt += 1
        return .milliseconds(Int64(Double.random(in: (ceiling / 2)...ceiling) * 1000))
    }

    mutating func reset() { attempt = 0 }

    /// The wait after `error`: what the hub asked for with Retry-After (stretched by up to half again, so
    /// agents it turned away together do not return together), else the next backoff step.
    mutating func next(after error: any Error) -> Duration {
        guard let seconds = (error as? HubError)?.retryAfter, seconds > 0 else { return next() }
        attempt += 1
        return .milliseconds(Int64(Double(min(seconds, 600)) * Double.random(in: 1...1.5) * 1000))
    }
}

extension Duration {
    static func seconds(_ value: Double) -> Duration { .milliseconds(Int64(value * 1000)) }
}
