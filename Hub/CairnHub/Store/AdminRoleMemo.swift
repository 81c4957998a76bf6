import CairnCommon
import GRDB
import Synchronization

/// The roles of administrators' tokens, remembered between their requests: every administrator request read its
/// token's role, and every write read it again for the audit record — on a busy hub, a few percent of its time.
///
/// Kept true as `ClusterMemo` is: any commit that changes `admin_tokens` forgets everything, and a role read in a
/// transaction begun before such a commit is not kept. Only tokens found are remembered, so requests with made-up
/// tokens cannot grow it. Only this process's commits are seen; `cairn-hub admin-token create`, run beside a serving
/// hub, writes from another — but only new tokens, never remembered before, so they are read when first used.
final class AdminRoleMemo: TransactionObserver, Sendable {
    private struct State {
        var generation = 0
        var roles: [String: AdminRole] = [:]
        var touched = false
    }

    private let state = Mutex(State())

    /// Stamps a read: what it finds is kept only if no token changed meanwhile.
    var generation: Int { state.withLock { $0.generation } }

    func role(_ tokenHash: String) -> AdminRole? { state.withLock { $0.roles[tokenHash] } }

    func remember(_ role: AdminRole, of tokenHash: String, readAt generation: Int) {
        state.withLock { state in
            guard state.generation == generation else { return }
            state.roles[tokenHash] = role
        }
    }

    // TransactionObserver: called on the writer's queue.

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { eventKind.tableName == "admin_tokens" }

    func databaseDidChange(with event: DatabaseEvent) {
        state.withLock { $0.touched = true }
    }

    func databaseDidCommit(_ db: Database) {
        state.withLock { state in
            guard state.touched else { return }
            state = State(generation: state.generation + 1)
        }
    }

    func databaseDidRollback(_ db: Database) {
        state.withLock { $0.touched = false }
    }
}
