import CairnAgent
import CairnCommon
import CairnCtlKit
import CairnHub
import CairnTestSupport
import Foundation
import Testing

/// Faults injected for real — kill -9 of the agent and the hub, a hub that vanishes, a reboot without it —
/// and what survived. Each test records its row of RELIABILITY.md.
@Suite(.serialized) struct FaultTests {
    /// How many times to inject a fault: `default` in `make test`, more with CAIRN_FAULT_ROUNDS (make reliability).
    static func rounds(_ standard: Int) -> Int {
        ProcessInfo.processInfo.environment["CAIRN_FAULT_ROUNDS"].flatMap(Int.init).map { max($0, 1) } ?? standard
    }

    /// The works the faults run against: Online Boutique's deployments, one work each, in namespace `fault`.
    func works(_ count: Int, replicas: Int64 = 1) throws -> [ManifestWork] {
        try Corpus.onlineBoutique().filter { $0["kind"] == "Deployment" }.prefix(count).map { deployment in
            var manifest = deployment
            manifest["metadata"]?["namespace"] = "fault"
            manifest["spec"]?["replicas"] = .int(replicas)
            return ManifestWork(metadata: ObjectMeta(name: deployment["metadata"]?["name"]?.stringValue ?? "?"), spec: .init(manifests: [manifest]))
        }
    }

    func agentArguments(_ hub: TestHub, token: String?, state: String) -> [String] {
        var arguments = ["run", "--hub", hub.url, "--name", "c1", "--ca-fingerprint", hub.fingerprint, "--state-dir", state]
        if let token { arguments += ["--token", token] }
        return arguments + ["--resync-interval", "1", "--simulated-ready-delay", "0.05", "--log-level", "error"]
    }

    /// Every work at the hub Applied and Available at its current generation.
    func converged(_ hub: TestHub, _ count: Int) async throws -> Bool {
        let works = try await hub.admin { try await $0.works(cluster: "c1") }
        return works.count == count && works.allSatisfy { work in
            [ConditionType.applied, ConditionType.available].allSatisfy {
                work.status?.conditions[type: $0]?.status == Condition.true && work.status?.conditions[type: $0]?.observedGeneration == work.generation
            }
        }
    }

