import CairnAgent
import CairnCommon
import CairnHub
import CairnTestSupport
import Foundation
import Synchronization
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
    func setup(establishTimeout: Duration = .seconds(5)) async throws -> Setup {
        let directory = try TemporaryDirectory("kube")
        let server = try await KubeAPITestServer(directory: directory.appending("pki"), token: "first-token")
        let tokenFile = directory.appending("token")
        try "first-token\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let kubeconfig = try server.writeKubeconfig(to: directory.appending("kubeconfig"), user: "{tokenFile: \(tokenFile)}")
        let adapter = KubernetesAdapter(connection: try KubeConnection.kubeconfig(path: kubeconfig), establishTimeout: establishTimeout)
        return Setup(directory: directory, server: server, adapter: adapter, tokenFile: tokenFile)
    }

    /// Runs `body` against a fresh server and adapter, stopping both however it ends.
    func withSetup(establishTimeout: Duration = .seconds(5), _ body: (Setup) async throws -> Void) async throws {
        let setup = try await setup(establishTimeout: establishTimeout)
        do {
            try await body(setup)
        } catch {
            try? await setup.stop()
            throw error
        }
        try await setup.stop()
    }

    let deployment: JSONValue = [
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web", "namespace": "demo", "labels": ["app": "web"]],
        "spec": ["replicas": 2, "selector": ["matchLabels": ["app": "web"]], "template": ["metadata": ["labels": ["app": "web"]], "spec": ["containers": [["name": "web", "image": "phpmyadmin:5.2"]]]]],
    ]
    var deploymentKey: ManifestKey { ManifestKey(manifest: deployment)! }

    @Test func `server-side apply creates, updates, and status reads back as available`() async throws {
        try await withSetup() { setup in
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
        }
    }

    @Test func `a field manager conflict is reported with the fields, and force takes them`() async throws {
        try await withSetup() { setup in
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
        }
    }

    @Test func `CreateOnly, ReadOnly and Update strategies`() async throws {
        try await withSetup() { setup in
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
        }
    }

    let crd: JSONValue = [
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": ["name": "widgets.example.com"],
        "spec": ["group": "example.com", "scope": "Namespaced", "names": ["plural": "widgets", "kind": "Widget"], "versions": [["name": "v1", "served": true, "storage": true]]],
    ]
    let widget: JSONValue = ["apiVersion": "example.com/v1", "kind": "Widget", "metadata": ["name": "w1", "namespace": "demo"], "spec": ["size": 3]]

    @Test func `a custom resource waits for its CRD to be established; an unknown kind is a clear error`() async throws {
        try await withSetup() { setup in
            let unknown = await #expect(throws: AdapterError.self) { try await setup.adapter.apply(widget, key: ManifestKey(manifest: widget)!, strategy: .default) }
            #expect(unknown?.reason == "NoMatchingResource")
            // The CRD stays unestablished until the adapter is seen asking for it while the widget waits: the test,
            // not a delay, decides the moment (a loaded machine once outran a 2 s delay and found the kind served).
            setup.server.holdEstablishment()
            _ = try await setup.adapter.apply(crd, key: ManifestKey(manifest: crd)!, strategy: .default)
            let adapter = setup.adapter
            let custom = widget
            let waiting = Task { try await adapter.apply(custom, key: ManifestKey(manifest: custom)!, strategy: .default) }
            let asked = "GET /apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com"
            let deadline = ContinuousClock.now + .seconds(30)
            while !setup.server.requests.contains(asked), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(setup.server.requests.contains(asked))
            #expect(setup.server.object("/apis/example.com/v1/namespaces/demo/widgets/w1") == nil)
            setup.server.establishHeld()
            _ = try await waiting.value
            #expect(setup.server.object("/apis/example.com/v1/namespaces/demo/widgets/w1") != nil)
            // Discovery was aggregated: whole roots, never a group version's own document.
            #expect(setup.server.requests.contains("GET /apis"))
            #expect(!setup.server.requests.contains { $0.hasPrefix("GET /apis/apps/v1") || $0 == "GET /api/v1" })
        }
    }

    @Test func `a CRD that never becomes established is reported after the bound`() async throws {
        try await withSetup(establishTimeout: .milliseconds(500)) { setup in
            setup.server.holdEstablishment()
            _ = try await setup.adapter.apply(crd, key: ManifestKey(manifest: crd)!, strategy: .default)
            let started = ContinuousClock.now
            let error = await #expect(throws: AdapterError.self) { try await setup.adapter.apply(widget, key: ManifestKey(manifest: widget)!, strategy: .default) }
            #expect(error?.reason == "CRDNotEstablished")
            #expect(error?.message.contains("widgets.example.com is not Established") == true)
            #expect(ContinuousClock.now - started < .seconds(30))
        }
    }

    @Test func `legacy discovery when the server offers no aggregated documents`() async throws {
        try await withSetup() { setup in
            setup.server.setAggregatedDiscovery(false)
            _ = try await setup.adapter.apply(deployment, key: deploymentKey, strategy: .default)
            let job: JSONValue = ["apiVersion": "batch/v1", "kind": "Job", "metadata": ["name": "once", "namespace": "demo"], "spec": ["template": ["spec": ["restartPolicy": "Never", "containers": [["name": "c", "image": "busybox"]]]]]]
            _ = try await setup.adapter.apply(job, key: ManifestKey(manifest: job)!, strategy: .default)
            #expect(setup.server.requests.contains("GET /apis/apps/v1"))
            #expect(setup.server.requests.contains("GET /apis/batch/v1"))
            #expect(setup.server.object("/apis/batch/v1/namespaces/demo/jobs/once") != nil)
        }
    }

    @Test func `ignoreFields leaves a field another controller owns alone`() async throws {
        try await withSetup() { setup in
            let path = "/apis/apps/v1/namespaces/demo/deployments/web"
            let strategy = UpdateStrategy(type: .serverSideApply, serverSideApply: .init(ignoreFields: [.init(condition: "OnSpokePresent", jsonPaths: [".spec.replicas"])]))
            _ = try await setup.adapter.apply(deployment, key: deploymentKey, strategy: strategy)
            #expect(setup.server.object(path)?["spec"]?["replicas"] == 2)
            // An autoscaler takes replicas; the hub's next change (a new image) neither conflicts nor resets them.
            setup.server.apply(path, as: "horizontal-pod-autoscaler") { $0["spec"]?["replicas"] = 7 }
            var changed = deployment
            changed["spec"]?["template"]?["spec"]?["containers"] = [["name": "web", "image": "phpmyadmin:5.3"]]
            _ = try await setup.adapter.apply(changed, key: deploymentKey, strategy: strategy)
            #expect(setup.server.object(path)?["spec"]?["replicas"] == 7)
            #expect(setup.server.object(path)?["spec"]?["template"]?["spec"]?["containers"]?.arrayValue?.first?["image"] == "phpmyadmin:5.3")
            // The Update strategy keeps the live value in what it PUTs.
            setup.server.apply(path, as: "horizontal-pod-autoscaler") { $0["spec"]?["replicas"] = 9 }
            _ = try await setup.adapter.apply(changed, key: deploymentKey, strategy: UpdateStrategy(type: .update, serverSideApply: strategy.serverSideApply))
            #expect(setup.server.object(path)?["spec"]?["replicas"] == 9)
            // Without ignoreFields the same change is a conflict on exactly that field.
            let conflict = await #expect(throws: AdapterError.self) { try await setup.adapter.apply(changed, key: deploymentKey, strategy: .default) }
            #expect(conflict?.message.contains(".spec.replicas") == true)
        }
    }

    /// A kind, the spec it is applied with, a status its controller reports before it is available, and one after.
    struct KindCase: Sendable, CustomTestStringConvertible {
        var kind: String
        var apiVersion: String
        var spec: JSONValue = [:]
        var before: JSONValue?
        var after: JSONValue?
        var testDescription: String { kind }
    }

    static let kindCases: [KindCase] = {
        let statefulBefore: JSONValue = ["observedGeneration": 1, "readyReplicas": 1]
        let statefulAfter: JSONValue = ["observedGeneration": 1, "readyReplicas": 2]
        let daemonBefore: JSONValue = ["desiredNumberScheduled": 3, "numberAvailable": 2]
        let daemonAfter: JSONValue = ["desiredNumberScheduled": 3, "numberAvailable": 3]
        let replicaBefore: JSONValue = ["observedGeneration": 1, "availableReplicas": 0]
        let replicaAfter: JSONValue = ["observedGeneration": 1, "availableReplicas": 1]
        let jobBefore: JSONValue = ["active": 1]
        let jobAfter: JSONValue = ["succeeded": 1, "conditions": [["type": "Complete", "status": "True"]]]
        let podBefore: JSONValue = ["conditions": [["type": "Ready", "status": "False"]]]
        let podAfter: JSONValue = ["conditions": [["type": "Ready", "status": "True"]]]
        let claimBefore: JSONValue = ["phase": "Pending"]
        let claimAfter: JSONValue = ["phase": "Bound"]
        return [
            KindCase(kind: "StatefulSet", apiVersion: "apps/v1", spec: ["replicas": 2], before: statefulBefore, after: statefulAfter),
            KindCase(kind: "DaemonSet", apiVersion: "apps/v1", before: daemonBefore, after: daemonAfter),
            KindCase(kind: "ReplicaSet", apiVersion: "apps/v1", spec: ["replicas": 1], before: replicaBefore, after: replicaAfter),
            KindCase(kind: "Job", apiVersion: "batch/v1", before: jobBefore, after: jobAfter),
            KindCase(kind: "Pod", apiVersion: "v1", before: podBefore, after: podAfter),
            KindCase(kind: "PersistentVolumeClaim", apiVersion: "v1", before: claimBefore, after: claimAfter),
            KindCase(kind: "ConfigMap", apiVersion: "v1"),
        ]
    }()

    @Test(arguments: kindCases)
    func `availability by kind, read through the API`(_ example: KindCase) async throws {
        let (kind, apiVersion, spec, before, after) = (example.kind, example.apiVersion, example.spec, example.before, example.after)
        try await withSetup() { setup in
            setup.server.setControllersPaused(true)
            let manifest: JSONValue = ["apiVersion": .string(apiVersion), "kind": .string(kind), "metadata": ["name": "thing", "namespace": "demo"], "spec": spec]
            let key = ManifestKey(manifest: manifest)!
            _ = try await setup.adapter.apply(manifest, key: key, strategy: .default)
            let path = (apiVersion == "v1" ? "/api/v1" : "/apis/\(apiVersion)") + "/namespaces/demo/\(kind.lowercased())s/thing"
            if let before, let after {
                setup.server.apply(path, as: "kube-controller-manager") { $0["status"] = before }
                let pending = Availability.evaluate(try #require(try await setup.adapter.get(key)))
                #expect(pending.status == Condition.false, "\(kind) with status \(before)")
                setup.server.apply(path, as: "kube-controller-manager") { $0["status"] = after }
            }
            let live = try #require(try await setup.adapter.get(key))
            #expect(Availability.evaluate(live).status == Condition.true, "\(kind) with status \(after ?? nil)")
        }
    }

    @Test func `feedback rules read scalars and raw JSON from the live object`() async throws {
        try await withSetup() { setup in
            _ = try await setup.adapter.apply(deployment, key: deploymentKey, strategy: .default)
            let live = try #require(try await setup.adapter.get(deploymentKey))
            let values = Feedback.values(for: live, rules: [
                FeedbackRule(type: .wellKnownStatus),
                FeedbackRule(type: .jsonPaths, jsonPaths: [.init(name: "image", path: ".spec.template.spec.containers"), .init(name: "generation", path: ".status.observedGeneration")]),
            ])
            #expect(values.contains(FeedbackValue(name: "AvailableReplicas", value: 2)))
            #expect(values.contains(FeedbackValue(name: "generation", value: 1)))
            let raw = try #require(values.first { $0.name == "image" }?.fieldValue)
            #expect(raw.type == "JsonRaw")
            #expect(raw.jsonRaw?.contains("\"image\":\"phpmyadmin:5.2\"") == true)
        }
    }

    @Test func `deletion propagates and never touches an object someone recreated`() async throws {
        try await withSetup() { setup in
            let applied = try await setup.adapter.apply(deployment, key: deploymentKey, strategy: .default)
            // The garbage collector waits while controllers are paused: the finalizer is seen however slow the machine.
            setup.server.setControllersPaused(true)
            #expect(try await setup.adapter.delete(deploymentKey, uid: applied.uid, propagation: .foreground) == .deleted)
            #expect(try await setup.adapter.get(deploymentKey)?["metadata"]?["finalizers"] == ["foregroundDeletion"])
            setup.server.setControllersPaused(false)
            try await eventually("the garbage collector to finish") { try await setup.adapter.get(deploymentKey) == nil }
            #expect(try await setup.adapter.delete(deploymentKey, uid: applied.uid, propagation: .background) == .alreadyGone)
            // Someone else creates an object with the same name: our old UID does not match, so it stays.
            let theirs = try await setup.adapter.apply(deployment, key: deploymentKey, strategy: .default)
            #expect(try await setup.adapter.delete(deploymentKey, uid: "not-" + (theirs.uid ?? ""), propagation: .background) == .notOurs)
            #expect(try await setup.adapter.get(deploymentKey) != nil)
        }
    }

    @Test func `a rotated token is picked up, and a refused one names the verb and resource`() async throws {
        try await withSetup() { setup in
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
        }
    }

    @Test func `watches report changes to tracked objects and recover after failing`() async throws {
        try await withSetup() { setup in
            setup.server.setControllersPaused(true)
            let path = "/apis/apps/v1/namespaces/demo/deployments/web"
            _ = try await setup.adapter.apply(deployment, key: deploymentKey, strategy: .default)
            let changes = Atomic<Int>(0)
            let changed: @Sendable () -> Void = { changes.add(1, ordering: .relaxed) }
            /// The count once it has held still for 0.3 s. A watch is healthy as soon as its answer begins; the events
            /// it begins with (the tracked object as ADDED) may still be on their way, and would be taken for the
            /// next change.
            func settled() async throws -> Int {
                var last = changes.load(ordering: .relaxed)
                for _ in 0..<50 {
                    try await Task.sleep(for: .milliseconds(300))
                    let now = changes.load(ordering: .relaxed)
                    if now == last { return now }
                    last = now
                }
                throw CairnError(.internal, "the watch's changes never settled")
            }
            try await eventually("the watch to be healthy") { await setup.adapter.watch([deploymentKey], changed: changed) }
            #expect(setup.server.requests.contains("WATCH /apis/apps/v1/namespaces/demo/deployments"))
            let before = try await settled()
            setup.server.apply(path, as: "kube-controller-manager") { $0["status"] = ["observedGeneration": 1, "availableReplicas": 2, "updatedReplicas": 2] }
            try await eventually("the status change to be seen") { changes.load(ordering: .relaxed) > before }
            // An object nobody tracks in the same collection is not a change worth a look.
            var other = deployment
            other["metadata"]?["name"] = "other"
            let quiet = try await settled()
            _ = try await setup.adapter.apply(other, key: ManifestKey(manifest: other)!, strategy: .default)
            try await Task.sleep(for: .milliseconds(200))
            #expect(changes.load(ordering: .relaxed) == quiet)
            // A failing watch says so (the caller polls) and is back once the server is.
            setup.server.setWatchesFail(true)
            try await eventually("the failure to be noticed") { !(await setup.adapter.watch([deploymentKey], changed: changed)) }
            setup.server.setWatchesFail(false)
            try await eventually("the watch to recover", timeout: 15) { await setup.adapter.watch([deploymentKey], changed: changed) }
            // Nothing tracked in a collection: its watch ends.
            _ = await setup.adapter.watch([], changed: changed)
            try await eventually("the watch to close") { setup.server.openWatches == 0 }
        }
    }

    @Test func `an API server that goes away is a site-wide failure, and comes back with its objects`() async throws {
        let directory = try TemporaryDirectory("kube-down")
        defer { directory.remove() }
        let first = try await KubeAPITestServer(directory: directory.appending("pki"), token: "t")
        let kubeconfig = try first.writeKubeconfig(to: directory.appending("kubeconfig"), user: "{token: t}")
        let adapter = KubernetesAdapter(connection: try KubeConnection.kubeconfig(path: kubeconfig))
        _ = try await adapter.apply(deployment, key: deploymentKey, strategy: .default)
        try await first.stop()
        let down = await #expect(throws: AdapterError.self) { try await adapter.get(deploymentKey) }
        #expect(down?.isSiteWide == true)
        #expect(down?.reason == "APIServerUnreachable")
        let second = try await KubeAPITestServer(directory: directory.appending("pki"), token: "t", port: first.port, takingOver: first)
        #expect(try await adapter.get(deploymentKey)?["spec"]?["replicas"] == 2)
        await adapter.shutdown()
        try await second.stop()
    }

    @Test func `in-cluster: service-account token and CA from the standard files, the token re-read as it rotates`() async throws {
        let directory = try TemporaryDirectory("in-cluster")
        defer { directory.remove() }
        let server = try await KubeAPITestServer(directory: directory.appending("pki"), token: "projected-1")
        let mount = directory.appending("serviceaccount")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        try server.caPEM.write(toFile: mount + "/ca.crt", atomically: true, encoding: .utf8)
        try "projected-1".write(toFile: mount + "/token", atomically: true, encoding: .utf8)
        let connection = try KubeConnection.inCluster(environment: ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": String(server.port)], directory: mount)
        let adapter = KubernetesAdapter(connection: connection)
        do {
            _ = try await adapter.apply(deployment, key: deploymentKey, strategy: .default)
            // The kubelet rotates the projected token: the old one stops working, the file holds the new one.
            server.setTokens(["projected-2"])
            try "projected-2".write(toFile: mount + "/token", atomically: true, encoding: .utf8)
            #expect(try await adapter.get(deploymentKey) != nil)
        } catch {
            await adapter.shutdown()
            try? await server.stop()
            throw error
        }
        await adapter.shutdown()
        try await server.stop()
        let outside = #expect(throws: CairnError.self) { try KubeConnection.inCluster(environment: [:], directory: mount) }
        #expect(outside?.field == "kubeconfig")
    }

    @Test func `the server's certificate is verified unless the kubeconfig itself says insecure-skip-tls-verify`() async throws {
        let directory = try TemporaryDirectory("kube-tls")
        defer { directory.remove() }
        let server = try await KubeAPITestServer(directory: directory.appending("pki"), token: "t")
        func adapter(_ clusterFields: String) throws -> KubernetesAdapter {
            let path = try server.writeKubeconfig(to: directory.appending("kubeconfig-\(UUID().uuidString)"), user: "{token: t}", cluster: clusterFields)
            return KubernetesAdapter(connection: try KubeConnection.kubeconfig(path: path))
        }
        let untrusted = try adapter("")
        let refused = await #expect(throws: AdapterError.self) { try await untrusted.claims() }
        #expect(refused?.reason == "APIServerUnreachable")
        await untrusted.shutdown()
        let insecure = try adapter("insecure-skip-tls-verify: true")
        #expect(try await insecure.claims().claims.contains(ClusterClaim(name: "adapter", value: "kubernetes")))
        await insecure.shutdown()
        try await server.stop()
    }

    @Test func `a kubeconfig's client certificate and key are loaded, from files or inline data`() async throws {
        let directory = try TemporaryDirectory("kube-client-cert")
        defer { directory.remove() }
        let server = try await KubeAPITestServer(directory: directory.appending("pki"), token: "t")
        // A client certificate the server's CA issued, for a key made the way agents make theirs.
        let agentKey = try AgentKey.loadOrCreate(path: directory.appending("pki/client.key"))
        let pki = try HubPKI.loadOrCreate(directory: directory.appending("pki"), names: ["127.0.0.1"])
        let issued = try pki.issueClientCertificate(csrPEM: try agentKey.csr(cluster: "edge"), cluster: "edge", lifetime: 3600)
        let certificate = try TrustMaterial.pem([issued])
        try certificate.write(toFile: directory.appending("pki/client.pem"), atomically: true, encoding: .utf8)
        let key = try String(contentsOfFile: directory.appending("pki/client.key"), encoding: .utf8)
        for user in [
            "{client-certificate: pki/client.pem, client-key: pki/client.key, token: t}",
            "{client-certificate-data: \(Data(certificate.utf8).base64EncodedString()), client-key-data: \(Data(key.utf8).base64EncodedString()), token: t}",
        ] {
            let path = try server.writeKubeconfig(to: directory.appending("kubeconfig"), user: user, cluster: "certificate-authority: pki/ca.pem")
            let connection = try KubeConnection.kubeconfig(path: path)
            #expect(connection.tls.certificateChain.count == 1)
            #expect(connection.tls.privateKey != nil)
            let adapter = KubernetesAdapter(connection: connection)
            let claims = try? await adapter.claims()
            await adapter.shutdown()
            #expect(claims?.claims.contains(ClusterClaim(name: "adapter", value: "kubernetes")) == true)
        }
        // A key that does not parse is a clear error naming the kubeconfig field's file.
        try "not a key".write(toFile: directory.appending("pki/bad.key"), atomically: true, encoding: .utf8)
        try server.writeKubeconfig(to: directory.appending("bad-kubeconfig"), user: "{client-certificate: pki/client.pem, client-key: pki/bad.key}", cluster: "")
        #expect(throws: (any Error).self) { try KubeConnection.kubeconfig(path: directory.appending("bad-kubeconfig")) }
        try await server.stop()
    }

    @Test func `claims come from the version, the API groups and the ready nodes`() async throws {
        try await withSetup() { setup in
            setup.server.addNode(cpu: "4", memory: "8Gi")
            setup.server.addNode(cpu: "2500m", memory: "4096Mi")
            setup.server.addNode(cpu: "64", memory: "1Ti", ready: false)
            let claims = try await setup.adapter.claims()
            #expect(claims.claims.contains(ClusterClaim(name: "platform", value: "kubernetes")))
            #expect(claims.claims.contains(ClusterClaim(name: "kubernetes.version", value: "v1.36.2")))
            #expect(claims.claims.contains(ClusterClaim(name: "nodes", value: "2")))
            #expect(claims.allocatable == ["cpu": "6.5", "memory": "12288Mi"])
        }
    }
}
