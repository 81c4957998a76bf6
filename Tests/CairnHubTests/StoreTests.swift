import CairnCommon
@testable import CairnHub
import CairnTestSupport
import Foundation
import GRDB
import Testing

@Suite(.ownThread) struct StoreTests {
    let directory: TemporaryDirectory
    let store: SQLiteHubStore

    init() throws {
        directory = try TemporaryDirectory("store")
        store = try SQLiteHubStore(path: directory.appending("hub.sqlite"))
    }

    func enrol(_ name: String, key: String? = nil, token id: String? = nil) async throws {
        let token = EnrolmentToken(id: id ?? "t-\(name)", autoApprove: true, labels: [:], expiresAt: Date().addingTimeInterval(60), maxUses: nil, createdAt: Date())
        try await store.createToken(token, secretHash: Secrets.hash("secret"))
        _ = try await store.enrol(EnrolRequest(token: "", clusterName: name, labels: nil, credentialHash: Secrets.hash("cred-\(name)"), csr: "", claims: nil), keyHash: key ?? "key-\(name)", tokenID: token.id, tokenSecretHash: Secrets.hash("secret"), source: "test", now: Date())
    }

    func work(_ name: String, data: String = "1") -> ManifestWork {
        ManifestWork(metadata: ObjectMeta(name: name), spec: .init(manifests: [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string(name), "namespace": "default"], "data": ["v": .string(data)]]]))
    }

    @Test func `a heartbeat that changes nothing but the time is batched, read back, and never moves a lease back`() async throws {
        defer { directory.remove() }
        try await enrol("c1")
        let beat = Heartbeat(claims: [ClusterClaim(name: "platform", value: "kubernetes")], allocatable: ["cpu": "4"])
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(try await store.recordHeartbeat(cluster: "c1", heartbeat: beat, now: start), "the first heartbeat makes the cluster Available")
        #expect(store.memo.isUnchanged(beat, of: "c1"), "what a heartbeat wrote is remembered: the same one again reads nothing")
        #expect(try await store.recordHeartbeat(cluster: "c1", heartbeat: beat, now: start.addingTimeInterval(10)) == false)
        // Noted in memory, but what is read (and what the lease check sees) is the latest time.
        #expect(try await store.cluster(named: "c1")?.status.lastHeartbeatTime == start.addingTimeInterval(10))
        #expect(try await store.markSilentClusters(before: start.addingTimeInterval(9), now: start.addingTimeInterval(49)) == [])
        _ = try await store.recordHeartbeat(cluster: "c1", heartbeat: beat, now: start.addingTimeInterval(20))
        #expect(try await store.markSilentClusters(before: start.addingTimeInterval(19), now: start.addingTimeInterval(59)) == [])
        #expect(try await store.markSilentClusters(before: start.addingTimeInterval(21), now: start.addingTimeInterval(61)) == ["c1"])
        // A late note of an older beat does not move the lease back; a changed claim is written at once.
        _ = try await store.recordHeartbeat(cluster: "c1", heartbeat: beat, now: start.addingTimeInterval(5))
        #expect(try await store.cluster(named: "c1")?.status.lastHeartbeatTime == start.addingTimeInterval(20))
        let changed = Heartbeat(claims: [ClusterClaim(name: "platform", value: "k3s")], allocatable: ["cpu": "4"])
        #expect(try await store.recordHeartbeat(cluster: "c1", heartbeat: changed, now: start.addingTimeInterval(30)))
        #expect(try await store.cluster(named: "c1")?.status.clusterClaims == changed.claims)
        #expect(store.memo.isUnchanged(changed, of: "c1") && !store.memo.isUnchanged(beat, of: "c1"))
        // Marked silent: forgotten, so the next beat is read and written (Available again).
        #expect(try await store.markSilentClusters(before: start.addingTimeInterval(31), now: start.addingTimeInterval(71)) == ["c1"])
        #expect(!store.memo.isUnchanged(changed, of: "c1"))
        #expect(try await store.recordHeartbeat(cluster: "c1", heartbeat: changed, now: start.addingTimeInterval(80)), "Available again")
    }

    /// A poll renews the lease of an Available cluster as an unchanged heartbeat would, and only of one: a cluster
    /// never heard from, or marked silent, is Available again only through a heartbeat.
    @Test func `a poll renews the lease of an Available cluster only`() async throws {
        defer { directory.remove() }
        try await enrol("c1")
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(try await store.renewLease(byPollOf: "c1", now: start) == false, "no heartbeat yet: not Available")
        #expect(try await store.cluster(named: "c1")?.status.lastHeartbeatTime == nil)
        let beat = Heartbeat(claims: [ClusterClaim(name: "platform", value: "kubernetes")], allocatable: [:])
        #expect(try await store.recordHeartbeat(cluster: "c1", heartbeat: beat, now: start))
        #expect(try await store.renewLease(byPollOf: "c1", now: start.addingTimeInterval(30)))
        #expect(try await store.cluster(named: "c1")?.status.lastHeartbeatTime == start.addingTimeInterval(30))
        #expect(try await store.markSilentClusters(before: start.addingTimeInterval(29), now: start.addingTimeInterval(60)) == [])
        // Silent: a poll no longer renews, and says so, until a heartbeat makes it Available again.
        #expect(try await store.markSilentClusters(before: start.addingTimeInterval(31), now: start.addingTimeInterval(71)) == ["c1"])
        #expect(try await store.renewLease(byPollOf: "c1", now: start.addingTimeInterval(80)) == false)
        #expect(try await store.cluster(named: "c1")?.status.lastHeartbeatTime == start.addingTimeInterval(30))
        #expect(try await store.recordHeartbeat(cluster: "c1", heartbeat: beat, now: start.addingTimeInterval(90)))
        #expect(try await store.renewLease(byPollOf: "c1", now: start.addingTimeInterval(100)))
        // What the memo forgot (a hub restarted) is read: Available, so renewed, and remembered.
        let restarted = try SQLiteHubStore(path: directory.appending("hub.sqlite"))
        #expect(!restarted.memo.isLive("c1"))
        #expect(try await restarted.renewLease(byPollOf: "c1", now: start.addingTimeInterval(110)))
        #expect(restarted.memo.isLive("c1"))
        #expect(try await restarted.cluster(named: "c1")?.status.lastHeartbeatTime == start.addingTimeInterval(110))
    }

    /// A cluster's revision is read once and remembered (every poll asks for it), and forgotten by every change that
    /// moves it: a poll never sees an old one.
    @Test func `a cluster's revision is remembered until a change moves it`() async throws {
        defer { directory.remove() }
        try await enrol("c1")
        #expect(try await store.revision(cluster: "c1") == 0)
        // Remembered: a change made behind the store's back (no hub does this) is not read.
        try await store.pool.write { db in try db.execute(sql: "UPDATE clusters SET revision = 41 WHERE name = 'c1'") }
        #expect(try await store.revision(cluster: "c1") == 0)
        try await store.pool.write { db in try db.execute(sql: "UPDATE clusters SET revision = 0 WHERE name = 'c1'") }
        // Each change that moves it is seen by the very next read.
        _ = try await store.applyWork(work("a"), cluster: "c1", now: Date())
        #expect(try await store.revision(cluster: "c1") == 1)
        _ = try await store.applyWork(work("a"), cluster: "c1", now: Date())
        #expect(try await store.revision(cluster: "c1") == 1, "the same spec again moves nothing")
        _ = try await store.applyWorks([WorkWrite(work: work("b"), cluster: "c1", events: [])], now: Date())
        #expect(try await store.revision(cluster: "c1") == 2)
        _ = try await store.deleteWork(cluster: "c1", name: "a", now: Date())
        #expect(try await store.revision(cluster: "c1") == 3)
        #expect(try await store.releaseDeletions(cluster: "c1") == 3)
        #expect(try await store.revision(cluster: "c1") == 4)
        // A read that a change overtook is not remembered: it may be the revision before the change.
        let (_, readAt) = store.changes.rememberedRevision("c1")
        store.changes.publish("c1")
        store.changes.remember("c1", revision: 99, readAt: readAt)
        #expect(try await store.revision(cluster: "c1") == 4)
        // Removed: not found, whatever was remembered.
        try await store.removeCluster(named: "c1")
        await #expect(throws: CairnError.self) { try await store.revision(cluster: "c1") }
    }

    /// The lease check runs every few seconds; at 10,000 sites a pass through every cluster row took ~13 ms, one of
    /// them inside the writer's transaction.
    @Test func `the lease check reads an index, not every cluster row`() async throws {
        defer { directory.remove() }
        for (sql, arguments) in [(SQLiteHubStore.acceptedCountSQL, StatementArguments()), (SQLiteHubStore.silentClustersSQL, StatementArguments([1.0]))] {
            let plan = try await store.pool.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String? ?? "" }
            }
            #expect(plan.allSatisfy { $0.contains("INDEX clusters_by_lease") }, "\(sql): \(plan)")
        }
    }

    /// Agents' requests are checked against what the store remembers (`ClusterMemo`): each change below must be seen
    /// by the very next check, though the check before it was answered from memory.
    @Test func `what agents are checked against follows every change to their cluster`() async throws {
        defer { directory.remove() }
        try await enrol("c1")
        #expect(try await store.access(cluster: "c1") == ClusterAccess(state: .accepted, keyHash: "key-c1"))
        #expect(try await store.access(cluster: "c1") == ClusterAccess(state: .accepted, keyHash: "key-c1"))

        let beat = Heartbeat(claims: [ClusterClaim(name: "platform", value: "kubernetes")], allocatable: ["cpu": "4"])
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(try await store.recordHeartbeat(cluster: "c1", heartbeat: beat, now: start))
        #expect(try await store.recordHeartbeat(cluster: "c1", heartbeat: beat, now: start.addingTimeInterval(1)) == false)
        #expect(try await store.recordHeartbeat(cluster: "c1", heartbeat: beat, now: start.addingTimeInterval(2)) == false)
        // Gone silent: the same heartbeat makes the cluster Available again.
        #expect(try await store.markSilentClusters(before: start.addingTimeInterval(100), now: start.addingTimeInterval(100)) == ["c1"])
        #expect(try await store.recordHeartbeat(cluster: "c1", heartbeat: beat, now: start.addingTimeInterval(101)))
        #expect(try await store.cluster(named: "c1")?.status.conditions[type: ConditionType.available]?.status == Condition.true)
        #expect(try await store.recordHeartbeat(cluster: "c1", heartbeat: beat, now: start.addingTimeInterval(102)) == false)

        _ = try await store.setEnrolment(cluster: "c1", state: .denied, now: Date())
        #expect(try await store.access(cluster: "c1")?.state == .denied)
        _ = try await store.setEnrolment(cluster: "c1", state: .accepted, now: Date())
        #expect(try await store.access(cluster: "c1")?.state == .accepted)
        try await store.renewCertificate(cluster: "c1", keyHash: "key-2", csr: "", pem: "")
        #expect(try await store.access(cluster: "c1") == ClusterAccess(state: .accepted, keyHash: "key-2"))
        try await store.removeCluster(named: "c1")
        #expect(try await store.access(cluster: "c1") == nil)
        await #expect(throws: CairnError.self) { try await store.recordHeartbeat(cluster: "c1", heartbeat: beat, now: start.addingTimeInterval(103)) }
    }

    /// An enrolment adds a row and changes none: what is remembered of the other clusters stays (one site joining a
    /// large fleet made every site's next requests read their rows again). A name removed and enrolled again is read
    /// afresh: its removal forgot it.
    @Test func `an enrolment forgets nothing of other clusters, and a name enrolled again is read afresh`() async throws {
        defer { directory.remove() }
        try await enrol("c1")
        let beat = Heartbeat(claims: [ClusterClaim(name: "platform", value: "kubernetes")], allocatable: ["cpu": "4"])
        #expect(try await store.recordHeartbeat(cluster: "c1", heartbeat: beat, now: Date()))
        _ = try await store.access(cluster: "c1")
        #expect(store.memo.access("c1") != nil && store.memo.isUnchanged(beat, of: "c1"))

        try await enrol("c2")
        #expect(store.memo.access("c1") == ClusterAccess(state: .accepted, keyHash: "key-c1"), "another cluster's enrolment forgot c1")
        #expect(store.memo.isUnchanged(beat, of: "c1") && store.memo.isLive("c1"))

        try await store.removeCluster(named: "c1")
        #expect(store.memo.access("c1") == nil && !store.memo.isUnchanged(beat, of: "c1") && !store.memo.isLive("c1"))
        try await enrol("c1", key: "key-c1-again", token: "t-c1-again")
        #expect(try await store.access(cluster: "c1") == ClusterAccess(state: .accepted, keyHash: "key-c1-again"))
        #expect(try await store.renewLease(byPollOf: "c1", now: Date()) == false, "enrolled again, c1 is not Available until it beats")
        #expect(try await store.recordHeartbeat(cluster: "c1", heartbeat: beat, now: Date()), "its first heartbeat makes it Available")
    }

    /// Administrators' roles are remembered too (`AdminRoleMemo`): a token's new role is seen by the very next check.
    @Test func `what administrators are checked against follows every change to their tokens`() async throws {
        defer { directory.remove() }
        #expect(try await store.adminRole(tokenHash: "t1") == nil)
        try await store.addAdminToken(hash: "t1", role: .viewer, now: Date())
        #expect(try await store.adminRole(tokenHash: "t1") == .viewer)
        #expect(try await store.adminRole(tokenHash: "t1") == .viewer)
        try await store.addAdminToken(hash: "t1", role: .admin, now: Date())
        #expect(try await store.adminRole(tokenHash: "t1") == .admin)
        try await store.pool.write { db in try db.execute(sql: "DELETE FROM admin_tokens WHERE hash = 't1'") }
        #expect(try await store.adminRole(tokenHash: "t1") == nil)
    }

    @Test func `each cluster's revision strictly increases, independently of the others`() async throws {
        defer { directory.remove() }
        try await enrol("c1")
        try await enrol("c2")
        var last: Int64 = 0
        for index in 0..<5 {
            _ = try await store.applyWork(work("w\(index)"), cluster: "c1", now: Date())
            let revision = try await store.revision(cluster: "c1")
            #expect(revision > last)
            last = revision
        }
        #expect(try await store.revision(cluster: "c2") == 0)
        _ = try await store.applyWork(work("w0"), cluster: "c2", now: Date())
        #expect(try await store.revision(cluster: "c2") == 1)
        #expect(try await store.revision(cluster: "c1") == 5)
    }

    @Test func `an unchanged apply moves neither generation nor revision`() async throws {
        defer { directory.remove() }
        try await enrol("c1")
        let first = try await store.applyWork(work("w"), cluster: "c1", now: Date())
        let again = try await store.applyWork(work("w"), cluster: "c1", now: Date())
        #expect(first.generation == 1 && again.generation == 1)
        #expect(try await store.revision(cluster: "c1") == 1)
        let changed = try await store.applyWork(work("w", data: "2"), cluster: "c1", now: Date())
        #expect(changed.generation == 2)
        #expect(try await store.revision(cluster: "c1") == 2)
    }

    @Test func `a delta carries changes and tombstones since a revision`() async throws {
        defer { directory.remove() }
        try await enrol("c1")
        _ = try await store.applyWork(work("a"), cluster: "c1", now: Date())
        _ = try await store.applyWork(work("b"), cluster: "c1", now: Date())
        let since = try await store.revision(cluster: "c1")
        _ = try await store.applyWork(work("c"), cluster: "c1", now: Date())
        let deleting = try await store.deleteWork(cluster: "c1", name: "a", now: Date(timeIntervalSince1970: 1_800_000_000.25))
        #expect(deleting.metadata.deletionTimestamp == Date(timeIntervalSince1970: 1_800_000_000.25))
        #expect(try await store.work(cluster: "c1", name: "a") == deleting, "what a delete answers is what is stored")
        let delta = try await store.bundle(cluster: "c1", since: since).bundle
        #expect(delta.since == since)
        #expect(delta.works.map(\.name) == ["c"])
        #expect(delta.tombstones.map(\.name) == ["a"])
        let full = try await store.bundle(cluster: "c1", since: nil).bundle
        #expect(full.isFull)
        #expect(full.works.map(\.name) == ["b", "c"])
        #expect(full.tombstones.map(\.name) == ["a"], "a full bundle names what is being deleted, for a site that never had it")
        // The work stays at the hub, marked for deletion, until the agent reports it gone.
        #expect(try await store.work(cluster: "c1", name: "a")?.metadata.deletionTimestamp != nil)
        try await store.recordStatus(cluster: "c1", updates: [WorkStatusUpdate(name: "a", observedGeneration: 1, status: nil, deleted: true)], now: Date())
        #expect(try await store.work(cluster: "c1", name: "a") == nil)
        #expect(try await store.bundle(cluster: "c1", since: nil).bundle.tombstones.isEmpty)
    }

    @Test func `a revision behind the compacted tombstones gets a full bundle`() async throws {
        defer { directory.remove() }
        try await enrol("c1")
        _ = try await store.applyWork(work("a"), cluster: "c1", now: Date())
        _ = try await store.applyWork(work("b"), cluster: "c1", now: Date())
        let old = try await store.revision(cluster: "c1")
        _ = try await store.deleteWork(cluster: "c1", name: "a", now: Date())
        let afterDelete = try await store.revision(cluster: "c1")
        #expect(try await store.compactTombstones(before: Date().addingTimeInterval(1)) == 1)
        #expect(try await store.bundle(cluster: "c1", since: old).bundle.isFull)
        let current = try await store.bundle(cluster: "c1", since: afterDelete).bundle
        #expect(!current.isFull && current.works.isEmpty)
    }

    @Test func `a revision the hub never issued gets a full bundle`() async throws {
        defer { directory.remove() }
        try await enrol("c1")
        _ = try await store.applyWork(work("a"), cluster: "c1", now: Date())
        #expect(try await store.bundle(cluster: "c1", since: 99).bundle.isFull)
    }

    @Test func `works written together land with their events, and one for a missing cluster fails alone`() async throws {
        defer { directory.remove() }
        try await enrol("c1")
        try await enrol("c2")
        let event = { (cluster: String) in Event(time: Date(), object: "WorkSet/web", reason: "Applied", message: "applied to \(cluster)") }
        let writes = ["c1", "gone", "c2"].map { WorkWrite(work: work("web"), cluster: $0, events: [event($0)]) }
        let before = try await store.revision(cluster: "c1")
        let outcomes = try await store.applyWorks(writes, now: Date())
        #expect(try outcomes[0].get().generation == 1)
        #expect(throws: CairnError.self) { try outcomes[1].get() }
        #expect(try outcomes[2].get().generation == 1)
        #expect(try await store.revision(cluster: "c1") == before + 1, "a revision for the sites to fetch")
        #expect(try await store.work(cluster: "c2", name: "web") != nil)
        let events = try await store.events(object: "WorkSet/web", limit: 10).map(\.message).sorted()
        #expect(events == ["applied to c1", "applied to c2"], "the failed write's event went with it")
        // Written again unchanged: nothing moves.
        let again = try await store.applyWorks([writes[0]], now: Date())
        #expect(try again[0].get().generation == 1)
        #expect(try await store.revision(cluster: "c1") == before + 1)
    }

    @Test func `concurrent writers lose nothing`() async throws {
        defer { directory.remove() }
        try await enrol("c1")
        try await enrol("c2")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                group.addTask { _ = try await store.applyWork(work("w\(index)"), cluster: index % 2 == 0 ? "c1" : "c2", now: Date()) }
            }
            try await group.waitForAll()
        }
        #expect(try await store.revision(cluster: "c1") == 20)
        #expect(try await store.revision(cluster: "c2") == 20)
        #expect(try await store.works(cluster: nil).count == 40)
    }

    @Test func `a token is spent atomically and the same agent asking again is not charged`() async throws {
        defer { directory.remove() }
        let token = EnrolmentToken(id: "once", autoApprove: false, labels: ["region": "eu"], expiresAt: Date().addingTimeInterval(60), maxUses: 1, createdAt: Date())
        try await store.createToken(token, secretHash: Secrets.hash("s"))
        let ask = EnrolRequest(token: "", clusterName: "c1", labels: ["tier": "edge"], credentialHash: Secrets.hash("k1"), csr: "", claims: nil)
        #expect(try await store.enrol(ask, keyHash: "k", tokenID: "once", tokenSecretHash: Secrets.hash("s"), source: "test", now: Date()).state == .pending)
        #expect(try await store.enrol(ask, keyHash: "k", tokenID: "once", tokenSecretHash: Secrets.hash("s"), source: "test", now: Date()).state == .pending)
        var other = ask
        other.clusterName = "c2"
        await #expect(throws: CairnError.self) { try await store.enrol(other, keyHash: "k", tokenID: "once", tokenSecretHash: Secrets.hash("s"), source: "test", now: Date()) }
        // Another key claiming the name with a spent token is refused outright.
        var impostor = ask
        impostor.credentialHash = Secrets.hash("k2")
        let error = await #expect(throws: CairnError.self) { try await store.enrol(impostor, keyHash: "k", tokenID: "once", tokenSecretHash: Secrets.hash("s"), source: "test", now: Date()) }
        #expect(error?.code == .tokenRejected)
        #expect(try await store.cluster(named: "c1")?.metadata.labels == ["region": "eu", "tier": "edge"])
        #expect(try await store.tokens().first?.uses == 1)
    }

    @Test func `another key claiming an enrolled name is held pending and flags the cluster`() async throws {
        defer { directory.remove() }
        let token = EnrolmentToken(id: "many", autoApprove: true, labels: [:], expiresAt: Date().addingTimeInterval(60), maxUses: nil, createdAt: Date())
        try await store.createToken(token, secretHash: Secrets.hash("s"))
        let owner = EnrolRequest(token: "", clusterName: "c1", labels: nil, credentialHash: Secrets.hash("owner"), csr: "", claims: nil)
        #expect(try await store.enrol(owner, keyHash: "owner-key", tokenID: "many", tokenSecretHash: Secrets.hash("s"), source: "10.0.0.1", now: Date()).state == .accepted)
        var intruder = owner
        intruder.credentialHash = Secrets.hash("intruder")
        let held = try await store.enrol(intruder, keyHash: "intruder-key", tokenID: "many", tokenSecretHash: Secrets.hash("s"), source: "10.0.0.9", now: Date())
        #expect(held.state == .pending)
        #expect(held.message?.hasPrefix("held") == true)
        #expect(try await store.isHeld(cluster: "c1", credentialHash: Secrets.hash("intruder")))
        let cluster = try #require(try await store.cluster(named: "c1"))
        #expect(cluster.status.conditions[type: "EnrolmentConflict"]?.status == Condition.true)
        #expect(cluster.status.conditions[type: "EnrolmentConflict"]?.message.contains("10.0.0.9") == true)
        let identity = try #require(try await store.identity(cluster: "c1"))
        #expect(identity.keyHash == "owner-key" && identity.credentialHash == Secrets.hash("owner") && identity.state == .accepted)
    }
}

