import CairnCommon
import CairnTestSupport
import Foundation
import Testing

/// Rollouts that go wrong, with real agents: a manifest that cannot apply makes a site report Degraded, and a
/// workload that never becomes ready runs out its progress deadline.
@Suite(.serialized) struct RolloutFailureTests {
    static let good: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "app-config", "namespace": "default"], "data": ["version": "1"]]
    /// ReadOnly for an object no one created: the agent reports Applied=False, Degraded=True.
    static let broken = ManifestConfig(resourceIdentifier: .init(resource: "configmaps", name: "does-not-exist", namespace: "default"), updateStrategy: .init(type: .readOnly))
    static let missing: JSONValue = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "does-not-exist", "namespace": "default"]]

    func fleet(_ directory: TemporaryDirectory, readyDelay: Double = 0.05) async throws -> (TestHub, [TestAgent]) {
        let hub = try await TestHub(stateDirectory: directory.appending("hub"), heartbeat: 0.2)
        let token = try await hub.token(autoApprove: true)
        var agents = [TestAgent]()
        for name in ["c1", "c2", "c3"] {
            agents.append(try TestAgent(stateDirectory: directory.appending(name), hub: hub, token: token, name: name, readyDelay: readyDelay))
            try await hub.waitJoined(name)
        }
        _ = try await hub.admin { try await $0.applyPlacement(Placement(metadata: ObjectMeta(name: "everywhere"), spec: .init())) }
        return (hub, agents)
    }

    func workSet(_ manifests: [JSONValue], configs: [ManifestConfig]? = nil, onFailure: String, deadline: String = "1m") -> WorkSet {
        WorkSet(
            metadata: ObjectMeta(name: "app"),
            spec: .init(
                placementRefs: [.init(name: "everywhere", rolloutStrategy: .init(type: "Progressive", progressive: .init(maxConcurrency: .count(1), progressDeadline: deadline, maxFailures: .count(0))))],
                onFailure: onFailure, manifestWorkTemplate: .init(manifests: manifests, manifestConfigs: configs)))
    }

    func status(_ hub: TestHub) async throws -> WorkSet.Status? { try await hub.admin { try await $0.workSet("app") }.status }

    @Test func `past maxFailures the rollout pauses and goes no further`() async throws {
        let directory = try TemporaryDirectory("pause")
        defer { directory.remove() }
        let (hub, agents) = try await fleet(directory)
        _ = try await hub.admin { try await $0.applyWorkSet(workSet([Self.good], onFailure: "Pause")) }
        try await eventually("revision 1 everywhere", timeout: 20) { try await status(hub)?.phase == "Succeeded" }
        _ = try await hub.admin { try await $0.applyWorkSet(workSet([Self.good, Self.missing], configs: [Self.broken], onFailure: "Pause")) }
        try await eventually("the rollout to pause", timeout: 20) { try await status(hub)?.phase == "Paused" }
        try await Task.sleep(for: .seconds(1))
        let final = try #require(try await status(hub))
        #expect(final.clusters.filter { $0.revision == 2 }.count == 1, "only the first cluster got revision 2")
        #expect(final.clusters.filter { $0.state == "Failed" }.count == 1)
        #expect(try await hub.admin { try await $0.events(for: "WorkSet/app") }.contains { $0.reason == "RolloutPaused" })
        for agent in agents { try await agent.stop() }
        try await hub.stop()
    }

    @Test func `with onFailure Rollback every cluster returns to the last revision that succeeded`() async throws {
        let directory = try TemporaryDirectory("rollback")
        defer { directory.remove() }
        let (hub, agents) = try await fleet(directory)
        _ = try await hub.admin { try await $0.applyWorkSet(workSet([Self.good], onFailure: "Rollback")) }
        try await eventually("revision 1 everywhere", timeout: 20) { try await status(hub)?.phase == "Succeeded" }
        var bad = Self.good
        bad["data"]?["version"] = "2"
        _ = try await hub.admin { try await $0.applyWorkSet(workSet([bad, Self.missing], configs: [Self.broken], onFailure: "Rollback")) }
        try await eventually("the rollback", timeout: 20) { try await status(hub)?.phase == "RolledBack" }
        try await eventually("every cluster back on revision 1", timeout: 20) {
            try await status(hub)?.clusters.allSatisfy { $0.revision == 1 && $0.state == "Succeeded" } == true
        }
        for agent in agents {
            try await eventually("version 1 on the site", timeout: 20) {
                try await agent.object("ConfigMap", "app-config", namespace: "default", apiVersion: "v1")?["data"]?["version"] == "1"
            }
        }
        let events = try await hub.admin { try await $0.events(for: "WorkSet/app") }
        #expect(events.contains { $0.reason == "RolledBack" && $0.message.contains("revision 1") })
        for agent in agents { try await agent.stop() }
        try await hub.stop()
    }

    @Test func `a cluster that is not Available within the progress deadline fails`() async throws {
        let directory = try TemporaryDirectory("deadline")
        defer { directory.remove() }
        // Workloads on these sites take an hour to become ready.
        let (hub, agents) = try await fleet(directory, readyDelay: 3600)
        let slow: JSONValue = ["apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "slow", "namespace": "default"], "spec": ["replicas": 1]]
        _ = try await hub.admin { try await $0.applyWorkSet(workSet([slow], onFailure: "Pause", deadline: "1s")) }
        try await eventually("the deadline to fail the first cluster and pause", timeout: 20) { try await status(hub)?.phase == "Paused" }
        let failed = try #require(try await status(hub)?.clusters.first { $0.state == "Failed" })
        #expect(failed.message?.contains("progress deadline") == true)
        for agent in agents { try await agent.stop() }
        try await hub.stop()
    }
}
