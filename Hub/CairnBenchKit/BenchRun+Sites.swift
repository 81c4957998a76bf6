import CairnCommon
import CairnCtlKit
import Foundation

/// The phases about the sites and the processes: enrolment, the idle hub, one real agent, the read-back check.
extension BenchRun {
    func enrol() async throws {
        let (enrolled, seconds) = try await session.enrol(count: options.clusters, timeline: timeline)
        agents = enrolled
        results["clusters"] = .int(Int64(agents.count))
        results["enrol_per_second"] = .double(Double(agents.count) / seconds)
        row("enrolment (CSR, auto-approved)", String(format: "%d sites in %.1f s, %.0f/s", agents.count, seconds, Double(agents.count) / seconds))
        runners = BenchSession.run(agents, pollWait: 30)
        let connected = try await waitFor(all: agents.count, timeout: options.timeout) { agents.count(where: \.answered) }
        if connected.count < agents.count { fail("\(agents.count - connected.count) sites never reached the hub") }
        try await settle()
    }

    /// Waits (up to 90 s) until the hub has spent under half a core for two seconds running: what enrolling N sites
    /// leaves behind — their enrolment connections closing, each a walk through the server's list of every connection
    /// (~2 ms of CPU at 20,000), connections queued at the hub still being set up — belongs to enrolment, not to the
    /// writes measured next.
    private func settle() async throws {
        let started = ContinuousClock.now
        var quiet = 0
        var last = session.hub.stats.cpuSeconds
        while quiet < 2, (ContinuousClock.now - started).inSeconds < 90 {
            try await Task.sleep(for: .seconds(1))
            let now = session.hub.stats.cpuSeconds
            quiet = now - last < 0.5 ? quiet + 1 : 0
            last = now
        }
        let seconds = (ContinuousClock.now - started).inSeconds
        results["settle_seconds"] = .double(seconds)
        row("…the hub settled (under half a core for 2 s)", String(format: "%.0f s after the last site connected", seconds))
    }

    /// The hub with every site connected and nothing changing.
    func idle() async throws {
        try await Task.sleep(for: .seconds(5))
        let hub = session.hub
        let (end, _, cpu) = try await ProcessStats.idle(seconds: 10) { hub.stats }
        let perCluster = (end.resident - baseline.resident) / max(1, agents.count)
        results["hub_rss_bytes"] = .int(Int64(end.resident))
        results["hub_rss_bytes_per_cluster"] = .int(Int64(perCluster))
        results["hub_cpu_idle"] = .double(cpu)
        row("hub idle, \(agents.count) sites connected", String(format: "%.1f MiB RSS (%.1f KiB per site over %.1f MiB at start), %.1f%% of a core",
            Double(end.resident) / 1_048_576, Double(perCluster) / 1024, Double(baseline.resident) / 1_048_576, cpu * 100))
    }

    /// A real `cairn-agent` (simulated cluster, its SQLite cache) given 50 works from the corpus: how long until
    /// the hub shows them all Applied, its memory in the 10 s after, and its memory and CPU once idle — past the
    /// quiet time after which it gives back the code pages starting and applying touched, and one status pass more.
    func realAgent() async throws {
        let quiet = 10.0
        // Idle is measured from here after all Applied: past the quiet time, and one 5 s status pass more.
        let idleFrom = quiet + 6
        let directory = session.state + "/agent"
        let name = "bench-agent"
        let process = try BenchProcess(
            binary: agentBinary,
            arguments: [
                "run", "--hub", session.url, "--token", session.token, "--ca-fingerprint", session.fingerprint, "--name", name,
                "--state-dir", directory, "--adapter", "simulated", "--simulated-ready-delay", "0", "--log-level", "warning",
                "--release-code-after", String(quiet),
            ],
            log: session.state + "/agent.log")
        let measured: Result<Void, any Error>
        do {
            try await measure(agent: process, name: name, idleFrom: idleFrom)
            measured = .success(())
        } catch {
            measured = .failure(error)
        }
        if !(await process.terminate()) { fail("the real agent did not stop within 30 s of SIGTERM (killed; log: \(process.log))") }
        try measured.get()
    }