extension StoreTests {
    func transition(_ sequence: Int64, _ status: String) -> StatusTransition {
        StatusTransition(sequence: sequence, work: "a", generation: 1, time: Date(), type: "Available", status: status, reason: "R\(sequence)")
    }

    @Test func `each journaled transition becomes one event, however often it is sent`() async throws {
        defer { directory.remove() }
        try await enrol("c1")
        _ = try await store.applyWork(work("a"), cluster: "c1", now: Date())
        try await store.recordStatus(cluster: "c1", report: StatusReport(works: [], transitions: [transition(1, "False"), transition(2, "True")]), now: Date())
        // The acknowledgement was lost: the site sends 1 and 2 again, with 3.
        try await store.recordStatus(
            cluster: "c1", report: StatusReport(works: [], transitions: [transition(1, "False"), transition(2, "True"), transition(3, "False")], droppedTransitions: 4),
            now: Date())
        let events = try await store.events(object: "ManifestWork/c1/a", limit: 100)
        #expect(events.map(\.reason).sorted() == ["R1", "R2", "R3"])
        #expect(events.contains { $0.message == "Available=False at generation 1, on the site" })
        let dropped = try await store.events(object: "ManagedCluster/c1", limit: 100).filter { $0.reason == "TransitionsDropped" }
        #expect(dropped.count == 1 && dropped[0].message.contains("4 status transitions"))
    }

