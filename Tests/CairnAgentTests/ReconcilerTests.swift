import CairnAgent
import CairnCommon
import CairnTestSupport
import Foundation
import Logging
import Testing

/// The reconciler against the real simulated cluster and a real cache file, without a hub.
@Suite struct ReconcilerTests {
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
