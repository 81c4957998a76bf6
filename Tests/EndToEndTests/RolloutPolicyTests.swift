import CairnCommon
import CairnTestSupport
import Foundation
import Testing

@Suite(.serialized) struct RolloutPolicyTests {
    struct Fleet {
        var hub: TestHub
        var sites: [String: TestAgent]
        func stop() async throws {
            for site in sites.values { try? await site.stop() }
            try await hub.stop()
        }
    }

    /// Three sites with the given labels (and per-site readiness delays).
    func fleet(_ directory: TemporaryDirectory, labels: [String: [String: String]], readyDelay: [String: Double] = [:], leaseTimeout: Double = 40) async throws -> Fleet {
        let hub = try await TestHub(stateDirectory: directory.appending("hub"), heartbeat: 0.2, leaseTimeout: leaseTimeout)
        let token = try await hub.token(autoApprove: true)
        var sites = [String: TestAgent]()
        for name in labels.keys.sorted() {
            sites[name] = try TestAgent(stateDirectory: directory.appending(name), hub: hub, token: token, name: name, readyDelay: readyDelay[name] ?? 0.05)
            try await hub.waitJoined(name)
            _ = try await hub.admin { try await $0.label(name, LabelPatch(set: labels[name])) }
        }
        return Fleet(hub: hub, sites: sites)
    }

