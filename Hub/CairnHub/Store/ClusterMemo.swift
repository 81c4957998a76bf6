import CairnCommon
import GRDB
import Synchronization

/// What the store remembers about clusters between agents' requests, so the commonest of them — a request
/// authenticated as its cluster, a heartbeat that changes nothing but the lease's time — read nothing from SQLite.
///
/// Every agent request checks the cluster's enrolment state and key; every heartbeat compares what it reports with
/// the cluster's conditions, claims and allocatable. Each was a read on one of GRDB's queues — a thread woken and a
/// task resumed, twice per heartbeat — and at thousands of idle sites those hops were most of what the hub did.
///
/// It is kept true by watching commits, not by the code that writes: every transaction that inserts or deletes a
/// cluster, or changes one of the columns remembered here (`remembered`), forgets everything once it commits. A
/// value read in a transaction that began before such a commit is not kept (`generation`), so nothing stale is
/// remembered. Only what this process writes is seen: the store's SQLite file has one writer, the hub.
final class ClusterMemo: TransactionObserver, Sendable {
    /// The columns what is remembered comes from.
    static let remembered: Set<String> = ["enrolment", "key_hash", "conditions", "claims", "allocatable"]

    private struct State {
        var generation = 0
        var access: [String: ClusterAccess] = [:]
        /// The last heartbeat of each cluster found to change nothing.
        var beats: [String: Heartbeat] = [:]
        /// The transaction being written changed something remembered.
        var touched = false
    }

    private let state = Mutex(State())

    /// Stamps a read: what it finds is kept only if nothing remembered changed meanwhile.
    var generation: Int { state.withLock { $0.generation } }

    func access(_ cluster: String) -> ClusterAccess? { state.withLock { $0.access[cluster] } }

    func remember(_ access: ClusterAccess, of cluster: String, readAt generation: Int) {
        state.withLock { state in
            if state.generation == generation { state.access[cluster] = access }
        }
    }

    /// Whether `heartbeat` is the same as the cluster's last one that changed nothing, with nothing changed since.
    func isUnchanged(_ heartbeat: Heartbeat, of cluster: String) -> Bool {
        state.withLock { state in
            guard let last = state.beats[cluster] else { return false }
            return last.claims == heartbeat.claims && last.allocatable == heartbeat.allocatable && last.conditions == heartbeat.conditions
        }
    }

    func rememberUnchanged(_ heartbeat: Heartbeat, of cluster: String, readAt generation: Int) {
        state.withLock { state in
            if state.generation == generation { state.beats[cluster] = heartbeat }
        }
    }

    // TransactionObserver: called on the writer's queue.

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool {
        switch eventKind {
        case .insert(let table), .delete(let table): table == "clusters"
        case .update(let table, let columns): table == "clusters" && !columns.isDisjoint(with: Self.remembered)
        }
    }

    func databaseDidChange(with event: DatabaseEvent) {
        state.withLock { $0.touched = true }
    }

    func databaseDidCommit(_ db: Database) {
        state.withLock { state in
            guard state.touched else { return }
            state.touched = false
            state.generation += 1
            state.access.removeAll()
            state.beats.removeAll()
        }
    }

    func databaseDidRollback(_ db: Database) {
        state.withLock { $0.touched = false }
    }
}

/// What an agent's request is authenticated against: whether the cluster is accepted, and the key its certificate
/// must carry.
public struct ClusterAccess: Sendable, Equatable {
    public var state: EnrolmentState
    /// SHA-256 of the SubjectPublicKeyInfo the cluster enrolled with.
    public var keyHash: String

    public init(state: EnrolmentState, keyHash: String) {
        self.state = state
        self.keyHash = keyHash
    }
}
