import Foundation

/// What a new site sends to join: the enrolment token, the name it wants, and the hash of a secret only it holds.
public struct EnrolRequest: Codable, Sendable {
    public var token: String
    public var clusterName: String
    public var labels: [String: String]?
    /// SHA-256 (hex) of the agent's own credential secret; the secret itself never leaves the site unasked.
    public var credentialHash: String
    /// PEM certificate signing request for the site's own key, naming the cluster.
    public var csr: String
    public var claims: [ClusterClaim]?

    public init(token: String, clusterName: String, labels: [String: String]?, credentialHash: String, csr: String, claims: [ClusterClaim]?) {
        self.token = token
        self.clusterName = clusterName
        self.labels = labels
        self.credentialHash = credentialHash
        self.csr = csr
        self.claims = claims
    }
}

/// The hub's answer to enrolment and to an agent asking how its enrolment stands.
public struct EnrolmentStatus: Codable, Sendable, Equatable {
    public var clusterName: String
    public var state: EnrolmentState
    public var message: String?
    /// Once accepted: the site's client certificate (PEM).
    public var certificate: String?
    /// Once accepted: the hub's bundle-signing public key (Ed25519, base64).
    public var signingKey: String?
    /// Once accepted: every CA the site should trust (PEM); during a CA rotation, the old and the new.
    public var caBundle: String?

    public init(clusterName: String, state: EnrolmentState, message: String? = nil, certificate: String? = nil, signingKey: String? = nil) {
        self.clusterName = clusterName
        self.state = state
        self.message = message
        self.certificate = certificate
        self.signingKey = signingKey
    }
}

/// One work's state on the site, as the agent reports it.
public struct WorkStatusUpdate: Codable, Sendable, Equatable {
    public var name: String
    /// The work generation this status describes.
    public var observedGeneration: Int64
    public var status: ManifestWork.Status?
    /// True once the work and (unless orphaned) its objects are gone from the site.
    public var deleted: Bool

    public init(name: String, observedGeneration: Int64, status: ManifestWork.Status?, deleted: Bool = false) {
        self.name = name
        self.observedGeneration = observedGeneration
        self.status = status
        self.deleted = deleted
    }
}

public struct StatusReport: Codable, Sendable {
    public var works: [WorkStatusUpdate]
    /// Condition transitions the site saw since the last report, oldest first (the latest state alone would
    /// hide what happened while the hub was out of reach).
    public var transitions: [StatusTransition]?
    /// Transitions the site had to drop because its journal was full, since the last report that got through.
    public var droppedTransitions: Int?
    public init(works: [WorkStatusUpdate], transitions: [StatusTransition]? = nil, droppedTransitions: Int? = nil) {
        self.works = works
        self.transitions = transitions
        self.droppedTransitions = droppedTransitions
    }
}

/// One work condition changing status on the site, numbered by the site so the hub keeps each once.
public struct StatusTransition: Codable, Sendable, Equatable {
    /// Increasing on the site, never reused.
    public var sequence: Int64
    public var work: String
    public var generation: Int64
    public var time: Date
    public var type: String
    public var status: String
    public var reason: String

    public init(sequence: Int64, work: String, generation: Int64, time: Date, type: String, status: String, reason: String) {
        self.sequence = sequence
        self.work = work
        self.generation = generation
        self.time = time
        self.type = type
        self.status = status
        self.reason = reason
    }
}

/// The lease: sent every heartbeat interval with what the site claims about itself (or less often, while polls renew
/// it: `HeartbeatSkipping`).
public struct Heartbeat: Codable, Sendable, Equatable {
    public var claims: [ClusterClaim]
    public var allocatable: [String: String]
    /// What the site reports about itself (BundleVerified, CacheVerified), merged into the cluster's conditions.
    public var conditions: [Condition]?
    public init(claims: [ClusterClaim], allocatable: [String: String], conditions: [Condition]? = nil) {
        self.claims = claims
        self.allocatable = allocatable
        self.conditions = conditions
    }
}

