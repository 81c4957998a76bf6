import CairnAgent
import CairnCommon
import CairnTestSupport
import Foundation
import Synchronization
import Testing

/// The adapter against whatever API server a kubeconfig names. Everything it creates lives in a namespace and
/// a CRD group of its own (random suffix) and is deleted at the end.
struct KubernetesIntegration {
    let adapter: KubernetesAdapter
    let suffix = String(UUID().uuidString.lowercased().prefix(8))
    var namespace: String { "cairn-it-\(suffix)" }
    var group: String { "it-\(suffix).cairn.dev" }

    init(kubeconfig: String, context: String? = nil) throws {
        adapter = KubernetesAdapter(connection: try KubeConnection.kubeconfig(path: kubeconfig, context: context), establishTimeout: .seconds(30))
    }

    func run() async throws {
        let namespaceManifest: JSONValue = ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(namespace)]]
        let crd: JSONValue = [
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": ["name": .string("gadgets.\(group)")],
            "spec": [
                "group": .string(group), "scope": "Namespaced", "names": ["plural": "gadgets", "singular": "gadget", "kind": "Gadget"],
                "versions": [["name": "v1", "served": true, "storage": true, "schema": ["openAPIV3Schema": ["type": "object", "x-kubernetes-preserve-unknown-fields": true]]]],
            ],
        ]
        let keys = [namespaceManifest, crd].compactMap(ManifestKey.init(manifest:))
        do {
            try await exercise(namespaceManifest: namespaceManifest, crd: crd)
        } catch {
            for key in keys.reversed() { _ = try? await adapter.delete(key, uid: nil, propagation: .background) }
            await adapter.shutdown()
            throw error
        }
        for key in keys.reversed() { _ = try await adapter.delete(key, uid: nil, propagation: .background) }
        await adapter.shutdown()
    }

    private func exercise(namespaceManifest: JSONValue, crd: JSONValue) async throws {
        let claims = try await adapter.claims()
        #expect(claims.claims.contains { $0.name == "kubernetes.version" && $0.value.hasPrefix("v1.") })
        _ = try await adapter.apply(namespaceManifest, key: ManifestKey(manifest: namespaceManifest)!, strategy: .default)

        // Server-side apply: create, then update, read back with our field manager.
        let map: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "settings", "namespace": .string(namespace)], "data": ["mode": "a"]]
        let mapKey = ManifestKey(manifest: map)!
        let created = try await adapter.apply(map, key: mapKey, strategy: .default)
        var changed = map
        changed["data"]?["mode"] = "b"
        #expect(try await adapter.apply(changed, key: mapKey, strategy: .default).uid == created.uid)
        let live = try #require(try await adapter.get(mapKey))
        #expect(live["data"]?["mode"] == "b")
        #expect(live["metadata"]?["managedFields"]?.arrayValue?.contains { $0["manager"] == "cairn-agent" } == true)

        // CreateOnly leaves it; Update writes through resourceVersion; ReadOnly never writes.
        var third = map
        third["data"]?["mode"] = "c"
        #expect(try await adapter.apply(third, key: mapKey, strategy: UpdateStrategy(type: .createOnly)).changed == false)
        #expect(try await adapter.get(mapKey)?["data"]?["mode"] == "b")
        _ = try await adapter.apply(third, key: mapKey, strategy: UpdateStrategy(type: .update))
        #expect(try await adapter.get(mapKey)?["data"]?["mode"] == "c")
        let absent: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "absent", "namespace": .string(namespace)]]
        await #expect(throws: AdapterError.self) { try await adapter.apply(absent, key: ManifestKey(manifest: absent)!, strategy: UpdateStrategy(type: .readOnly)) }

        // Watching the ConfigMaps: a change to the tracked one is seen.
        let changes = Atomic<Int>(0)
        try await eventually("the watch to start", timeout: 20) { await adapter.watch([mapKey]) { changes.add(1, ordering: .relaxed) } }
        let seen = changes.load(ordering: .relaxed)
        var fourth = map
        fourth["data"]?["mode"] = "d"
        _ = try await adapter.apply(fourth, key: mapKey, strategy: .default)
        try await eventually("the change to be watched", timeout: 20) { changes.load(ordering: .relaxed) > seen }
        _ = await adapter.watch([]) {}

        // A CRD, then its custom resource as soon as it is established.
        _ = try await adapter.apply(crd, key: ManifestKey(manifest: crd)!, strategy: .default)
        let gadget: JSONValue = ["apiVersion": .string("\(group)/v1"), "kind": "Gadget", "metadata": ["name": "g1", "namespace": .string(namespace)], "spec": ["size": 3]]
        _ = try await adapter.apply(gadget, key: ManifestKey(manifest: gadget)!, strategy: .default)
        #expect(try await adapter.get(ManifestKey(manifest: gadget)!)?["spec"]?["size"] == 3)

        // A UID that is not the object's own never deletes it; the right one does.
        #expect(try await adapter.delete(mapKey, uid: "00000000-0000-0000-0000-000000000000", propagation: .background) == .notOurs)
        #expect(try await adapter.get(mapKey) != nil)
        #expect(try await adapter.delete(mapKey, uid: created.uid, propagation: .foreground) == .deleted)
        try await eventually("the ConfigMap to go", timeout: 30) { try await adapter.get(mapKey) == nil }
        #expect(try await adapter.delete(mapKey, uid: created.uid, propagation: .background) == .alreadyGone)
    }
}

/// Against a real API server, when CAIRN_TEST_KUBECONFIG names a kubeconfig (CAIRN_TEST_KUBECONTEXT picks a
/// context); skipped, and reported as skipped, otherwise.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["CAIRN_TEST_KUBECONFIG"] != nil,
        "set CAIRN_TEST_KUBECONFIG to a kubeconfig to run the adapter against a real Kubernetes API server"))
struct KubernetesIntegrationTests {
    @Test func `the adapter against a real API server`() async throws {
        let environment = ProcessInfo.processInfo.environment
        try await KubernetesIntegration(kubeconfig: environment["CAIRN_TEST_KUBECONFIG"]!, context: environment["CAIRN_TEST_KUBECONTEXT"]).run()
    }
}

/// The same suite against the test server, so it cannot rot while no real cluster is at hand.
@Suite struct KubernetesIntegrationSelfTests {
    @Test func `the integration suite passes against the test API server`() async throws {
        let directory = try TemporaryDirectory("kube-it")
        defer { directory.remove() }
        let server = try await KubeAPITestServer(directory: directory.appending("pki"), token: "it")
        let kubeconfig = try server.writeKubeconfig(to: directory.appending("kubeconfig"), user: "{token: it}")
        do {
            try await KubernetesIntegration(kubeconfig: kubeconfig).run()
        } catch {
            try? await server.stop()
            throw error
        }
        try await server.stop()
    }
}
