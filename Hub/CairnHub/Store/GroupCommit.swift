import CairnCommon
import GRDB
import Synchronization

/// Writes of one kind that arrive while one is committing wait, and go together in the next transaction — each in
/// a savepoint of its own, so one that fails fails alone. A site's status report is a few row updates; a commit
/// each made thousands of them arriving together (a rollout's sites all reporting at once) queue for the one
/// writer, past the hub's requests-in-flight limit, and be shed. Work writes and audit records go the same way: a
/// transaction and two thread hops each were most of what the one writer spent on them. Each caller still returns
/// only once its own write is committed, with what its write gave.
final class GroupCommit<Item: Sendable, Output: Sendable>: Sendable {
    typealias Write = @Sendable (Database, Item) throws -> Output

    private struct Waiting {
        let item: Item
        let done: CheckedContinuation<Output, any Error>
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

    /// Returns once `item` is committed, with what its write gave.
    func submit(_ item: Item) async throws -> Output {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Output, any Error>) in
            let starts = state.withLock { state in
                state.waiting.append(Waiting(item: item, done: done))
                defer { state.committing = true }
                return !state.committing
            }
            if starts { commitNext() }
        }
    }

    /// One batch, on the database's writer queue, and the next — while any wait — queued behind whatever other writes
    /// wait by then.
    /// Nothing between batches runs on the event loops: under load a hop there waited its turn behind thousands of
    /// connections, and batches went at the pace of those hops (status ingest at 10,000 sites fell to ~100/s).
    /// Not cancelled with any caller's request either: the batch is everyone's.
    private func commitNext() {
        pool.asyncWriteWithoutTransaction { db in
            // Never empty: a batch is queued only while writes wait, and only this queue takes them.
            let batch = self.state.withLock { state in
                let batch = Array(state.waiting.prefix(self.maxBatch))
                state.waiting.removeFirst(batch.count)
                state.inBatch = batch.count
                return batch
            }
            var outcomes = [Result<Output, any Error>]()
            do {
                try db.inTransaction {
                    outcomes = batch.map { waiting in db.alone { try self.write(db, waiting.item) } }
                    return .commit
                }
            } catch {
                outcomes = Array(repeating: .failure(error), count: batch.count)
            }
            let more = self.state.withLock { state in
                state.inBatch = 0
                state.committing = !state.waiting.isEmpty
                return state.committing
            }
            for (waiting, outcome) in zip(batch, outcomes) { waiting.done.resume(with: outcome) }
            if more { self.commitNext() }
        }
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
