import CairnCommon
import GRDB
import Synchronization

/// Writes of one kind that arrive while one is committing wait, and go together in the next transaction — each in
/// a savepoint of its own, so one that fails fails alone. A site's status report is a few row updates; a commit
/// each made thousands of them arriving together (a rollout's sites all reporting at once) queue for the one
/// writer, past the hub's requests-in-flight limit, and be shed. Each caller still returns only once its own write
/// is committed.
final class GroupCommit<Item: Sendable>: Sendable {
    typealias Write = @Sendable (Database, Item) throws -> Void

    private enum Turn {
        /// The write is committed.
        case done
        /// Commit the next batch, this write first.
        case lead
    }

    private struct Waiting {
        let item: Item
        let turn: CheckedContinuation<Turn, any Error>
    }

    private struct State {
        var waiting: [Waiting] = []
        var committing = false
        var inBatch = 0
    }

    private let pool: DatabasePool
    private let maxBatch: Int
    private let write: Write
    private let state = Mutex(State())

    init(pool: DatabasePool, maxBatch: Int = 256, write: @escaping Write) {
        self.pool = pool
        self.maxBatch = maxBatch
        self.write = write
    }

    /// Writes not yet committed: waiting, and in the batch being committed.
    var pending: Int { state.withLock { $0.waiting.count + $0.inBatch } }

    /// Returns once `item` is committed. The caller that finds no commit under way commits itself, with whatever
    /// waits; then hands the turn to the first of those that arrived meanwhile — no task of its own, no extra hop.
    func submit(_ item: Item) async throws {
        let turn = try await withCheckedThrowingContinuation { (turn: CheckedContinuation<Turn, any Error>) in
            let leads = state.withLock { state in
                if state.committing {
                    state.waiting.append(Waiting(item: item, turn: turn))
                    return false
                }
                state.committing = true
                return true
            }
            if leads { turn.resume(returning: .lead) }
        }
        guard case .lead = turn else { return }
        try await commit(leading: item)
    }

    private func commit(leading item: Item) async throws {
        let others = state.withLock { state in
            let batch = Array(state.waiting.prefix(maxBatch - 1))
            state.waiting.removeFirst(batch.count)
            state.inBatch = batch.count + 1
            return batch
        }
        let write = self.write
        let items = [item] + others.map(\.item)
        // Not cancelled with the leader's request: the batch is everyone's.
        let committed = await withCheckedContinuation { (committed: CheckedContinuation<Result<[Result<Void, any Error>], any Error>, Never>) in
            pool.asyncWrite({ db in items.map { item in db.alone { try write(db, item) } } }, completion: { _, result in committed.resume(returning: result) })
        }
        let outcomes = (try? committed.get()) ?? Array(repeating: committed.map { _ in () }, count: items.count)
        for (waiting, outcome) in zip(others, outcomes.dropFirst()) { waiting.turn.resume(with: outcome.map { .done }) }
        let next = state.withLock { state in
            state.inBatch = 0
            if state.waiting.isEmpty {
                state.committing = false
                return nil as Waiting?
            }
            return state.waiting.removeFirst()
        }
        next?.turn.resume(returning: .lead)
        try outcomes[0].get()
    }
}

extension Database {
    /// `body` in a savepoint of its own, within the transaction: rolled back alone when it throws.
    func alone<T>(_ body: () throws -> T) -> Result<T, any Error> {
        Result {
            var value: T?
            try inSavepoint {
                value = try body()
                return .commit
            }
            guard let value else { throw CairnError(.internal, "a savepoint committed without its value") }
            return value
        }
    }
}
