import CairnCommon
import Foundation

/// Everything the hub keeps. SQLite is the embedded default; PostgreSQL joins it when one hub is not enough.
/// Every change to a cluster's works bumps that cluster's revision in the same transaction.
public protocol HubStore: Sendable {
    /// Woken with a cluster's name after every committed change to its works.
    var changes: RevisionNotifier { get }

    // Administrators
    func addAdminToken(hash: String, role: AdminRole, now: Date) async throws
    func adminRole(tokenHash: String) async throws -> AdminRole?

    // Audit
    func recordAudit(_ entry: AuditEntry) async throws
    /// The newest entries first.
    func audit(limit: Int) async throws -> [AuditEntry]

    // Enrolment tokens
    func createToken(_ token: EnrolmentToken, secretHash: String) async throws
    func tokens() async throws -> [EnrolmentToken]
    func revokeToken(id: String) async throws -> EnrolmentToken

    // Clusters
    /// Spends one use of the token and creates the cluster (or finds the same agent's earlier enrolment), atomically.
    /// A request for an enrolled name with another credential or key is held pending, never merged: it is recorded
    /// and the existing cluster is flagged with an EnrolmentConflict condition.
    func enrol(_ request: EnrolRequest, keyHash: String, tokenID: String, tokenSecretHash: String, source: String, now: Date) async throws -> EnrolmentStatus
    /// Whether `credentialHash` belongs to a held (conflicting) request for the cluster's name.
    func isHeld(cluster name: String, credentialHash: String) async throws -> Bool
    func cluster(named name: String) async throws -> ManagedCluster?
    func clusters() async throws -> [ManagedCluster]
    /// What authenticates a cluster's agent: its enrolment credential, its key, its certificate.
    func identity(cluster name: String) async throws -> ClusterIdentity?
    /// What an agent's every request is checked against: the cluster's enrolment state and key.
    func access(cluster name: String) async throws -> ClusterAccess?
    /// Records the client certificate issued for the cluster's enrolled key.
    func storeCertificate(cluster name: String, pem: String) async throws
    /// Replaces the cluster's key and certificate (renewal over mTLS).
    func renewCertificate(cluster name: String, keyHash: String, csr: String, pem: String) async throws
    /// Forgets the issued certificate so the site's next enrolment poll gets a fresh one (the admin's `--renew`).
    func allowReissue(cluster name: String) async throws
    func setEnrolment(cluster name: String, state: EnrolmentState, now: Date) async throws -> ManagedCluster
    func updateLabels(cluster name: String, patch: LabelPatch) async throws -> ManagedCluster
    func removeCluster(named name: String) async throws
    /// Records a lease; true when something placement decisions depend on changed (claims, capacity, availability).
    @discardableResult
    func recordHeartbeat(cluster name: String, heartbeat: Heartbeat, now: Date) async throws -> Bool
    /// A poll from the cluster's agent renews its lease as an unchanged heartbeat would, when the cluster is
    /// Available; false when it is not (never beaten, or marked silent): only a heartbeat can say it is.
    func renewLease(byPollOf cluster: String, now: Date) async throws -> Bool
    /// Sets Available=Unknown on accepted clusters silent since `before`; returns their names.
    func markSilentClusters(before: Date, now: Date) async throws -> [String]
    /// How many clusters are accepted: the ones that heartbeat.
    func acceptedClusterCount() async throws -> Int

    /// Sets or clears an administrator's taint (key, value, effect).
    func setTaint(cluster name: String, taint: Taint?, key: String, now: Date) async throws -> ManagedCluster

    // Placements
    func applyPlacement(_ placement: Placement, now: Date) async throws -> Placement
    func placement(named name: String) async throws -> Placement?
    func placements() async throws -> [Placement]
    func deletePlacement(named name: String) async throws
    /// Stores a placement's decisions; returns true, and records an event, when they changed.
    func setDecisions(placement name: String, status: Placement.Status, now: Date) async throws -> Bool

