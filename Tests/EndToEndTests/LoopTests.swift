import AsyncHTTPClient
import CairnAgent
import CairnCommon
import CairnCtlKit
import CairnHub
import CairnTestSupport
import Foundation
import Testing

/// A hub and agents in this process, speaking HTTP over 127.0.0.1 on ephemeral ports.
@Suite(.serialized) struct LoopTests {
    func serviceWork(replicas: Int64 = 2) throws -> ManifestWork {
        var work = ManifestWork(metadata: ObjectMeta(name: "shop"), spec: .init(manifests: try Corpus.threeComponentService(frontendReplicas: replicas)))
        work.spec.manifestConfigs = [
            ManifestConfig(resourceIdentifier: ResourceIdentifier(group: "apps", resource: "deployments", name: "frontend", namespace: "shop"), feedbackRules: [FeedbackRule(type: .wellKnownStatus)])
        ]
        return work
    }

    func readyReplicas(_ work: ManifestWork?) -> Int64? {
        work?.status?.resourceStatus.manifests.first { $0.resourceMeta.name == "frontend" && $0.resourceMeta.kind == "Deployment" }?
            .statusFeedback?.values.first { $0.name == "ReadyReplicas" }?.fieldValue.integer
    }

    func available(_ work: ManifestWork?) -> Bool {
        guard let work else { return false }
        return work.status?.conditions[type: ConditionType.available]?.status == Condition.true
            && work.status?.conditions[type: ConditionType.available]?.observedGeneration == work.generation
    }

    @Test func `manual and auto-approve enrolment, isolation, update, feedback and delete`() async throws {
        let directory = try TemporaryDirectory("e2e")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let manual = try await hub.token()
        let auto = try await hub.token(autoApprove: true, labels: ["platform": "kubernetes"])
        let c1 = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: manual, name: "c1")
        let c2 = try TestAgent(stateDirectory: directory.appending("c2"), hub: hub, token: auto, name: "c2")

        // c2 joins on its own; c1 waits for an administrator.
        try await hub.waitJoined("c2")
        #expect(try await hub.admin { try await $0.cluster("c2") }.metadata.labels?["platform"] == "kubernetes")
        #expect(try await hub.admin { try await $0.cluster("c1") }.status.enrolment == .pending)
        _ = try await hub.admin { try await $0.approve("c1") }
        try await hub.waitJoined("c1")
        #expect(try await hub.admin { try await $0.cluster("c1") }.status.clusterClaims.contains(ClusterClaim(name: "platform", value: "kubernetes")))

        // A work for c1 lands on c1 and never on c2.
        _ = try await hub.admin { try await $0.apply(try serviceWork(), cluster: "c1") }
        try await eventually("the service to be Available on c1") { available(try await hub.admin { try await $0.work("shop", cluster: "c1") }) }
        #expect(try await c1.object("Deployment", "frontend", namespace: "shop") != nil)
        #expect(try await c1.object("StatefulSet", "orders-db", namespace: "shop") != nil)
        #expect(try await c2.site.objects().isEmpty)
        #expect(readyReplicas(try await hub.admin { try await $0.work("shop", cluster: "c1") }) == 2)

        // Scaling 2 → 3 reaches the site and the feedback comes back.
        _ = try await hub.admin { try await $0.apply(try serviceWork(replicas: 3), cluster: "c1") }
        try await eventually("readyReplicas 3 at the hub") { readyReplicas(try await hub.admin { try await $0.work("shop", cluster: "c1") }) == 3 }
        #expect(try await c1.object("Deployment", "frontend", namespace: "shop")?["spec"]?["replicas"] == 3)
        #expect(try await c2.site.objects().isEmpty)

        // Delete: objects leave the site, then the work leaves the hub.
        _ = try await hub.admin { try await $0.deleteWork("shop", cluster: "c1") }
        try await eventually("the work to be gone at the hub") { try await hub.admin { try await $0.works(cluster: "c1") }.isEmpty }
        #expect(try await c1.site.objects().isEmpty)