    private func measure(agent process: BenchProcess, name: String, idleFrom: Double) async throws {
        let joinedBy = ContinuousClock.now + .seconds(options.timeout)
        while ContinuousClock.now < joinedBy {
            if let cluster = try? await admin.cluster(name), cluster.status.conditions[type: ConditionType.joined]?.status == Condition.true { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let works = corpus.catalogue.prefix(50).map { ManifestWork(metadata: ObjectMeta(name: $0.name), spec: .init(manifests: $0.manifests)) }
        let started = ContinuousClock.now
        _ = try await concurrently(works, atMost: 8) { work -> Void in
            do { _ = try await self.admin.apply(work, cluster: name) } catch { self.fail("agent: writing \(work.name): \(error)") }
        }
        var applied = 0
        while (ContinuousClock.now - started).inSeconds < options.timeout {
            let listed = (try? await admin.works(cluster: name)) ?? []
            applied = listed.count { work in
                guard let condition = work.status?.conditions[type: ConditionType.applied] else { return false }
                return condition.status == Condition.true && condition.observedGeneration == work.generation
            }
            if applied == works.count { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let seconds = (ContinuousClock.now - started).inSeconds
        guard applied == works.count else {
            fail("the real agent applied \(applied) of \(works.count) works (log: \(process.log))")
            return
        }
        let applying = ContinuousClock.now
        let (after, afterPeak, _) = try await ProcessStats.idle(seconds: 10) { process.stats }
        try await Task.sleep(until: applying + .seconds(idleFrom))
        let (end, peak, cpu) = try await ProcessStats.idle(seconds: 10) { process.stats }
        let mappings = ProcessStats.residentByMapping(of: process.process.processIdentifier)
        results["agent_rss_by_mapping"] = .object(Dictionary(uniqueKeysWithValues: mappings.map { ($0.name, JSONValue.int(Int64($0.bytes))) }))
        results["agent_rss_bytes"] = .int(Int64(end.resident))
        results["agent_anon_bytes"] = .int(Int64(end.anonymous))
        results["agent_rss_peak_bytes"] = .int(Int64(max(peak, afterPeak)))
        results["agent_rss_after_apply_bytes"] = .int(Int64(after.resident))
        results["agent_cpu_idle"] = .double(cpu)
        results["agent_apply50_seconds"] = .double(seconds)
        row("real cairn-agent: 50 works written → all Applied", String(format: "%.2f s", seconds))
        row("real cairn-agent in the 10 s after", String(format: "%.1f MiB RSS, %.1f MiB anonymous (median; peak %.1f MiB RSS)",
            Double(after.resident) / 1_048_576, Double(after.anonymous) / 1_048_576, Double(afterPeak) / 1_048_576))
        row("real cairn-agent idle with 50 works", String(format: "%.1f MiB RSS, %.1f MiB anonymous (median of 10 s, from %.0f s after; peak %.1f MiB RSS), %.2f%% of a core",
            Double(end.resident) / 1_048_576, Double(end.anonymous) / 1_048_576, idleFrom, Double(peak) / 1_048_576, cpu * 100))
        row("…where its resident pages are", mappings.prefix(6).map { "\($0.name) " + String(format: "%.1f", Double($0.bytes) / 1_048_576) }
            .joined(separator: ", ") + " MiB")
    }

    /// Every site's initial works and the fan-out work Applied at their generation at the hub, and nothing the
    /// latency and burst phases deleted left behind — read back through the API for up to 50 sites.
    func verifyAtHub() async throws {
        let step = max(1, agents.count / 50)
        for index in stride(from: 0, to: agents.count, by: step) {
            let cluster = agents[index].name
            let works = try await admin.works(cluster: cluster)
            for work in works {
                if work.name.hasPrefix("lat-") || work.name.hasPrefix("burst-") {
                    fail("\(work.name) on \(cluster) is still at the hub after its delete")
                    continue
                }
                let applied = work.status?.conditions[type: ConditionType.applied]
                if applied?.status != Condition.true || applied?.observedGeneration != work.generation {
                    fail("the hub does not show \(work.name) on \(cluster) Applied at generation \(work.generation)")
                }
            }
            if works.count != options.worksPerCluster + 1 {
                fail("\(cluster) has \(works.count) works at the hub, expected \(options.worksPerCluster + 1)")
            }
        }
    }
}
