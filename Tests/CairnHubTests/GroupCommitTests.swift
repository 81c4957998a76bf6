@testable import CairnHub
import CairnTestSupport
import Foundation
import GRDB
import Synchronization
import Testing

@Suite struct GroupCommitTests {
    final class Commits: TransactionObserver, Sendable {
        let count = Mutex(0)
        func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { true }
        func databaseDidChange(with event: DatabaseEvent) {}
        func databaseDidCommit(_ db: Database) { count.withLock { $0 += 1 } }
        func databaseDidRollback(_ db: Database) {}
    }

    /// What waits while the writer is busy goes in one transaction; a write that fails (here a CHECK constraint)
    /// fails alone, and every other is committed before its caller returns, with what its own write gave.
    @Test func `writes waiting together commit together and one that fails fails alone`() async throws {
        let directory = try TemporaryDirectory("groupcommit")
        defer { directory.remove() }
        let pool = try DatabasePool(path: directory.appending("test.sqlite"))
        try await pool.write { db in try db.execute(sql: "CREATE TABLE t (v INTEGER NOT NULL CHECK (v >= 0))") }
        let commits = Commits()
        pool.add(transactionObserver: commits, extent: .databaseLifetime)
        let writes = GroupCommit<Int, Int64>(pool: pool, maxBatch: 100) { db, value in
            try db.execute(sql: "INSERT INTO t (v) VALUES (?)", arguments: [value])
            return db.lastInsertedRowID
        }

        // Hold the writer until every write waits.
        let (held, release) = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
        let holding = Task { try await pool.writeWithoutTransaction { _ in held.signal(); release.wait() } }
        let isHeld = Task.detached { held.wait(timeout: .now() + 30) == .success }
        #expect(await isHeld.value, "the writer is held")
        let values = Array(0..<250).map { $0 % 50 == 49 ? -$0 : $0 }
        let submitted = Task {
            await withTaskGroup(of: (Int, Int64?).self) { group in
                for value in values {
                    group.addTask { (value, try? await writes.submit(value)) }
                }
                return await group.reduce(into: [Int: Int64?]()) { $0[$1.0] = $1.1 }
            }
        }
        for _ in 0..<1000 where writes.pending < values.count { try await Task.sleep(for: .milliseconds(5)) }
        #expect(writes.pending == values.count)
        release.signal()
        try await holding.value
        let outcomes = try await value(of: submitted, within: 30, "the writes did not return")

        for value in values { #expect((outcomes[value]! != nil) == (value >= 0), "write \(value)") }
        let stored = try await pool.read { db in try Int.fetchAll(db, sql: "SELECT v FROM t ORDER BY v") }
        #expect(stored == values.filter { $0 >= 0 }.sorted())
        // Each caller was given its own row.
        let rows = try await pool.read { db in try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT rowid, v FROM t").map { ($0[1] as Int, $0[0] as Int64) }) }
        for value in values where value >= 0 { #expect(outcomes[value]! == rows[value], "write \(value)") }
        // The first batch (what waited when it began), then the rest in batches of at most 100: 250 writes, at most
        // four commits.
        #expect((2...4).contains(commits.count.withLock { $0 }))
        #expect(writes.pending == 0)
    }
}
