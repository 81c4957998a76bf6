import CairnAgent
import CairnCommon
import CairnTestSupport
import Foundation
import Logging
import Testing

/// The reconciler against the real simulated cluster and a real cache file, without a hub.
@Suite(.ownThread) struct ReconcilerTests {
    let directory: TemporaryDirectory
    let cache: AgentCache
    let site: SimulatedCluster
    let reconciler: Reconciler

    init() throws {
        directory = try TemporaryDirectory("reconcile")
        cache = try AgentCache(path: directory.appending("agent.sqlite"))
        var configuration = SimulatedCluster.Configuration()
        configuration.readyDelay = 0
        site = try SimulatedCluster(path: directory.appending("site.sqlite"), configuration: configuration)
        reconciler = Reconciler(cache: cache, adapter: site, logger: Logger(label: "test"))
    }

    func work(_ name: String, _ manifests: [JSONValue], generation: Int64 = 1, policy: PropagationPolicy? = nil) -> ManifestWork {
        var work = ManifestWork(metadata: ObjectMeta(name: name), spec: .init(manifests: manifests, deleteOption: policy.map { .init(propagationPolicy: $0) }))
        work.metadata.generation = generation
        return work
    }

    func key(_ manifest: JSONValue) -> ManifestKey { ManifestKey(manifest: manifest)! }

    @Test func `the revision advances only together with its bundle`() throws {
        defer { directory.remove() }
        #expect(try cache.revision() == nil)
        try cache.commit(WorkBundle(cluster: "c1", revision: 3, since: nil, works: [work("a", [])]))
        #expect(try cache.revision() == 3)
        #expect(try cache.works().map(\.work.name) == ["a"])
        // A bundle that fails verification never reaches the cache.
        let encoded = try BundleCodec().encode(WorkBundle(cluster: "c1", revision: 4, since: 3, works: [work("b", [])]))
        var tampered = encoded.bytes
        tampered[tampered.count - 1] ^= 0xff
        #expect(throws: CairnError.self) { try cache.commit(try BundleCodec().decode(tampered, expectedDigest: encoded.digest)) }
        #expect(try cache.revision() == 3)
        #expect(try cache.works().map(\.work.name) == ["a"])
    }