    @Test func `kill -9 of the agent at random moments loses and orphans nothing`() async throws {
        let directory = try TemporaryDirectory("fault-agent")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let state = directory.appending("c1")
        let token = try await hub.token(autoApprove: true)
        let enrolling = try ChildProcess("cairn-agent", agentArguments(hub, token: token, state: state), log: directory.appending("agent-enrol.log"))
        try await hub.waitJoined("c1", timeout: 30)
        let all = try works(6)
        for work in all { _ = try await hub.admin { try await $0.apply(work, cluster: "c1") } }
        try await enrolling.kill()

        // The hub keeps changing what c1 should run — scaling, removing and re-adding works — while the agent
        // is killed at random moments of committing bundles, applying them and flushing statuses.
        let writer = Task {
            var step = 0
            while !Task.isCancelled {
                step += 1
                var work = all[step % all.count]
                if step % 7 == 0 {
                    _ = try? await hub.admin { try await $0.deleteWork(work.name, cluster: "c1") }
                } else {
                    work.spec.workload.manifests[0]["spec"]?["replicas"] = .int(Int64(1 + step % 3))
                    _ = try? await hub.admin { try await $0.apply(work, cluster: "c1") }
                }
                try? await Task.sleep(for: .milliseconds(40))
            }
        }
        let kills = FaultTests.rounds(10)
        var problems = [String]()
        for round in 0..<kills {
            let agent = try ChildProcess("cairn-agent", agentArguments(hub, token: nil, state: state), log: directory.appending("agent-\(round).log"))
            try await Task.sleep(for: .milliseconds(Int64.random(in: 300...900)))
            try await agent.kill()
            // After each crash both SQLite files are sound.
            let cache = try AgentCache(path: state + "/agent.sqlite")
            let site = try SimulatedCluster(path: state + "/simulated-cluster.sqlite")
            if try cache.integrityCheck() != "ok" { problems.append("round \(round): cache \(try cache.integrityCheck())") }
            if try site.integrityCheck() != "ok" { problems.append("round \(round): site \(try site.integrityCheck())") }
        }
        writer.cancel()
        _ = await writer.value
        // Four works present again at the hub, two gone for good: a known desired state to converge to.
        let kept = Array(all.prefix(4))
        for work in kept { _ = try await hub.admin { try await $0.apply(work, cluster: "c1") } }
        for work in all.suffix(2) { _ = try? await hub.admin { try await $0.deleteWork(work.name, cluster: "c1") } }

        // One clean run converges: the site holds exactly what the hub wants, the inventory exactly the site.
        let agent = try ChildProcess("cairn-agent", agentArguments(hub, token: nil, state: state), log: directory.appending("agent-final.log"))
        try await eventually("convergence after \(kills) crashes", timeout: 60) { try await converged(hub, kept.count) }
        // The agent runs its HTTP clients on one event loop, not one per core (`AgentProcess.prepare`).
        let loops = agent.threadNames.filter { $0.hasPrefix("NIO-") }
        #expect(loops.count == 1, "the agent's NIO threads: \(loops)")
        // Applying again is invisible on the site: three resyncs later no object has a new generation.
        let watching = try SimulatedCluster(path: state + "/simulated-cluster.sqlite")
        let generations = try await watching.objects().map { $0["metadata"]?["generation"] }
        try await Task.sleep(for: .seconds(3.5))
        #expect(try await watching.objects().map { $0["metadata"]?["generation"] } == generations)
        #expect(try await agent.terminate() == 0)
        let cache = try AgentCache(path: state + "/agent.sqlite")
        let site = try SimulatedCluster(path: state + "/simulated-cluster.sqlite")
        let onSite = Set(try await site.objects().compactMap(ManifestKey.init(manifest:)))
        let inventory = Set(try cache.inventory().values.flatMap(\.keys))
        let desired = Set(kept.flatMap { $0.spec.workload.manifests.compactMap(ManifestKey.init(manifest:)) })
        #expect(problems.isEmpty, "\(problems)")
        #expect(onSite == desired, "orphaned: \(onSite.subtracting(desired)), missing: \(desired.subtracting(onSite))")
        #expect(inventory == onSite)
        #expect(try cache.outboxLength() == 0)
        #expect(try cache.journalLength() == 0)
        let lost = onSite == desired && inventory == onSite && problems.isEmpty ? "nothing" : "see the test's failures"
        Reliability.record(
            fault: "kill -9 of the agent while it commits, applies and reports", injected: kills,
            outcome: "cache and site pass integrity_check after every kill; one clean run converges: site = desired, inventory = site, outbox empty; re-applies invisible on the site",
            lost: lost)
        try await hub.stop()
    }