public struct HeartbeatResponse: Codable, Sendable {
    /// How often the hub expects a heartbeat.
    public var intervalSeconds: Double
    /// The hub renews the lease on every poll it receives from an Available cluster, so a heartbeat that would
    /// report nothing new may be left out while the agent polls (`HeartbeatSkipping`). Absent from older hubs.
    public var pollsRenewLease: Bool?
    public init(intervalSeconds: Double, pollsRenewLease: Bool? = nil) {
        self.intervalSeconds = intervalSeconds
        self.pollsRenewLease = pollsRenewLease
    }

    /// The wait before the next heartbeat: the interval, give or take a tenth at random. Sites that came up
    /// together (a fleet enrolled at once, or reconnecting after the hub restarted) would otherwise beat in step
    /// forever, every beat of the fleet in the same few seconds; spread out, the hub sees the rate it paces for.
    /// The mean stays the interval, and the longest gap, 1.1 intervals, is inside the lease (at least 2 intervals,
    /// `cairn-hub serve` refuses less; 4 by default).
    public static func wait(for interval: Double) -> Double {
        interval * Double.random(in: 0.9...1.1)
    }
}

/// Header names of the bundle endpoint.
public enum BundleHeaders {
    public static let digest = "X-Cairn-Bundle-Digest"
    public static let stateDigest = "X-Cairn-State-Digest"
    public static let signature = "X-Cairn-Bundle-Signature"
    public static let revision = "X-Cairn-Revision"
    /// On a poll's answer when that poll did not renew the cluster's lease (it is not Available at the hub): the
    /// agent must heartbeat.
    public static let heartbeatWanted = "X-Cairn-Heartbeat-Wanted"
    public static let contentType = "application/vnd.cairn.bundle+zlib"
}

/// An agent renewing its client certificate over mTLS, before it expires.
public struct RenewRequest: Codable, Sendable {
    public var csr: String
    public init(csr: String) { self.csr = csr }
}

/// Which heartbeats an agent may leave out.
///
/// Every poll an Available cluster's agent sends renews its lease at the hub as a heartbeat would (hubs that say so:
/// `HeartbeatResponse.pollsRenewLease`), and an idle agent polls every `pollWait` seconds anyway. A heartbeat whose
/// claims and conditions are the last ones the hub accepted, due while a poll was sent within the last interval,
/// says nothing the poll did not: it is skipped. The lease is still renewed at least once an interval, so a silent
/// site is noticed as soon as before; a heartbeat goes whenever something it carries changed, after any failed
/// heartbeat or poll, and when the hub asks for one on a poll's answer (`BundleHeaders.heartbeatWanted`). At
/// 10,000 sites the hub's heartbeats a second drop from 250 to nearly none.
public struct HeartbeatSkipping: Sendable {
    private var accepted: Heartbeat?
    private var pollsRenew = false
    private var lastPoll: ContinuousClock.Instant?

    public init() {}

    /// The hub accepted `heartbeat` and answered `answer`.
    public mutating func sent(_ heartbeat: Heartbeat, answer: HeartbeatResponse) {
        accepted = heartbeat
        pollsRenew = answer.pollsRenewLease == true
    }

    /// A heartbeat failed, or the hub asked for one: the next is sent whatever it carries.
    public mutating func mustSend() {
        accepted = nil
    }

    /// A poll is being sent now.
    public mutating func polling(at now: ContinuousClock.Instant) {
        lastPoll = now
    }

    /// A poll failed: until the next one is sent, nothing renews the lease but heartbeats.
    public mutating func pollFailed() {
        lastPoll = nil
    }

    /// Whether `heartbeat`, due now, must be sent.
    public func shouldSend(_ heartbeat: Heartbeat, interval: Double, now: ContinuousClock.Instant) -> Bool {
        guard pollsRenew, heartbeat == accepted, let lastPoll else { return true }
        return now - lastPoll > .milliseconds(Int64(interval * 1000))
    }
}