    @Test func `namespaces and CRDs are applied first, workloads last`() async throws {
        defer { directory.remove() }
        let manifests: [JSONValue] = [
            ["apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web", "namespace": "shop"]],
            ["apiVersion": "example.com/v1", "kind": "Widget", "metadata": ["name": "w", "namespace": "shop"]],
            ["apiVersion": "v1", "kind": "Service", "metadata": ["name": "web", "namespace": "shop"]],
            ["apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": ["name": "widgets.example.com"]],
            ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "conf", "namespace": "shop"]],
            ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "shop"]],
        ]
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: [work("shop", manifests)]))
        try await reconciler.reconcile(apply: nil)
        let order = try await site.creationOrder().map(\.kind)
        #expect(order == ["CustomResourceDefinition", "Namespace", "ConfigMap", "Service", "Deployment", "Widget"])
    }

    @Test func `manifests that leave a work and works that leave the bundle are deleted`() async throws {
        defer { directory.remove() }
        let map: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "a", "namespace": "x"]]
        let secret: JSONValue = ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "b", "namespace": "x"]]
        let other: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "o", "namespace": "x"]]
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: [work("one", [map, secret]), work("two", [other])]))
        try await reconciler.reconcile(apply: nil)
        #expect(try await site.objects().count == 3)
        try cache.commit(WorkBundle(cluster: "c1", revision: 2, since: 1, works: [work("one", [map], generation: 2)]))
        try await reconciler.reconcile(apply: ["one"])
        #expect(try await site.get(key(secret)) == nil)
        #expect(try await site.get(key(map)) != nil)
        try cache.commit(WorkBundle(cluster: "c1", revision: 3, since: 2, works: [], tombstones: [Tombstone(name: "two", revision: 3)]))
        try await reconciler.reconcile(apply: [])
        #expect(try await site.get(key(other)) == nil)
        #expect(try cache.works().map(\.work.name) == ["one"])
        #expect(try cache.latestStatuses()["two"]?.deleted == true)
    }

    @Test func `Orphan leaves the objects on the site`() async throws {
        defer { directory.remove() }
        let map: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "keep", "namespace": "x"]]
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: [work("kept", [map], policy: .orphan)]))
        try await reconciler.reconcile(apply: nil)
        try cache.commit(WorkBundle(cluster: "c1", revision: 2, since: nil, works: []))
        try await reconciler.reconcile(apply: nil)
        #expect(try await site.get(key(map)) != nil)
        #expect(try cache.works().isEmpty)
        #expect(try cache.inventory().isEmpty)
    }

    @Test func `drift on the site is corrected at resync`() async throws {
        defer { directory.remove() }
        let deployment: JSONValue = ["apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web", "namespace": "x"], "spec": ["replicas": 2]]
        let map: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "conf", "namespace": "x"], "data": ["a": "1"]]
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: [work("app", [deployment, map])]))
        try await reconciler.reconcile(apply: nil)
        try await site.tamper(key(deployment)) { $0["spec"]?["replicas"] = 7 }
        try await site.remove(key(map))
        #expect(try await site.get(key(deployment))?["spec"]?["replicas"] == 7)
        // A pass that re-applies nothing leaves drift alone but sees it in status...
        try await reconciler.reconcile(apply: [])
        #expect(try cache.latestStatuses()["app"]?.status?.conditions[type: ConditionType.available]?.status == Condition.false)
        // ...and the resync pass puts the site back.
        try await reconciler.reconcile(apply: nil)
        #expect(try await site.get(key(deployment))?["spec"]?["replicas"] == 2)
        #expect(try await site.get(key(map))?["data"]?["a"] == "1")
    }

    @Test func `an object someone else recreated is not deleted`() async throws {
        defer { directory.remove() }
        let map: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "shared", "namespace": "x"]]
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: [work("w", [map])]))
        try await reconciler.reconcile(apply: nil)
        try await site.remove(key(map))
        _ = try await site.apply(map, key: key(map), strategy: .default)
        let theirs = try await site.get(key(map))?["metadata"]?["uid"]
        try cache.commit(WorkBundle(cluster: "c1", revision: 2, since: nil, works: []))
        try await reconciler.reconcile(apply: nil)
        #expect(try await site.get(key(map))?["metadata"]?["uid"] == theirs)
    }

    @Test func `status carries feedback values and is queued only when it changes`() async throws {
        defer { directory.remove() }
        let deployment: JSONValue = ["apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web", "namespace": "x"], "spec": ["replicas": 3]]
        var shop = work("app", [deployment])
        shop.spec.manifestConfigs = [
            ManifestConfig(
                resourceIdentifier: ResourceIdentifier(group: "apps", resource: "deployments", name: "web", namespace: "x"),
                feedbackRules: [FeedbackRule(type: .wellKnownStatus), FeedbackRule(type: .jsonPaths, jsonPaths: [.init(name: "gen", path: ".status.observedGeneration")])])
        ]
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: [shop]))
        let first = try await reconciler.reconcile(apply: nil)
        #expect(first.queuedStatus)
        let values = try cache.latestStatuses()["app"]?.status?.resourceStatus.manifests.first?.statusFeedback?.values ?? []
        #expect(values.first { $0.name == "ReadyReplicas" }?.fieldValue.integer == 3)
        #expect(values.first { $0.name == "gen" }?.fieldValue.integer == 1)
        let second = try await reconciler.reconcile(apply: nil)
        #expect(!second.queuedStatus)
    }
}

extension ReconcilerTests {
    @Test func `drift is corrected except in fields the work leaves to others`() async throws {
        defer { directory.remove() }
        let deployment: JSONValue = ["apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web", "namespace": "shop"], "spec": ["replicas": 2, "paused": false]]
        var scaled = work("web", [deployment])
        let identifier = ResourceIdentifier(group: "apps", resource: "deployments", name: "web", namespace: "shop")
        scaled.spec.manifestConfigs = [
            ManifestConfig(resourceIdentifier: identifier, updateStrategy: UpdateStrategy(type: .serverSideApply, serverSideApply: .init(ignoreFields: [.init(jsonPaths: [".spec.replicas"])])))
        ]
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: [scaled]))
        try await reconciler.reconcile(apply: nil)
        // Someone scales it and pauses it; at resync the pause is undone, the scale is not.
        try await site.tamper(key(deployment)) {
            $0["spec"]?["replicas"] = 5
            $0["spec"]?["paused"] = true
        }
        try await reconciler.reconcile(apply: nil)
        let live = try #require(try await site.get(key(deployment)))
        #expect(live["spec"]?["replicas"] == 5)
        #expect(live["spec"]?["paused"] == false)
    }
}