    func configMap(_ value: String) -> ManifestWork.Spec {
        .init(manifests: [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "app", "namespace": "default"], "data": ["v": .string(value)]]])
    }

    func status(_ hub: TestHub, _ name: String = "app") async throws -> WorkSet.Status? { try await hub.admin { try await $0.workSet(name) }.status }

    @Test func `ProgressivePerGroup rolls out one decision group at a time`() async throws {
        let directory = try TemporaryDirectory("per-group")
        defer { directory.remove() }
        let fleet = try await fleet(directory, labels: ["c1": ["ring": "canary"], "c2": ["ring": "main"], "c3": ["ring": "main"]])
        let groups = Placement.DecisionStrategy(groupStrategy: .init(decisionGroups: [
            .init(groupName: "canary", groupClusterSelector: .init(labelSelector: LabelSelector(matchLabels: ["ring": "canary"]))),
            .init(groupName: "main", groupClusterSelector: .init(labelSelector: LabelSelector(matchLabels: ["ring": "main"]))),
        ]))
        _ = try await fleet.hub.admin { try await $0.applyPlacement(Placement(metadata: ObjectMeta(name: "rings"), spec: .init(decisionStrategy: groups))) }
        let strategy = WorkSet.RolloutStrategy(type: "ProgressivePerGroup", progressive: .init(minSuccessTime: "1s"))
        _ = try await fleet.hub.admin {
            try await $0.applyWorkSet(WorkSet(metadata: ObjectMeta(name: "app"), spec: .init(placementRefs: [.init(name: "rings", rolloutStrategy: strategy)], manifestWorkTemplate: configMap("1"))))
        }
        try await eventually("the rollout to finish", timeout: 20) { try await status(fleet.hub)?.phase == "Succeeded" }
        let applied = try await fleet.hub.admin { try await $0.events(for: "WorkSet/app") }.filter { $0.reason == "Applied" }
        func time(_ cluster: String) throws -> Date { try #require(applied.first { $0.message.hasSuffix("to \(cluster)") }).time }
        // The canary soaked before the main ring started; the main ring went together.
        #expect(try time("c2").timeIntervalSince(time("c1")) >= 1)
        #expect(try abs(time("c3").timeIntervalSince(time("c2"))) < 1)
        try await fleet.stop()
    }

    @Test func `a missing template key fails only that cluster, naming it`() async throws {
        let directory = try TemporaryDirectory("missing-key")
        defer { directory.remove() }
        let fleet = try await fleet(directory, labels: ["c1": ["zone": "eu-1"], "c2": ["tier": "edge"]])
        _ = try await fleet.hub.admin { try await $0.applyPlacement(Placement(metadata: ObjectMeta(name: "all"), spec: .init())) }
        _ = try await fleet.hub.admin {
            try await $0.applyWorkSet(WorkSet(metadata: ObjectMeta(name: "app"), spec: .init(placementRefs: [.init(name: "all")], manifestWorkTemplate: configMap(#"zone {{ cluster.labels["zone"] }}"#))))
        }
        try await eventually("c2 to fail", timeout: 20) { try await status(fleet.hub)?.clusters.first { $0.name == "c2" }?.state == "Failed" }
        let failed = try #require(try await status(fleet.hub)?.clusters.first { $0.name == "c2" })
        #expect(failed.message?.contains(#"label "zone" is not set for cluster c2"#) == true)
        try await eventually("c1 to get its own value", timeout: 20) {
            try await fleet.sites["c1"]!.object("ConfigMap", "app", namespace: "default", apiVersion: "v1")?["data"]?["v"] == "zone eu-1"
        }
        #expect(try await fleet.sites["c2"]!.object("ConfigMap", "app", namespace: "default", apiVersion: "v1") == nil)
        try await fleet.stop()
    }

    @Test func `explicit eviction moves a silent site's work, and the new copy comes first`() async throws {
        let directory = try TemporaryDirectory("eviction")
        defer { directory.remove() }
        let fleet = try await fleet(directory, labels: ["c1": ["platform": "kubernetes"], "c2": ["platform": "kubernetes"]], leaseTimeout: 1)
        let kubernetes = Placement.Predicate(requiredClusterSelector: .init(labelSelector: LabelSelector(matchLabels: ["platform": "kubernetes"])))
        _ = try await fleet.hub.admin {
            try await $0.applyPlacement(Placement(metadata: ObjectMeta(name: "one"), spec: .init(numberOfClusters: 1, predicates: [kubernetes], evictUnreachableAfter: "1s")))
        }
        _ = try await fleet.hub.admin { try await $0.applyWorkSet(WorkSet(metadata: ObjectMeta(name: "app"), spec: .init(placementRefs: [.init(name: "one")], manifestWorkTemplate: configMap("1")))) }
        try await eventually("the work on one site", timeout: 20) { try await status(fleet.hub)?.phase == "Succeeded" }
        let first = try #require(try await status(fleet.hub)?.clusters.first?.name)
        let other = first == "c1" ? "c2" : "c1"
        try await fleet.sites[first]!.stop()
        try await eventually("the work to move to \(other)", timeout: 20) {
            try await fleet.sites[other]!.object("ConfigMap", "app", namespace: "default", apiVersion: "v1") != nil
        }
        try await eventually("the old copy to be removed at the hub", timeout: 20) {
            try await fleet.hub.admin { try await $0.events(for: "WorkSet/app") }.contains { $0.reason == "Removed" && $0.message.contains("removed from \(first) after \(other) reported Available") }
        }
        try await fleet.stop()
    }

    @Test func `an old copy is removed after the relocation deadline even if its replacement is not Available`() async throws {
        let directory = try TemporaryDirectory("relocation-deadline")
        defer { directory.remove() }
        // c2's workloads take an hour to become ready.
        let fleet = try await fleet(directory, labels: ["c1": ["platform": "kubernetes"], "c2": ["platform": "other"]], readyDelay: ["c2": 3600])
        let kubernetes = Placement.Predicate(requiredClusterSelector: .init(labelSelector: LabelSelector(matchLabels: ["platform": "kubernetes"])))
        _ = try await fleet.hub.admin { try await $0.applyPlacement(Placement(metadata: ObjectMeta(name: "one"), spec: .init(numberOfClusters: 1, predicates: [kubernetes]))) }
        let deployment = ManifestWork.Spec(manifests: [["apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web", "namespace": "default"], "spec": ["replicas": 1]]])
        _ = try await fleet.hub.admin {
            try await $0.applyWorkSet(WorkSet(metadata: ObjectMeta(name: "app"), spec: .init(placementRefs: [.init(name: "one")], manifestWorkTemplate: deployment, relocationDeadline: "1s")))
        }
        try await eventually("the work Available on c1", timeout: 20) { try await status(fleet.hub)?.phase == "Succeeded" }
        _ = try await fleet.hub.admin { try await $0.label("c1", LabelPatch(set: ["platform": "other"])) }
        _ = try await fleet.hub.admin { try await $0.label("c2", LabelPatch(set: ["platform": "kubernetes"])) }
        try await eventually("c1's copy to go after the deadline", timeout: 20) {
            try await fleet.sites["c1"]!.object("Deployment", "web", namespace: "default") == nil
        }
        let removal = try await fleet.hub.admin { try await $0.events(for: "WorkSet/app") }.first { $0.reason == "Removed" }
        #expect(removal?.message.contains("after the relocation deadline") == true)
        #expect(try await fleet.sites["c2"]!.object("Deployment", "web", namespace: "default") != nil)
        try await fleet.stop()
    }
}
