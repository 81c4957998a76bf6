import CairnAgent
import CairnCommon
import CairnCtlKit
import CairnHub
import CairnTestSupport
import Foundation
import Testing

/// Nothing deleted by accident: the agent holds mass deletions, and a hub restored from an older backup can
/// steer its sites again without wiping them.
@Suite(.serialized) struct DeletionBrakeTests {
    /// One work per Online Boutique Deployment, in namespace `brake`.
    func boutiqueWorks(_ count: Int) throws -> [ManifestWork] {
        let deployments = try Corpus.onlineBoutique().filter { $0["kind"] == "Deployment" }.prefix(count)
        try #require(deployments.count == count, "the corpus has \(deployments.count) deployments")
        return deployments.map { deployment in
            var manifest = deployment
            manifest["metadata"]?["namespace"] = "brake"
            return ManifestWork(metadata: ObjectMeta(name: deployment["metadata"]?["name"]?.stringValue ?? "?"), spec: .init(manifests: [manifest]))
        }
    }

    func held(_ hub: TestHub, _ cluster: String) async throws -> Condition? {
        try await hub.admin { try await $0.cluster(cluster) }.status.conditions[type: ConditionType.deletionHeld]
    }

    @Test func `a mass deletion is held on the site until an administrator releases it`() async throws {
        let directory = try TemporaryDirectory("brake")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        var agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: try await hub.token(autoApprove: true), name: "c1")
        try await hub.waitJoined("c1")
        let works = try boutiqueWorks(8)
        for work in works { _ = try await hub.admin { try await $0.apply(work, cluster: "c1") } }
        try await eventually("8 deployments on the site") { try await agent.site.objects().count == 8 }

        // While the site is cut off, six of its eight works are deleted; it comes back to one bundle saying so:
        // held, everything keeps running, and the hub is told why.
        try await agent.stop()
        for work in works.prefix(6) { _ = try await hub.admin { try await $0.deleteWork(work.name, cluster: "c1") } }
        agent = try TestAgent(stateDirectory: directory.appending("c1"))
        try await eventually("DeletionHeld at the hub") { try await held(hub, "c1")?.status == Condition.true }
        let condition = try #require(try await held(hub, "c1"))
        #expect(condition.reason == "MassDeletion")
        #expect(condition.message.contains("6 of 8 works"))
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await agent.site.objects().count == 8)
        #expect(try await hub.admin { try await $0.works(cluster: "c1") }.count == 8)

        // Released: carried out, the hub's works go, and the condition clears.
        _ = try await hub.admin { try await $0.releaseDeletions("c1") }
        try await eventually("two deployments left") { try await agent.site.objects().count == 2 }
        try await eventually("the deleted works gone from the hub") { try await hub.admin { try await $0.works(cluster: "c1") }.count == 2 }
        try await eventually("DeletionHeld cleared") { try await held(hub, "c1")?.status == Condition.false }

        Reliability.record(
            fault: "6 of 8 works deleted while the site was cut off (one bundle on reconnect)", injected: 1,
            outcome: "DeletionHeld (MassDeletion) with the numbers; all 8 kept running until release-deletions, then 6 removed",
            lost: "nothing")
        // A single deletion is no mass deletion.
        _ = try await hub.admin { try await $0.deleteWork(works[6].name, cluster: "c1") }
        try await eventually("one deployment left") { try await agent.site.objects().count == 1 }
        try await agent.stop()
        try await hub.stop()
    }

    @Test func `a hub restored from an older backup resynchronises its sites through the brake`() async throws {
        let directory = try TemporaryDirectory("restore")
        defer { directory.remove() }
        let state = directory.appending("hub")
        var hub = try await TestHub(stateDirectory: state)
        let agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: try await hub.token(autoApprove: true), name: "c1")
        try await hub.waitJoined("c1")
        let works = try boutiqueWorks(5)
        for work in works.prefix(2) { _ = try await hub.admin { try await $0.apply(work, cluster: "c1") } }
        try await eventually("2 deployments") { try await agent.site.objects().count == 2 }

        // Backed up while serving; then three more works, which the backup does not know.
        let backup = directory.appending("hub.backup")
        let summary = try HubBackup.backup(stateDirectory: state, to: backup)
        #expect(summary.works == 2)
        for work in works.suffix(3) { _ = try await hub.admin { try await $0.apply(work, cluster: "c1") } }
        try await eventually("5 deployments") { try await agent.site.objects().count == 5 }

        // A running hub's state directory cannot be restored over (another process is refused).
        let refused = try ChildProcess("cairn-hub", ["restore", "--state-dir", state, "--from", backup], log: directory.appending("restore.log"))
        #expect(try await refused.waitForExit(timeout: 30) != 0)
        #expect(refused.log.contains("a hub is running"))

        // The hub is restored to the backup: the site takes the older state but deletes nothing on its own.
        let port = hub.port
        try await hub.stop()
        #expect(try HubBackup.restore(stateDirectory: state, from: backup).works == 2)
        hub = try await TestHub(stateDirectory: state, port: port)
        try await eventually("DeletionHeld (HubWentBack) at the hub", timeout: 20) { try await held(hub, "c1")?.reason == "HubWentBack" }
        #expect(try await agent.site.objects().count == 5)
        #expect(try agent.cache.deletionHold()?.works == 3)

        // Work goes on at the restored hub; once released, the works it does not know leave the site.
        var changed = works[0]
        changed.spec.workload.manifests[0]["spec"]?["replicas"] = 3
        _ = try await hub.admin { try await $0.apply(changed, cluster: "c1") }
        try await eventually("the change applied while held") {
            try await agent.object("Deployment", works[0].name, namespace: "brake")?["spec"]?["replicas"] == 3
        }
        #expect(try await agent.site.objects().count == 5)
        _ = try await hub.admin { try await $0.releaseDeletions("c1") }
        try await eventually("the site back to the hub's two works") { try await agent.site.objects().count == 2 }
        Reliability.record(
            fault: "hub restored from a backup older than its sites", injected: 1,
            outcome: "the site took the restored state (HubWentBack), held its 3 deletions, applied new changes meanwhile, removed them only after release-deletions",
            lost: "nothing")
        try await agent.stop()
        try await hub.stop()
    }
}
