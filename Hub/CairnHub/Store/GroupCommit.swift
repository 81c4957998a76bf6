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

    private struct Waiting {
        let item: Item
        let done: CheckedContinuation<Void, any Error>
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

    func submit(_ item: Item) async throws {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            let leads = state.withLock { state in
                state.waiting.append(Waiting(item: item, done: done))
                defer { state.committing = true }
                return !state.committing
            }
            if leads { Task { await self.commitWaiting() } }
        }
    }

    /// Commits what waits, a batch at a time, until nothing does.
    private func commitWaiting() async {
        while true {
            let batch = state.withLock { state in
                let batch = Array(state.waiting.prefix(maxBatch))
                state.waiting.removeFirst(batch.count)
                state.inBatch = batch.count
                if batch.isEmpty { state.committing = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                let write = self.write
                let outcomes = try await pool.write { db in batch.map { waiting in db.alone { try write(db, waiting.item) } } }
                for (waiting, outcome) in zip(batch, outcomes) { waiting.done.resume(with: outcome) }
            } catch {
                for waiting in batch { waiting.done.resume(throwing: error) }
            }
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