        try await c1.stop()
        try await c2.stop()
        try await hub.stop()
    }

    @Test func `a restarted agent resumes from its cache without a full bundle`() async throws {
        let directory = try TemporaryDirectory("e2e-restart")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let token = try await hub.token(autoApprove: true, uses: 1)
        let first = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: token, name: "c1")
        try await hub.waitJoined("c1")
        _ = try await hub.admin { try await $0.apply(try serviceWork(), cluster: "c1") }
        try await eventually("Available") { available(try await hub.admin { try await $0.work("shop", cluster: "c1") }) }
        let uid = try await first.object("Deployment", "frontend", namespace: "shop")?["metadata"]?["uid"]
        try await first.stop()
        let fullBefore = hub.server.bundleCounters.full

        // Only the state directory: the token is spent and not needed any more.
        let again = try TestAgent(stateDirectory: directory.appending("c1"))
        _ = try await hub.admin { try await $0.apply(try serviceWork(replicas: 3), cluster: "c1") }
        try await eventually("the update to reach the resumed agent") { try await again.object("Deployment", "frontend", namespace: "shop")?["spec"]?["replicas"] == 3 }
        #expect(hub.server.bundleCounters.full == fullBefore)
        #expect(hub.server.bundleCounters.delta > 0)
        #expect(try await again.object("Deployment", "frontend", namespace: "shop")?["metadata"]?["uid"] == uid)
        try await again.stop()
        try await hub.stop()
    }

    @Test func `a work written and deleted while its site was away leaves the hub when the site returns`() async throws {
        let directory = try TemporaryDirectory("e2e-unseen")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let first = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: try await hub.token(autoApprove: true, uses: 1), name: "c1")
        try await hub.waitJoined("c1")
        try await first.stop()

        _ = try await hub.admin { try await $0.apply(try serviceWork(), cluster: "c1") }
        let deleting = try await hub.admin { try await $0.deleteWork("shop", cluster: "c1") }
        #expect(deleting.metadata.deletionTimestamp != nil, "held at the hub until the site says it is gone")
        let again = try TestAgent(stateDirectory: directory.appending("c1"))
        try await eventually("the work to leave the hub") { try await hub.admin { try await $0.works(cluster: "c1") }.isEmpty }
        #expect(try await again.object("Deployment", "frontend", namespace: "shop") == nil)
        let events = try await hub.admin { try await $0.events(for: "ManifestWork/c1/shop") }
        #expect(events.contains { $0.reason == "WorkRemoved" && $0.message == "Deleted=True: the site never had it" }, "\(events)")
        try await again.stop()
        try await hub.stop()
    }

    @Test func `a restarted hub loses nothing it acknowledged`() async throws {
        let directory = try TemporaryDirectory("e2e-hub-restart")
        defer { directory.remove() }
        var hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let port = hub.port
        let token = try await hub.token(autoApprove: true)
        let agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: token, name: "c1")
        try await hub.waitJoined("c1")
        for index in 0..<5 {
            var work = try serviceWork()
            work.metadata.name = "shop-\(index)"
            work.spec.workload.manifests = [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string("conf-\(index)"), "namespace": "default"]]]
            _ = try await hub.admin { try await $0.apply(work, cluster: "c1") }
        }
        let revision = try await hub.store.revision(cluster: "c1")
        try await hub.stop()

        hub = try await TestHub(stateDirectory: directory.appending("hub"), port: port)
        #expect(try await hub.store.revision(cluster: "c1") == revision)
        #expect(try await hub.admin { try await $0.works(cluster: "c1") }.count == 5)
        try await eventually("every work Available after the restart") {
            try await hub.admin { try await $0.works(cluster: "c1") }.allSatisfy(available)
        }
        #expect(try await agent.site.objects().count == 5)
        try await agent.stop()
        try await hub.stop()
    }
}