/// The mass-deletion brake, against the real cache and simulated site.
extension ReconcilerTests {
    func configMapWorks(_ names: [String]) -> [ManifestWork] {
        names.map { work($0, [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string($0), "namespace": "brake"], "data": ["k": "v"]]]) }
    }

    var siteCount: Int { get async throws { try await site.objects().count } }

    @Test func `a bundle deleting most of the site is held until released`() async throws {
        defer { directory.remove() }
        let names = (0..<10).map { "w\($0)" }
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: configMapWorks(names)))
        try await reconciler.reconcile(apply: nil)
        #expect(try await siteCount == 10)
        // The hub now wants only two of them: eight deletions, more than half and more than five.
        try cache.commit(WorkBundle(cluster: "c1", revision: 2, since: nil, works: configMapWorks(["w0", "w1"])))
        let hold = try #require(try cache.deletionHold())
        #expect(hold == DeletionHold(revision: 2, reason: .massDeletion, works: 8, objects: 8, deletedWorks: 8, totalWorks: 10, deletedObjects: 8, totalObjects: 10))
        try await reconciler.reconcile(apply: nil)
        try await reconciler.reconcile(apply: nil)
        #expect(try await siteCount == 10)
        // A later bundle's deletions join the hold rather than slip through.
        try cache.commit(WorkBundle(cluster: "c1", revision: 3, since: 2, works: [], tombstones: [Tombstone(name: "w1", revision: 3)]))
        #expect(try cache.deletionHold()?.works == 9)
        try await reconciler.reconcile(apply: nil)
        #expect(try await siteCount == 10)
        // Released through revision 3: everything held is carried out.
        let changed = try cache.commit(WorkBundle(cluster: "c1", revision: 4, since: 3, works: [], deletionsReleasedThrough: 3))
        #expect(try cache.deletionHold() == nil)
        #expect(changed.contains("w0"))
        try await reconciler.reconcile(apply: nil)
        #expect(try await site.objects().compactMap { $0["metadata"]?["name"]?.stringValue } == ["w0"])
    }

    @Test func `deleting one at a time does not slip past the brake within its window`() async throws {
        defer { directory.remove() }
        let names = (0..<8).map { "w\($0)" }
        let start = Date()
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: configMapWorks(names)), now: start)
        for (index, name) in names.prefix(6).enumerated() {
            let revision = Int64(index + 2)
            try cache.commit(WorkBundle(cluster: "c1", revision: revision, since: revision - 1, works: [], tombstones: [Tombstone(name: name, revision: revision)]), now: start.addingTimeInterval(Double(index) * 60))
        }
        // Five pass (not more than five); the sixth, 6 of 8 within ten minutes, is held.
        let hold = try #require(try cache.deletionHold())
        #expect(hold.works == 1 && hold.deletedWorks == 6 && hold.totalWorks == 8)
        // Slowly — one every eleven minutes — nothing trips.
        try cache.commit(WorkBundle(cluster: "c1", revision: 9, since: 8, works: [], deletionsReleasedThrough: 8), now: start.addingTimeInterval(400))
        #expect(try cache.deletionHold() == nil)
        let slow = try AgentCache(path: directory.appending("slow.sqlite"))
        try slow.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: configMapWorks(names)), now: start)
        for (index, name) in names.prefix(7).enumerated() {
            let revision = Int64(index + 2)
            try slow.commit(WorkBundle(cluster: "c1", revision: revision, since: revision - 1, works: [], tombstones: [Tombstone(name: name, revision: revision)]), now: start.addingTimeInterval(Double(index) * 660))
        }
        #expect(try slow.deletionHold() == nil)
    }

    @Test func `churn within the window does not add up`() async throws {
        defer { directory.remove() }
        let names = (0..<12).map { "w\($0)" }
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: configMapWorks(names)))
        // Five go, five others come, those five go: the site never shrinks by more than five.
        try cache.commit(WorkBundle(cluster: "c1", revision: 2, since: nil, works: configMapWorks(Array(names.prefix(7)))))
        try cache.commit(WorkBundle(cluster: "c1", revision: 3, since: nil, works: configMapWorks(Array(names.prefix(7)) + ["n0", "n1", "n2", "n3", "n4"])))
        try cache.commit(WorkBundle(cluster: "c1", revision: 4, since: nil, works: configMapWorks(Array(names.prefix(7)))))
        #expect(try cache.deletionHold() == nil)
    }

    @Test func `a work deleted before the site had it is reported gone at once, in a delta or a full bundle`() async throws {
        defer { directory.remove() }
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: configMapWorks(["kept", "leaving"])))
        try await reconciler.reconcile(apply: nil)
        try cache.markSent(try cache.unsent(limit: 100))
        // "never" was written and deleted at the hub while the site was away; "leaving" the site has.
        try cache.commit(
            WorkBundle(cluster: "c1", revision: 4, since: 1, works: [], tombstones: [Tombstone(name: "never", revision: 3), Tombstone(name: "leaving", revision: 4)]))
        var queued = try cache.latestStatuses()
        #expect(queued["never"]?.deleted == true, "nothing to remove: gone as far as this site is concerned")
        #expect(queued["leaving"]?.deleted == false, "a work on the site is reported gone only once its objects are")
        try await reconciler.reconcile(apply: nil)
        #expect(try cache.latestStatuses()["leaving"]?.deleted == true)
        // A full bundle names the works being deleted (it leaves them out like any other).
        try cache.markSent(try cache.unsent(limit: 100))
        try cache.commit(WorkBundle(cluster: "c1", revision: 6, since: nil, works: configMapWorks(["kept"]), tombstones: [Tombstone(name: "unseen", revision: 5)]))
        queued = try cache.latestStatuses()
        #expect(queued["unseen"]?.deleted == true)
        #expect(queued["kept"]?.deleted == false)
    }

    @Test func `a release for an older hold does not release a newer one`() async throws {
        defer { directory.remove() }
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: configMapWorks((0..<10).map { "w\($0)" })))
        try cache.commit(WorkBundle(cluster: "c1", revision: 5, since: nil, works: [], deletionsReleasedThrough: 4))
        #expect(try cache.deletionHold()?.revision == 5)
    }

    @Test func `a few deletions go through, and orphaned works do not count`() async throws {
        defer { directory.remove() }
        var works = configMapWorks((0..<10).map { "w\($0)" })
        for index in 0..<6 { works[index].spec.deleteOption = .init(propagationPolicy: .orphan) }
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: works))
        try await reconciler.reconcile(apply: nil)
        // Nine works leave, but six of them orphan their objects: three real deletions pass the brake.
        try cache.commit(WorkBundle(cluster: "c1", revision: 2, since: nil, works: [works[9]]))
        #expect(try cache.deletionHold() == nil)
        try await reconciler.reconcile(apply: nil)
        #expect(try await siteCount == 7)
    }

    @Test func `manifests leaving a work count as objects`() async throws {
        defer { directory.remove() }
        let manifests: [JSONValue] = (0..<12).map { ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string("m\($0)"), "namespace": "brake"]] }
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: [work("big", manifests)]))
        try await reconciler.reconcile(apply: nil)
        try cache.commit(WorkBundle(cluster: "c1", revision: 2, since: 1, works: [work("big", Array(manifests.prefix(2)), generation: 2)]))
        #expect(try cache.deletionHold()?.objects == 10)
        try await reconciler.reconcile(apply: nil)
        #expect(try await siteCount == 12)
        try cache.commit(WorkBundle(cluster: "c1", revision: 3, since: 2, works: [], deletionsReleasedThrough: 2))
        try await reconciler.reconcile(apply: try cache.works().map(\.work.name).reduce(into: Set<String>()) { $0.insert($1) })
        #expect(try await siteCount == 2)
    }

    @Test func `a hub that went back in time gets every deletion held`() async throws {
        defer { directory.remove() }
        try cache.commit(WorkBundle(cluster: "c1", revision: 10, since: nil, works: configMapWorks(["a", "b", "c"])))
        try await reconciler.reconcile(apply: nil)
        try cache.commit(WorkBundle(cluster: "c1", revision: 4, since: nil, works: configMapWorks(["a", "b"])), regressed: true)
        #expect(try cache.deletionHold()?.reason == .hubWentBack)
        #expect(try cache.revision() == 4)
        try await reconciler.reconcile(apply: nil)
        #expect(try await siteCount == 3)
    }
}

