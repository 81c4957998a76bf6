import Foundation

/// One edge site as the hub knows it.
public struct ManagedCluster: Codable, Sendable, Equatable {
    public var apiVersion: String = CairnAPI.version
    public var kind: String = "ManagedCluster"
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: Status

    public init(metadata: ObjectMeta, spec: Spec = Spec(), status: Status = Status()) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }

    public struct Spec: Codable, Sendable, Equatable {
        /// The administrator's decision: true once approved (by hand or by an auto-approve token).
        public var hubAcceptsClient: Bool = false
        public var taints: [Taint]?
        public init(hubAcceptsClient: Bool = false) { self.hubAcceptsClient = hubAcceptsClient }
    }

    public struct Status: Codable, Sendable, Equatable {
        public var enrolment: EnrolmentState = .pending
        public var conditions: [Condition] = []
        public var clusterClaims: [ClusterClaim] = []
        public var allocatable: [String: String] = [:]
        public var lastHeartbeatTime: Date?
        /// The cluster's desired-state revision: bumped with every change to its works.
        public var revision: Int64 = 0
        public init() {}
    }

    public var name: String { metadata.name }
}

public enum EnrolmentState: String, Codable, Sendable, Equatable {
    case pending = "Pending"
    case accepted = "Accepted"
    case denied = "Denied"
}

/// A fact an agent reports about its site (platform, version, region...).
public struct ClusterClaim: Codable, Sendable, Equatable, Hashable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

public struct Taint: Codable, Sendable, Equatable {
    public var key: String
    public var value: String?
    public var effect: String
    public var timeAdded: Date?

    public init(key: String, value: String? = nil, effect: String, timeAdded: Date? = nil) {
        self.key = key
        self.value = value
        self.effect = effect
        self.timeAdded = timeAdded
    }
}

public enum CairnAPI {
    public static let version = "cairn.io/v1"
    /// OCM's ManifestWork group, accepted as is.
    public static let ocmWorkVersion = "work.open-cluster-management.io/v1"
}

/// Well-known condition types.
public enum ConditionType {
    public static let joined = "Joined"
    public static let available = "Available"
    public static let applied = "Applied"
    public static let degraded = "Degraded"
    public static let statusFeedbackSynced = "StatusFeedbackSynced"
    /// Reported by the agent: the last bundle it received passed verification.
    public static let bundleVerified = "BundleVerified"
    /// Reported by the agent: its cache passed verification at start (or was restored from a full bundle).
    public static let cacheVerified = "CacheVerified"
    /// Reported by the agent: the site's own API (the Kubernetes API server) answers it. While False the
    /// agent keeps retrying with backoff and its cache keeps the desired state.
    public static let siteAPIAvailable = "SiteAPIAvailable"
    /// Reported by the agent: a bundle would have deleted more than the brake allows (or the hub went back in
    /// time), so the agent holds those deletions and keeps everything running until an administrator releases
    /// them with `cairnctl cluster release-deletions`.
    public static let deletionHeld = "DeletionHeld"
    /// Reported by the agent: its cache can be written. False (DiskFull) means the site keeps running what it
    /// holds but takes no new bundles and queues no statuses until space returns.
    public static let cacheWritable = "CacheWritable"
    /// Conditions a site may set on its own cluster; everything else is the hub's.
    public static let reportedBySite: Set<String> = [bundleVerified, cacheVerified, siteAPIAvailable, deletionHeld, cacheWritable]
}