    /// The write builds the stored work in memory instead of reading it back: what it returns must be what is read,
    /// and the hash it stores must be the one bundles are checked against — numbers of every shape included.
    @Test func `a work as written is the work as read back, and its stored hash is the bundle's`() async throws {
        defer { directory.remove() }
        try await enrol("c1")
        var numbers = work("numbers")
        numbers.metadata.labels = ["app": "numbers"]
        numbers.metadata.annotations = ["note": "ünïcode"]
        numbers.spec.workload.manifests[0]["data"] = nil
        numbers.spec.workload.manifests[0]["spec"] = [
            "half": .double(1.5), "whole": .double(1.0), "big": .int(9_007_199_254_740_993), "tiny": .double(1e-7), "negative": .double(-0.0),
        ]
        for round in 0..<2 {
            if round == 1 { numbers.spec.workload.manifests[0]["spec"]?["whole"] = .double(2.0) }
            let written = try await store.applyWork(numbers, cluster: "c1", now: Date())
            #expect(written == (try await store.work(cluster: "c1", name: "numbers")))
            #expect(written.generation == Int64(round + 1))
            let bundle = try await store.bundle(cluster: "c1", since: nil)
            let hashes = try bundle.bundle.works.map { (name: $0.name, hash: try BundleStatement.workHash($0)) }
            #expect(BundleStatement.stateDigest(hashes) == bundle.stateDigest)
        }
    }
}