    @Test func `partitioned and rebooted without the hub, the site enforces and reports everything when it returns`() async throws {
        let directory = try TemporaryDirectory("fault-partition")
        defer { directory.remove() }
        let hubState = directory.appending("hub")
        var hub = try await TestHub(stateDirectory: hubState)
        let state = directory.appending("c1")
        var agent = try ChildProcess("cairn-agent", agentArguments(hub, token: try await hub.token(autoApprove: true), state: state), log: directory.appending("agent.log"))
        try await hub.waitJoined("c1", timeout: 30)
        let all = try works(3)
        for work in all { _ = try await hub.admin { try await $0.apply(work, cluster: "c1") } }
        try await eventually("convergence", timeout: 30) { try await converged(hub, all.count) }

        let object = "ManifestWork/c1/\(all[1].name)"
        let unavailableBefore = try await hub.admin { try await $0.events(for: object) }.filter { $0.message.hasPrefix("Available=False") }.count

        // The hub goes away; the agent is killed and starts again with nothing to talk to.
        let port = hub.port
        try await hub.stop()
        try await agent.kill()
        agent = try ChildProcess("cairn-agent", agentArguments(hub, token: nil, state: state), log: directory.appending("agent-rebooted.log"))

        // Drift on the site — one object scaled by hand, one deleted — is corrected offline, from the cache.
        let site = try SimulatedCluster(path: state + "/simulated-cluster.sqlite")
        let scaled = try #require(ManifestKey(manifest: all[0].spec.workload.manifests[0]))
        let deleted = try #require(ManifestKey(manifest: all[1].spec.workload.manifests[0]))
        try await site.tamper(scaled) { $0["spec"]?["replicas"] = 7 }
        try await site.remove(deleted)
        try await eventually("drift corrected with no hub", timeout: 30) {
            let replicas = try await site.get(scaled)?["spec"]?["replicas"]
            let restored = try await site.get(deleted)
            return replicas == 1 && restored != nil
        }
        let cache = try AgentCache(path: state + "/agent.sqlite")
        try await eventually("the status changes queued", timeout: 30) { try cache.outboxLength() > 0 }
        let queued = try cache.outboxLength()
        try await eventually("the transitions journaled", timeout: 30) { try cache.journalLength() > 0 }

        // The hub returns: the outbox drains and the hub holds exactly what the site last said.
        hub = try await TestHub(stateDirectory: hubState, port: port)
        try await eventually("the outbox flushed", timeout: 30) { try cache.outboxLength() == 0 }
        try await eventually("the hub's statuses equal the site's", timeout: 30) {
            let latest = try cache.latestStatuses()
            let works = try await hub.admin { try await $0.works(cluster: "c1") }
            return works.count == all.count && works.allSatisfy { work in
                guard let site = latest[work.name]?.status, let hub = work.status else { return false }
                return site.conditions.sameState(as: hub.conditions) && site.resourceStatus == hub.resourceStatus
            }
        }
        #expect(try await converged(hub, all.count))
        // What happened meanwhile is at the hub too: the deleted object's work went unavailable, and back.
        try await eventually("the journal flushed", timeout: 30) { try cache.journalLength() == 0 }
        let unavailableAfter = try await hub.admin { try await $0.events(for: object) }.filter { $0.message.hasPrefix("Available=False") }.count
        #expect(unavailableAfter > unavailableBefore)
        #expect(try await agent.terminate() == 0)
        Reliability.record(
            fault: "hub unreachable (stopped), agent killed and restarted without it", injected: 1,
            outcome: "started from its verified cache, corrected 2 drifted objects offline, queued \(queued) status changes and the transitions behind them, flushed on reconnect; hub status = site status, transitions = events",
            lost: "nothing")
        try await hub.stop()
    }

    @Test func `a torn and hostile network delays, cuts and resets, and nothing partial is ever committed`() async throws {
        let directory = try TemporaryDirectory("fault-network")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let proxy = try await FaultProxy(to: hub.port)
        let agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: proxy.url, pin: hub.fingerprint, token: try await hub.token(autoApprove: true), name: "c1")
        try await hub.waitJoined("c1", timeout: 30)
        // kube-prometheus's alerting rules: a bundle of tens of kilobytes, larger than what a connection may carry.
        var rules = [JSONValue]()
        for file in ["kubernetesControlPlane-prometheusRule.yaml", "nodeExporter-prometheusRule.yaml", "prometheus-prometheusRule.yaml"] {
            rules += try await Corpus.kubePrometheus(file)
        }
        let work = ManifestWork(metadata: ObjectMeta(name: "rules"), spec: .init(manifests: rules))
        let current = try await hub.store.revision(cluster: "c1")
        try await eventually("the agent at the hub's revision", timeout: 20) { try agent.cache.revision() == current }
        let revision = try agent.cache.revision()

        // Every connection cut after 8 KB, mid-way through the bundle: retried, never committed in part.
        proxy.set(.cutAfter(bytes: 8_000))
        _ = try await hub.admin { try await $0.apply(work, cluster: "c1") }
        try await eventually("connections cut mid-bundle", timeout: 20) { proxy.cuts >= 3 }
        #expect(try agent.cache.revision() == revision)
        #expect(try await agent.site.objects().isEmpty)
        #expect(try agent.cache.integrityCheck() == "ok")

        // Every new connection reset: the agent keeps trying, with backoff.
        proxy.set(.reset)
        try await eventually("connections reset", timeout: 20) { proxy.resets >= 3 }
        #expect(try agent.cache.revision() == revision)

