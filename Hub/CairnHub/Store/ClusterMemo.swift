import CairnCommon
import GRDB
import Synchronization

/// What the store remembers about clusters between agents' requests, so the commonest of them — a request
/// authenticated as its cluster, a heartbeat that changes nothing but the lease's time, a poll renewing the lease —
/// read nothing from SQLite.
///
/// Every agent request checks the cluster's enrolment state and key; every heartbeat compares what it reports with
/// the cluster's conditions, claims and allocatable. Each was a read on one of GRDB's queues — a thread woken and a
/// task resumed, twice per heartbeat — and at thousands of idle sites those hops were most of what the hub did.
///
/// It is kept true by watching commits, not by the code that writes: once a transaction that deletes a cluster's
/// row, or changes one of the columns remembered here (`remembered`), commits, what was remembered of that row is
/// forgotten. A value read in a transaction that began before any such commit is not kept (`generation`), so
/// nothing stale is remembered. Only what this process writes is seen: the store's SQLite file has one writer, the
/// hub.
///
/// An INSERT adds a row and changes none, so an enrolment forgets nothing of the other clusters: one site joining
/// a fleet of 10,000 used to make every site's next requests read its row again. This holds because no statement
/// replaces a clusters row — SQLite does not report the rows an `INSERT OR REPLACE` deletes — and a name removed and
/// enrolled again was forgotten by its DELETE (`StoreTests`).
final class ClusterMemo: TransactionObserver, Sendable {
    /// The columns what is remembered comes from.
    static let remembered: Set<String> = ["enrolment", "key_hash", "conditions", "claims", "allocatable"]

    private struct State {
        var generation = 0
        var access: [String: ClusterAccess] = [:]
        /// The last heartbeat of each cluster found to change nothing.
        var beats: [String: Heartbeat] = [:]
        /// Clusters found Available (besides those in `beats`): their polls renew the lease.
        var live: Set<String> = []
        /// The row of each cluster something is remembered of.
        var names: [Int64: String] = [:]
        /// The rows the transaction being written changed or deleted.
        var touched: Set<Int64> = []
    }

    private let state = Mutex(State())

    /// Stamps a read: what it finds is kept only if nothing remembered changed meanwhile.
    var generation: Int { state.withLock { $0.generation } }

    func access(_ cluster: String) -> ClusterAccess? { state.withLock { $0.access[cluster] } }

    func remember(_ access: ClusterAccess, of cluster: String, row: Int64, readAt generation: Int) {
        keep(cluster, row: row, readAt: generation) { $0.access[cluster] = access }
    }

    /// Whether `heartbeat` is the same as the cluster's last one that changed nothing, with nothing changed since.
    func isUnchanged(_ heartbeat: Heartbeat, of cluster: String) -> Bool {
        state.withLock { $0.beats[cluster] == heartbeat }
    }

    func rememberUnchanged(_ heartbeat: Heartbeat, of cluster: String, row: Int64, readAt generation: Int) {
        keep(cluster, row: row, readAt: generation) { $0.beats[cluster] = heartbeat }
    }

    /// Whether the cluster is Available with nothing changed since: its last heartbeat is remembered (a heartbeat
    /// makes it Available), or it was read so.
    func isLive(_ cluster: String) -> Bool {
        state.withLock { $0.beats[cluster] != nil || $0.live.contains(cluster) }
    }

    func rememberLive(_ cluster: String, row: Int64, readAt generation: Int) {
        keep(cluster, row: row, readAt: generation) { _ = $0.live.insert(cluster) }
    }

    /// Keeps what a read found, unless something remembered changed since it began.
    private func keep(_ cluster: String, row: Int64, readAt generation: Int, _ found: (inout State) -> Void) {
        state.withLock { state in
            guard state.generation == generation else { return }
            found(&state)
            state.names[row] = cluster
        }
    }

    // TransactionObserver: called on the writer's queue.

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool {
        switch eventKind {
        case .insert: false
        case .delete(let table): table == "clusters"
        case .update(let table, let columns): table == "clusters" && !columns.isDisjoint(with: Self.remembered)
        }
    }

    func databaseDidChange(with event: DatabaseEvent) {
        state.withLock { _ = $0.touched.insert(event.rowID) }
    }

    func databaseDidCommit(_ db: Database) {
        state.withLock { state in
            guard !state.touched.isEmpty else { return }
            state.generation += 1
            for row in state.touched {
                guard let cluster = state.names.removeValue(forKey: row) else { continue }
                state.access[cluster] = nil
                state.beats[cluster] = nil
                state.live.remove(cluster)
            }
            state.touched = []
        }
    }

    func databaseDidRollback(_ db: Database) {
        state.withLock { $0.touched = [] }
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