    // WorkSets
    /// Creates or updates a WorkSet; a changed spec bumps its generation, and each generation's template is kept.
    func applyWorkSet(_ workSet: WorkSet, now: Date) async throws -> WorkSet
    func workSet(named name: String) async throws -> WorkSet?
    func workSets() async throws -> [WorkSet]
    func deleteWorkSet(named name: String) async throws
    func setWorkSetStatus(_ name: String, status: WorkSet.Status) async throws
    /// The spec of a WorkSet at a past generation (for rollback).
    func workSetSpec(_ name: String, generation: Int64) async throws -> WorkSet.Spec?
    /// The works a WorkSet made, by cluster, with where each stands (metadata and status); their specs are left
    /// empty.
    func works(ofWorkSet name: String) async throws -> [String: ManifestWork]

    // Events
    func recordEvent(_ event: Event) async throws
    /// Newest first; `object` like `Placement/web` narrows them.
    func events(object: String?, limit: Int) async throws -> [Event]

    // Works
    /// Creates or updates a work; the generation and the cluster's revision move only when the spec changed.
    func applyWork(_ work: ManifestWork, cluster: String, now: Date) async throws -> ManifestWork
    /// Many works at once, each as `applyWork` writes it and with the events that record it, in one transaction;
    /// one that cannot be written (its cluster gone) fails alone, as its own outcome.
    func applyWorks(_ writes: [WorkWrite], now: Date) async throws -> [Result<ManifestWork, any Error>]
    func work(cluster: String, name: String) async throws -> ManifestWork?
    func works(cluster: String?) async throws -> [ManifestWork]
    /// Marks the work for deletion; it is removed once the agent reports its objects gone.
    func deleteWork(cluster: String, name: String, now: Date) async throws -> ManifestWork
    /// Records a site's status report: the latest status per work, and its journal of transitions as events
    /// (each sequence number once, so a report sent again adds nothing).
    func recordStatus(cluster: String, report: StatusReport, now: Date) async throws

    // Bundles
    func revision(cluster: String) async throws -> Int64
    /// A delta since `since` when the tombstones still cover it, else a full bundle.
    func bundle(cluster: String, since: Int64?) async throws -> StoredBundle
    /// Releases the deletions the cluster's agent holds at any revision so far; the next bundle (the revision
    /// is bumped for it) tells the agent. Returns the revision released through.
    func releaseDeletions(cluster: String) async throws -> Int64
    /// Drops tombstones older than `before`; agents behind them get a full bundle.
    func compactTombstones(before: Date) async throws -> Int
}

extension HubStore {
    public func recordStatus(cluster: String, updates: [WorkStatusUpdate], now: Date) async throws {
        try await recordStatus(cluster: cluster, report: StatusReport(works: updates), now: now)
    }
}

public enum AdminRole: String, Codable, Sendable {
    case admin
    case viewer
}

/// How the hub knows a cluster's agent.
public struct ClusterIdentity: Sendable {
    public var state: EnrolmentState
    /// SHA-256 of the secret the agent made at enrolment; used only to ask how enrolment stands.
    public var credentialHash: String
    /// SHA-256 of the SubjectPublicKeyInfo the cluster enrolled with: a client certificate must carry this key.
    public var keyHash: String
    public var csr: String
    public var certificate: String?
}

/// One work for `applyWorks`, with the events that go with it.
public struct WorkWrite: Sendable {
    public var work: ManifestWork
    public var cluster: String
    public var events: [Event]

    public init(work: ManifestWork, cluster: String, events: [Event] = []) {
        self.work = work
        self.cluster = cluster
        self.events = events
    }
}

/// A bundle with the digest of the cluster's whole desired state at its revision.
public struct StoredBundle: Sendable {
    public var bundle: WorkBundle
    public var stateDigest: String
}