        // Slow but whole: the bundle lands and the status comes back.
        proxy.set(.delay(milliseconds: 150))
        try await eventually("the rules applied over a slow link", timeout: 60) { try await agent.site.objects().count == rules.count }
        proxy.set(.pass)
        try await eventually("Applied and Available at the hub", timeout: 30) { try await converged(hub, 1) }
        #expect(try agent.cache.deletionHold() == nil)
        Reliability.record(
            fault: "network cut mid-body (after 8 KB), reset, then delayed 150 ms", injected: proxy.cuts + proxy.resets,
            outcome: "\(proxy.cuts) cuts and \(proxy.resets) resets: no partial bundle committed, cache sound; applied and reported once the link carried it",
            lost: "nothing")
        try await agent.stop()
        try await proxy.stop()
        try await hub.stop()
    }

    @Test func `a black-holed link: the site enforces offline and catches up when the link returns`() async throws {
        let directory = try TemporaryDirectory("fault-blackhole")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let proxy = try await FaultProxy(to: hub.port)
        let agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: proxy.url, pin: hub.fingerprint, token: try await hub.token(autoApprove: true), name: "c1", resync: 1)
        try await hub.waitJoined("c1", timeout: 30)
        let all = try works(3)
        _ = try await hub.admin { try await $0.apply(all[0], cluster: "c1") }
        try await eventually("the first work", timeout: 30) { try await converged(hub, 1) }

        // The link goes dark: connections open, nothing comes back, nothing is closed.
        proxy.set(.blackHole)
        let key = try #require(ManifestKey(manifest: all[0].spec.workload.manifests[0]))
        try await agent.site.tamper(key) { $0["spec"]?["replicas"] = 9 }
        try await eventually("drift corrected with the link dark", timeout: 30) { try await agent.site.get(key)?["spec"]?["replicas"] == 1 }
        for work in all.dropFirst() { _ = try await hub.admin { try await $0.apply(work, cluster: "c1") } }
        try await Task.sleep(for: .seconds(2))
        #expect(try await agent.site.objects().count == 1)

        // Light again: the agent gives up the dead connections and catches up.
        proxy.set(.pass)
        try await eventually("caught up after the black hole", timeout: 60) { try await converged(hub, all.count) }
        #expect(try agent.cache.outboxLength() == 0)
        Reliability.record(
            fault: "link black-holed (connections accepted, nothing answered)", injected: 1,
            outcome: "drift corrected offline; the agent gave up dead calls after its request timeout and caught up with the 2 works written meanwhile",
            lost: "nothing")
        try await agent.stop()
        try await proxy.stop()
        try await hub.stop()
    }

    @Test func `a full disk on the site stops new writes cleanly, and the site recovers when space returns`() async throws {
        let directory = try TemporaryDirectory("fault-disk")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: try await hub.token(autoApprove: true), name: "c1", resync: 1)
        try await hub.waitJoined("c1")
        let all = try works(8)
        _ = try await hub.admin { try await $0.apply(all[0], cluster: "c1") }
        try await eventually("the first work applied") { try await converged(hub, 1) }
        func writable() async throws -> String? {
            try await hub.admin { try await $0.cluster("c1") }.status.conditions[type: ConditionType.cacheWritable]?.status
        }

        // The disk fills: new works cannot be committed; the site says so and keeps running what it has.
        try agent.cache.simulateFullDisk(true)
        for work in all.dropFirst() { _ = try await hub.admin { try await $0.apply(work, cluster: "c1") } }
        try await eventually("CacheWritable=False at the hub", timeout: 30) { try await writable() == Condition.false }
        let key = try #require(ManifestKey(manifest: all[0].spec.workload.manifests[0]))
        try await agent.site.tamper(key) { $0["spec"]?["replicas"] = 9 }
        try await eventually("drift still corrected on a full disk", timeout: 30) { try await agent.site.get(key)?["spec"]?["replicas"] == 1 }
        // (What fitted in the file's free pages may have gone in before it was full; the rest waits.)
        let whileFull = try await agent.site.objects().count
        #expect(whileFull < all.count)
        #expect(try agent.cache.integrityCheck() == "ok")

        // Space returns: the site catches up by itself.
        try agent.cache.simulateFullDisk(false)
        try await eventually("every work applied after recovery", timeout: 60) { try await converged(hub, all.count) }
        try await eventually("CacheWritable=True again", timeout: 30) { try await writable() == Condition.true }
        Reliability.record(
            fault: "full disk on the site (SQLite refusing to grow, SQLITE_FULL)", injected: 1,
            outcome: "CacheWritable=False at the hub; the site kept running and correcting drift with \(whileFull) of \(all.count) works; the rest committed and reported once space returned",
            lost: "nothing")
        try await agent.stop()
        try await hub.stop()
    }

    /// `cairn-hub serve` as a child process on an ephemeral port: the process, its URL and an admin client maker.
    struct HubProcess {
        let process: ChildProcess
        let url: String
        let state: String

        init(state: String, log: String) async throws {
            process = try ChildProcess("cairn-hub", ["serve", "--state-dir", state, "--listen", "127.0.0.1:0", "--log-level", "error"], log: log)
            var found: String?
            let process = self.process
            try await eventually("the hub to listen", timeout: 30) {
                found = process.log.split(separator: "\n").first { $0.hasPrefix("cairn-hub listening on ") }.map { String($0.dropFirst("cairn-hub listening on ".count)) }
                return found != nil
            }
            url = found!
            self.state = state
        }

        func admin<T: Sendable>(_ body: (AdminClient) async throws -> T) async throws -> T {
            let token = try String(contentsOfFile: state + "/admin-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            return try await AdminClient.with(hub: url, token: token, trust: .caFile(state + "/pki/ca.pem"), body)
        }
    }

    @Test func `kill -9 of the hub keeps every acknowledged write`() async throws {
        let directory = try TemporaryDirectory("fault-hub")
        defer { directory.remove() }
        let state = directory.appending("hub")
        // A cluster to write works for: an agent enrols it once and goes away.
        let first = try await HubProcess(state: state, log: directory.appending("hub-enrol.log"))
        let token = try await first.admin { try await $0.createToken(TokenRequest(autoApprove: true, labels: [:], ttlSeconds: nil, maxUses: nil)) }
        let agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: first.url, pin: token.caFingerprint, token: token.token, name: "c1")
        try await eventually("c1 to enrol") { (try? await first.admin { try await $0.cluster("c1") }) != nil }
        try await agent.stop()
        try await first.process.terminate()

        let kills = FaultTests.rounds(5)
        var acknowledged = [String: Int64]()
        var written = 0
        var lost = 0
        for round in 0...kills {
            let hub = try await HubProcess(state: state, log: directory.appending("hub-\(round).log"))
            // Everything acknowledged before the last kill is there, at least at the generation acknowledged.
            let stored = try await hub.admin { try await $0.works(cluster: "c1") }
            let missing = acknowledged.filter { name, generation in (stored.first { $0.name == name }?.generation ?? 0) < generation }
            #expect(missing.isEmpty, "round \(round) lost \(missing)")
            lost += missing.count
            guard round < kills else {
                #expect(try await hub.process.terminate() == 0)
                break
            }
            // A stream of writes, killed in the middle of it.
            let process = hub.process
            let killer = Task {
                try await Task.sleep(for: .milliseconds(Int64.random(in: 400...1200)))
                try await process.kill()
            }
            _ = try? await hub.admin { client in
                var index = round * 1000
                while process.isRunning {
                    index += 1
                    let work = ManifestWork(
                        metadata: ObjectMeta(name: "w\(index % 40)"),
                        spec: .init(manifests: [["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string("m\(index)"), "namespace": "fault"]]]))
                    let reply = try await client.apply(work, cluster: "c1")
                    acknowledged[reply.name] = reply.generation
                    written += 1
                }
            }
            try await killer.value
        }
        #expect(written > 0)
        Reliability.record(
            fault: "kill -9 of the hub during a stream of writes", injected: kills,
            outcome: "\(written) writes acknowledged; after every restart each is there at its acknowledged generation",
            lost: lost == 0 ? "nothing" : "\(lost) acknowledged writes")
    }
}
