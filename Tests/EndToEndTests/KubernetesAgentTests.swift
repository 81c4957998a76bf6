import CairnCommon
import CairnCtlKit
import CairnTestSupport
import Foundation
import Testing

/// The real `cairn-agent` binary, `--adapter kubernetes`, against the Kubernetes API test server and a hub.
@Suite(.serialized) struct KubernetesAgentTests {
    /// Namespace, the ServiceMonitor CRD and a ServiceMonitor, as kube-prometheus ships them: one work, whose
    /// objects stay on the site when it is deleted (Orphan).
    func monitoringWork() async throws -> ManifestWork {
        let manifests = try await Corpus.kubePrometheus("setup/namespace.yaml")
            + Corpus.kubePrometheus("setup/0servicemonitorCustomResourceDefinition.yaml") + Corpus.kubePrometheus("alertmanager-serviceMonitor.yaml")
        return ManifestWork(metadata: ObjectMeta(name: "monitoring"), spec: .init(manifests: manifests, deleteOption: .init(propagationPolicy: .orphan)))
    }

    /// The three-component service, its front end's replicas left to an autoscaler once they exist.
    func shopWork() throws -> ManifestWork {
        var work = ManifestWork(metadata: ObjectMeta(name: "shop"), spec: .init(manifests: try Corpus.threeComponentService()))
        work.spec.manifestConfigs = [
            ManifestConfig(
                resourceIdentifier: ResourceIdentifier(group: "apps", resource: "deployments", name: "frontend", namespace: "shop"),
                updateStrategy: UpdateStrategy(type: .serverSideApply, serverSideApply: .init(ignoreFields: [.init(jsonPaths: [".spec.replicas"])])),
                feedbackRules: [FeedbackRule(type: .wellKnownStatus)])
        ]
        return work
    }

    func current(_ work: ManifestWork?, _ type: String) -> Bool {
        guard let work, let condition = work.status?.conditions[type: type] else { return false }
        return condition.status == Condition.true && condition.observedGeneration == work.generation
    }

