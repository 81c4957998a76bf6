import CairnCommon
import CairnTestSupport
import Foundation
import Testing

@Suite(.serialized) struct PlacementTests {
    func decisions(_ hub: TestHub, _ name: String) async throws -> [String] {
        try await hub.admin { try await $0.placement(name) }.status?.decisions.map(\.clusterName).sorted() ?? []
    }

    @Test func `decisions follow labels and taints, and a silent site keeps its decision unless eviction is asked for`() async throws {
        let directory = try TemporaryDirectory("placement")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"), heartbeat: 0.2, leaseTimeout: 1)
        let token = try await hub.token(autoApprove: true)
        var agents = [String: TestAgent]()
        for (name, platform) in [("c1", "kubernetes"), ("c2", "kubernetes"), ("c3", "openshift")] {
            agents[name] = try TestAgent(stateDirectory: directory.appending(name), hub: hub, token: token, name: name, platform: platform)
            try await hub.waitJoined(name)
            _ = try await hub.admin { try await $0.label(name, LabelPatch(set: ["platform": platform])) }
        }
        let kubernetes = Placement.Predicate(requiredClusterSelector: .init(labelSelector: LabelSelector(matchLabels: ["platform": "kubernetes"])))
        _ = try await hub.admin { try await $0.applyPlacement(Placement(metadata: ObjectMeta(name: "web"), spec: .init(numberOfClusters: 1, predicates: [kubernetes]))) }
        _ = try await hub.admin { try await $0.applyPlacement(Placement(metadata: ObjectMeta(name: "all-k8s"), spec: .init(predicates: [kubernetes]))) }
        try await eventually("web to choose one kubernetes cluster") { try await decisions(hub, "web").count == 1 }
        let first = try await decisions(hub, "web")[0]
        #expect(["c1", "c2"].contains(first))
        try await eventually("all-k8s to choose both") { try await decisions(hub, "all-k8s") == ["c1", "c2"] }

        // Relabel the chosen cluster: the decision moves, and an event says so.
        let other = first == "c1" ? "c2" : "c1"
        _ = try await hub.admin { try await $0.label(first, LabelPatch(set: ["platform": "openshift"])) }
        try await eventually("web to move to \(other)") { try await decisions(hub, "web") == [other] }
        let events = try await hub.admin { try await $0.events(for: "Placement/web") }
        #expect(events.first?.reason == "DecisionsChanged")
        #expect(events.first?.message.contains("added \(other)") == true)
        #expect(events.first?.message.contains("removed \(first)") == true)

        // An administrator's taint excludes a cluster until it is removed.
        _ = try await hub.admin { try await $0.taint(other, Taint(key: "maintenance", value: "yes", effect: Taints.noSelect)) }
        try await eventually("the tainted cluster to leave all-k8s") { try await decisions(hub, "all-k8s").isEmpty }
        _ = try await hub.admin { try await $0.untaint(other, key: "maintenance") }
        try await eventually("it to come back") { try await decisions(hub, "all-k8s") == [other] }

        // Partition: the chosen site goes silent. Edge-first, it keeps its decision...
        _ = try await hub.admin {
            try await $0.applyPlacement(Placement(metadata: ObjectMeta(name: "evicting"), spec: .init(numberOfClusters: 1, predicates: [kubernetes], evictUnreachableAfter: "1s")))
        }
        try await eventually("evicting to choose \(other)") { try await decisions(hub, "evicting") == [other] }
        try await agents[other]!.stop()
        try await eventually("the silent site to be Unknown") {
            try await hub.admin { try await $0.cluster(other) }.status.conditions[type: ConditionType.available]?.status == Condition.unknown
        }
        let silentCluster = try await hub.admin { try await $0.cluster(other) }
        #expect(silentCluster.spec.taints?.contains { $0.key == Taints.unreachable && $0.timeAdded != nil } == true)
        // ...while a placement that asked for eviction lets it go after its time (no other cluster matches).
        try await eventually("evicting to let the silent site go") { try await decisions(hub, "evicting").isEmpty }
        #expect(try await decisions(hub, "web") == [other])
        #expect(try await decisions(hub, "all-k8s") == [other])
        for (name, agent) in agents where name != other { try await agent.stop() }
        try await hub.stop()
    }
}
