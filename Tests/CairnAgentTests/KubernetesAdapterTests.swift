import CairnAgent
import CairnCommon
import CairnTestSupport
import Foundation
import Testing

/// The Kubernetes adapter against a test server that answers as the recorded v1.36 API server does.
@Suite(.serialized) struct KubernetesAdapterTests {
    struct Setup {
        let directory: TemporaryDirectory
        let server: KubeAPITestServer
        let adapter: KubernetesAdapter
        let tokenFile: String

        func stop() async throws {
            await adapter.shutdown()
            try await server.stop()
            directory.remove()
        }
    }

    /// A server, and an adapter connected through a kubeconfig whose bearer token lives in a file.
    func setup() async throws -> Setup {
        let directory = try TemporaryDirectory("kube")
        let server = try await KubeAPITestServer(directory: directory.appending("pki"), token: "first-token")
        let tokenFile = directory.appending("token")
        try "first-token\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let kubeconfig = """
            apiVersion: v1
            kind: Config
            current-context: test
            clusters:
            - name: test
              cluster:
                server: \(server.url)
                certificate-authority-data: \(Data(server.caPEM.utf8).base64EncodedString())
            users:
            - name: agent
              user:
                tokenFile: \(tokenFile)
            contexts:
            - name: test
              context: {cluster: test, user: agent}
            """
        try kubeconfig.write(toFile: directory.appending("kubeconfig"), atomically: true, encoding: .utf8)
        let adapter = KubernetesAdapter(connection: try KubeConnection.kubeconfig(path: directory.appending("kubeconfig")))
        return Setup(directory: directory, server: server, adapter: adapter, tokenFile: tokenFile)
    }

    let deployment: JSONValue = [
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web", "namespace": "demo", "labels": ["app": "web"]],
        "spec": ["replicas": 2, "selector": ["matchLabels": ["app": "web"]], "template": ["metadata": ["labels": ["app": "web"]], "spec": ["containers": [["name": "web", "image": "phpmyadmin:5.2"]]]]],
    ]
    var deploymentKey: ManifestKey { ManifestKey(manifest: deployment)! }

    @Test func `server-side apply creates, updates, and status reads back as available`() async throws {
        let setup = try await setup()
        let created = try await setup.adapter.apply(deployment, key: deploymentKey, strategy: .default)
        #expect(created.uid != nil)
        var scaled = deployment
        scaled["spec"]?["replicas"] = 3
        let updated = try await setup.adapter.apply(scaled, key: deploymentKey, strategy: .default)
        #expect(updated.uid == created.uid)
        let live = try #require(try await setup.adapter.get(deploymentKey))
        #expect(live["spec"]?["replicas"] == 3)
        #expect(live["metadata"]?["managedFields"]?.arrayValue?.first?["manager"] == "cairn-agent")
        #expect(Availability.evaluate(live).status == Condition.true)
        #expect(setup.server.requests.contains("PATCH /apis/apps/v1/namespaces/demo/deployments/web"))
        try await setup.stop()
    }

    @Test func `a field manager conflict is reported with the fields, and force takes them`() async throws {
        let setup = try await setup()
        _ = try await setup.adapter.apply(deployment, key: deploymentKey, strategy: .default)
        setup.server.apply("/apis/apps/v1/namespaces/demo/deployments/web", as: "horizontal-pod-autoscaler") { $0["spec"]?["replicas"] = 5 }
        var mine = deployment
        mine["spec"]?["replicas"] = 4
        let error = await #expect(throws: AdapterError.self) { try await setup.adapter.apply(mine, key: deploymentKey, strategy: .default) }
        #expect(error?.reason == "ApplyConflict")
        #expect(error?.message.contains(".spec.replicas") == true)
        #expect(setup.server.object("/apis/apps/v1/namespaces/demo/deployments/web")?["spec"]?["replicas"] == 5)
        _ = try await setup.adapter.apply(mine, key: deploymentKey, strategy: UpdateStrategy(type: .serverSideApply, serverSideApply: .init(force: true)))
        #expect(setup.server.object("/apis/apps/v1/namespaces/demo/deployments/web")?["spec"]?["replicas"] == 4)
        try await setup.stop()
    }

    @Test func `CreateOnly, ReadOnly and Update strategies`() async throws {
        let setup = try await setup()
        let map: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "conf", "namespace": "demo"], "data": ["a": "1"]]
        let key = ManifestKey(manifest: map)!
        await #expect(throws: AdapterError.self) { try await setup.adapter.apply(map, key: key, strategy: UpdateStrategy(type: .readOnly)) }
        _ = try await setup.adapter.apply(map, key: key, strategy: UpdateStrategy(type: .createOnly))
        var changed = map
        changed["data"]?["a"] = "2"
        let again = try await setup.adapter.apply(changed, key: key, strategy: UpdateStrategy(type: .createOnly))
        #expect(!again.changed)
        #expect(setup.server.object("/api/v1/namespaces/demo/configmaps/conf")?["data"]?["a"] == "1")
        _ = try await setup.adapter.apply(changed, key: key, strategy: UpdateStrategy(type: .update))
        #expect(setup.server.object("/api/v1/namespaces/demo/configmaps/conf")?["data"]?["a"] == "2")
        #expect(setup.server.requests.contains("PUT /api/v1/namespaces/demo/configmaps/conf"))
        try await setup.stop()
    }

    @Test func `a custom resource applies once its CRD is served; an unknown kind is a clear error`() async throws {
        let setup = try await setup()
        let crd: JSONValue = [
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": ["name": "widgets.example.com"],
            "spec": ["group": "example.com", "scope": "Namespaced", "names": ["plural": "widgets", "kind": "Widget"], "versions": [["name": "v1", "served": true, "storage": true]]],
        ]
        let widget: JSONValue = ["apiVersion": "example.com/v1", "kind": "Widget", "metadata": ["name": "w1", "namespace": "demo"], "spec": ["size": 3]]
        let unknown = await #expect(throws: AdapterError.self) { try await setup.adapter.apply(widget, key: ManifestKey(manifest: widget)!, strategy: .default) }
        #expect(unknown?.reason == "NoMatchingResource")
        _ = try await setup.adapter.apply(crd, key: ManifestKey(manifest: crd)!, strategy: .default)
        _ = try await setup.adapter.apply(widget, key: ManifestKey(manifest: widget)!, strategy: .default)
        #expect(setup.server.object("/apis/example.com/v1/namespaces/demo/widgets/w1") != nil)
        try await setup.stop()
    }

    @Test func `deletion propagates and never touches an object someone recreated`() async throws {
        let setup = try await setup()
        let applied = try await setup.adapter.apply(deployment, key: deploymentKey, strategy: .default)
        #expect(try await setup.adapter.delete(deploymentKey, uid: applied.uid, propagation: .foreground) == .deleted)
        #expect(try await setup.adapter.get(deploymentKey)?["metadata"]?["finalizers"] == ["foregroundDeletion"])
        try await eventually("the garbage collector to finish") { try await setup.adapter.get(deploymentKey) == nil }
        #expect(try await setup.adapter.delete(deploymentKey, uid: applied.uid, propagation: .background) == .alreadyGone)
        // Someone else creates an object with the same name: our old UID does not match, so it stays.
        let theirs = try await setup.adapter.apply(deployment, key: deploymentKey, strategy: .default)
        #expect(try await setup.adapter.delete(deploymentKey, uid: "not-" + (theirs.uid ?? ""), propagation: .background) == .notOurs)
        #expect(try await setup.adapter.get(deploymentKey) != nil)
        try await setup.stop()
    }

    @Test func `a rotated token is picked up, and a refused one names the verb and resource`() async throws {
        let setup = try await setup()
        setup.server.setTokens(["second-token"])
        let refused = await #expect(throws: AdapterError.self) { try await setup.adapter.apply(deployment, key: deploymentKey, strategy: .default) }
        #expect(refused?.reason == "Unauthorized")
        #expect(refused?.message.contains("discover the resources of Deployment demo/web") == true)
        try "second-token\n".write(toFile: setup.tokenFile, atomically: true, encoding: .utf8)
        _ = try await setup.adapter.apply(deployment, key: deploymentKey, strategy: .default)
        setup.server.setTokens([])
        let unauthorized = await #expect(throws: AdapterError.self) { try await setup.adapter.get(deploymentKey) }
        #expect(unauthorized?.reason == "Unauthorized")
        #expect(unauthorized?.message.contains("get Deployment demo/web") == true)
        try await setup.stop()
    }

    @Test func `claims come from the version, the API groups and the ready nodes`() async throws {
        let setup = try await setup()
        setup.server.addNode(cpu: "4", memory: "8Gi")
        setup.server.addNode(cpu: "2500m", memory: "4096Mi")
        setup.server.addNode(cpu: "64", memory: "1Ti", ready: false)
        let claims = try await setup.adapter.claims()
        #expect(claims.claims.contains(ClusterClaim(name: "platform", value: "kubernetes")))
        #expect(claims.claims.contains(ClusterClaim(name: "kubernetes.version", value: "v1.36.2")))
        #expect(claims.claims.contains(ClusterClaim(name: "nodes", value: "2")))
        #expect(claims.allocatable == ["cpu": "6.5", "memory": "12288Mi"])
        try await setup.stop()
    }
}