    @Test func `the agent binary manages a Kubernetes API server end to end`() async throws {
        let directory = try TemporaryDirectory("k8s-e2e")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        var kube = try await KubeAPITestServer(directory: directory.appending("kube-pki"), token: "service-account-token")
        kube.addNode(cpu: "4", memory: "16Gi")
        let tokenFile = directory.appending("sa-token")
        try "service-account-token\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: directory.appending("kube"), withIntermediateDirectories: true)
        try Data(kube.caPEM.utf8).write(to: URL(fileURLWithPath: directory.appending("kube/ca.crt")))
        let kubeconfig = try kube.writeKubeconfig(to: directory.appending("kube/config"), user: "{tokenFile: \(tokenFile)}", cluster: "certificate-authority: ca.crt")
        let token = try await hub.token(autoApprove: true, labels: ["site": "edge"])
        let agent = try ChildProcess(
            "cairn-agent",
            [
                "run", "--hub", hub.url, "--token", token, "--name", "edge-k8s", "--ca-fingerprint", hub.fingerprint, "--state-dir",
                directory.appending("agent"), "--adapter", "kubernetes", "--kubeconfig", kubeconfig, "--resync-interval", "2", "--log-level", "warning",
            ], log: directory.appending("agent.log"))
        do {
            // Joined, with claims read from the API server.
            try await hub.waitJoined("edge-k8s", timeout: 30)
            try await eventually("the claims") {
                let claims = try await hub.admin { try await $0.cluster("edge-k8s") }.status.clusterClaims
                return claims.contains(ClusterClaim(name: "adapter", value: "kubernetes")) && claims.contains(ClusterClaim(name: "kubernetes.version", value: "v1.36.2"))
                    && claims.contains(ClusterClaim(name: "nodes", value: "1"))
            }

            // A CRD and its custom resource in one work, and the service in another: both Applied and Available.
            let monitoring = try await monitoringWork()
            _ = try await hub.admin { try await $0.apply(monitoring, cluster: "edge-k8s") }
            _ = try await hub.admin { try await $0.apply(try shopWork(), cluster: "edge-k8s") }
            for name in ["monitoring", "shop"] {
                try await eventually("\(name) Applied and Available at the hub", timeout: 30) {
                    let work = try await hub.admin { try await $0.work(name, cluster: "edge-k8s") }
                    return current(work, ConditionType.applied) && current(work, ConditionType.available)
                }
            }
            #expect(kube.object("/apis/monitoring.coreos.com/v1/namespaces/monitoring/servicemonitors/alertmanager-main") != nil)
            #expect(kube.object("/apis/apps/v1/namespaces/shop/statefulsets/orders-db")?["metadata"]?["managedFields"]?.arrayValue?.first?["manager"] == "cairn-agent")
            // What the work tracks is watched rather than polled.
            try await eventually("a watch on the service's deployments") { kube.requests.contains("WATCH /apis/apps/v1/namespaces/shop/deployments") }

            // An autoscaler owns the front end's replicas: resyncs leave them; a deleted Service comes back.
            let frontend = "/apis/apps/v1/namespaces/shop/deployments/frontend"
            kube.apply(frontend, as: "horizontal-pod-autoscaler") { $0["spec"]?["replicas"] = 5 }
            kube.remove("/api/v1/namespaces/shop/services/frontend")
            try await eventually("the Service restored by resync", timeout: 20) { kube.object("/api/v1/namespaces/shop/services/frontend") != nil }
            try await Task.sleep(for: .seconds(2.5))
            #expect(kube.object(frontend)?["spec"]?["replicas"] == 5)
            #expect(current(try await hub.admin { try await $0.work("shop", cluster: "edge-k8s") }, ConditionType.applied))

            // `cairn-agent objects` reads what the agent manages from the live API.
            let objects = try ChildProcess(
                "cairn-agent", ["objects", "--state-dir", directory.appending("agent"), "--adapter", "kubernetes", "--kubeconfig", kubeconfig],
                log: directory.appending("objects.log"))
            #expect(try await objects.waitForExit(timeout: 30) == 0)
            #expect(objects.log.contains("ServiceMonitor"))
            #expect(objects.log.contains("frontend") && objects.log.contains("5/5 replicas available"))

            // The API server goes away: the hub hears so while the site stays joined, and it heals once it is back.
            let port = kube.port
            try await kube.stop()
            try await eventually("SiteAPIAvailable=False at the hub", timeout: 30) {
                try await hub.admin { try await $0.cluster("edge-k8s") }.status.conditions[type: ConditionType.siteAPIAvailable]?.status == Condition.false
            }
            #expect(try await hub.admin { try await $0.cluster("edge-k8s") }.status.conditions.isTrue(ConditionType.joined))
            kube = try await KubeAPITestServer(directory: directory.appending("kube-pki"), token: "service-account-token", port: port, takingOver: kube)
            kube.remove("/apis/apps/v1/namespaces/shop/deployments/redis-cart")
            try await eventually("SiteAPIAvailable=True again", timeout: 30) {
                try await hub.admin { try await $0.cluster("edge-k8s") }.status.conditions.isTrue(ConditionType.siteAPIAvailable)
            }
            try await eventually("redis-cart restored", timeout: 20) { kube.object("/apis/apps/v1/namespaces/shop/deployments/redis-cart") != nil }

            // Deleting the work deletes its objects from the site (foreground), and only those.
            _ = try await hub.admin { try await $0.deleteWork("shop", cluster: "edge-k8s") }
            try await eventually("the service gone from the API server", timeout: 20) {
                kube.object(frontend) == nil && kube.object("/apis/apps/v1/namespaces/shop/statefulsets/orders-db") == nil && kube.object("/api/v1/namespaces/shop") == nil
            }
            #expect(kube.requests.contains("DELETE /apis/apps/v1/namespaces/shop/deployments/frontend"))
            #expect(kube.object("/apis/monitoring.coreos.com/v1/namespaces/monitoring/servicemonitors/alertmanager-main") != nil)

            // Deleting the Orphan work leaves its objects where they are.
            _ = try await hub.admin { try await $0.deleteWork("monitoring", cluster: "edge-k8s") }
            try await eventually("the monitoring work gone from the hub", timeout: 20) {
                try await hub.admin { try await $0.works(cluster: "edge-k8s") }.isEmpty
            }
            #expect(kube.object("/apis/monitoring.coreos.com/v1/namespaces/monitoring/servicemonitors/alertmanager-main") != nil)
            #expect(kube.object("/api/v1/namespaces/monitoring") != nil)
            #expect(!kube.requests.contains { $0.hasPrefix("DELETE") && $0.contains("monitoring") })

            // SIGTERM: a clean stop.
            #expect(try await agent.terminate() == 0)
        } catch {
            try? await agent.kill()
            print("agent log:\n" + agent.log)
            try? await kube.stop()
            try? await hub.stop()
            throw error
        }
        try await kube.stop()
        try await hub.stop()
    }
}
