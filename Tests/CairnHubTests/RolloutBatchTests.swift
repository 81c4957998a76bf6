@testable import CairnHub
import CairnCommon
import CairnTestSupport
import Foundation
import Logging
import Synchronization
import Testing

@Suite struct RolloutBatchTests {
    final class Busy: Sendable {
        let asked = Mutex(0)
        /// Busy for the first `times` questions.
        let times: Int
        init(times: Int) { self.times = times }
        func ask() -> Bool { asked.withLock { $0 += 1; return $0 <= times } }
    }

    /// A rollout to 250 sites writes them 100 to a transaction, each with its Applied event, and between batches
    /// waits while the hub is busy with sites' reports — paced, never stopped.
    @Test func `a rollout writes its sites in batches and gives way between them while the hub is busy`() async throws {
        let directory = try TemporaryDirectory("rollout-batch")
        defer { directory.remove() }
        let store = try SQLiteHubStore(path: directory.appending("hub.sqlite"))
        let now = Date()
        let token = EnrolmentToken(id: "t", autoApprove: true, labels: [:], expiresAt: now.addingTimeInterval(60), maxUses: nil, createdAt: now)
        try await store.createToken(token, secretHash: Secrets.hash("secret"))
        let names = (0..<250).map { String(format: "site-%03d", $0) }
        for name in names {
            _ = try await store.enrol(
                EnrolRequest(token: "", clusterName: name, labels: nil, credentialHash: Secrets.hash(name), csr: "", claims: nil),
                keyHash: "key-\(name)", tokenID: token.id, tokenSecretHash: Secrets.hash("secret"), source: "test", now: now)
        }
        _ = try await store.applyPlacement(Placement(metadata: ObjectMeta(name: "all"), spec: .init()), now: now)
        let decisions = names.map { Placement.Decision(clusterName: $0, reason: "test", score: 0) }
        _ = try await store.setDecisions(placement: "all", status: .init(numberOfSelectedClusters: names.count, decisions: decisions), now: now)
        let template = ManifestWork.Spec(manifests: [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "settings", "namespace": "default"], "data": ["a": "1"]]])
        _ = try await store.applyWorkSet(WorkSet(metadata: ObjectMeta(name: "app"), spec: .init(placementRefs: [.init(name: "all")], manifestWorkTemplate: template)), now: now)

        let busy = Busy(times: 3)
        let controller = WorkSetController(store: store, signal: Wakeup(), logger: Logger(label: "test"), busy: busy.ask)
        try await controller.reconcile(now: now)

        #expect(try await store.works(ofWorkSet: "app").count == 250)
        #expect(try await store.events(object: "WorkSet/app", limit: 1_000).filter { $0.reason == "Applied" }.count == 250)
        // Three batches: asked before the second (busy three times, then not) and before the third.
        #expect(busy.asked.withLock { $0 } == 5)
        #expect(try await store.workSet(named: "app")?.status?.clusters.filter { $0.state == "Progressing" }.count == 250)
    }
}