/// The simulated site, with the agent stopped dead (as by kill -9) right after the site accepts one object.
final class StopsAfterApplying: ClusterAdapter {
    let site: SimulatedCluster
    let name: String
    init(_ site: SimulatedCluster, stopAfter name: String) {
        self.site = site
        self.name = name
    }
    func apply(_ manifest: JSONValue, key: ManifestKey, strategy: UpdateStrategy) async throws -> ApplyOutcome {
        let outcome = try await site.apply(manifest, key: key, strategy: strategy)
        if key.name == name { throw CancellationError() }
        return outcome
    }
    func get(_ key: ManifestKey) async throws -> JSONValue? { try await site.get(key) }
    func delete(_ key: ManifestKey, uid: String?, propagation: PropagationPolicy) async throws -> DeleteOutcome {
        try await site.delete(key, uid: uid, propagation: propagation)
    }
    func objects() async throws -> [JSONValue] { try await site.objects() }
    func claims() async throws -> SiteClaims { try await site.claims() }
}

extension ReconcilerTests {
    @Test func `an object the site accepted just before the agent stopped is not orphaned`() async throws {
        defer { directory.remove() }
        let map: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "late", "namespace": "shop"]]
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: [work("w", [map])]))
        let stopping = Reconciler(cache: cache, adapter: StopsAfterApplying(site, stopAfter: "late"), logger: Logger(label: "test"))
        await #expect(throws: CancellationError.self) { try await stopping.reconcile(apply: nil) }
        #expect(try await site.get(key(map)) != nil)
        // The work is deleted before the agent runs again: the object still goes with it.
        try cache.commit(WorkBundle(cluster: "c1", revision: 2, since: nil, works: []))
        try await reconciler.reconcile(apply: nil)
        #expect(try await site.get(key(map)) == nil)
        #expect(try cache.inventory().isEmpty)
    }

    @Test func `a manifest the site refused leaves no intent behind`() async throws {
        defer { directory.remove() }
        let readOnly: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "theirs", "namespace": "shop"]]
        var watched = work("w", [readOnly])
        watched.spec.manifestConfigs = [ManifestConfig(resourceIdentifier: ResourceIdentifier(resource: "configmaps", name: "theirs", namespace: "shop"), updateStrategy: UpdateStrategy(type: .readOnly))]
        try cache.commit(WorkBundle(cluster: "c1", revision: 1, since: nil, works: [watched]))
        try await reconciler.reconcile(apply: nil)
        #expect(try cache.inventory().isEmpty)
    }
}

/// The status outbox's journal of transitions.
extension ReconcilerTests {
    func status(_ available: String) -> ManifestWork.Status {
        ManifestWork.Status(conditions: [Condition(type: ConditionType.available, status: available, reason: "Test", message: "")], resourceStatus: .init(manifests: []))
    }

    @Test func `every condition change is journaled, bounded, with what was dropped counted`() throws {
        defer { directory.remove() }
        try cache.enqueue(WorkStatusUpdate(name: "w", observedGeneration: 1, status: status(Condition.false)))
        try cache.enqueue(WorkStatusUpdate(name: "w", observedGeneration: 1, status: status(Condition.false)))
        try cache.enqueue(WorkStatusUpdate(name: "w", observedGeneration: 1, status: status(Condition.true)))
        var journal = try cache.journal(limit: 10)
        #expect(journal.transitions.map(\.status) == [Condition.false, Condition.true])
        #expect(journal.transitions[1].sequence > journal.transitions[0].sequence)
        // Flapping past the bound: the oldest go, and are counted.
        for index in 0..<(AgentCache.journalLimit + 10) {
            try cache.enqueue(WorkStatusUpdate(name: "w", observedGeneration: 1, status: status(index % 2 == 0 ? Condition.false : Condition.true)))
        }
        journal = try cache.journal(limit: 5_000)
        #expect(journal.transitions.count == AgentCache.journalLimit)
        #expect(journal.dropped == 12)
        // Acknowledged: gone, and the drop count with it; the outbox still holds the latest state.
        try cache.acknowledgeJournal(through: journal.transitions.last?.sequence, dropped: journal.dropped)
        #expect(try cache.journalLength() == 0)
        #expect(try cache.journal(limit: 10).dropped == 0)
        #expect(try cache.latestStatuses()["w"]?.status?.conditions.first?.status == Condition.true)
    }
}
