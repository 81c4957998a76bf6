import CairnCommon
import CairnCtlKit
import Foundation
import Synchronization

/// The phases of `cairn-bench run`, one after another, each adding its figures to the results.
final class BenchRun: @unchecked Sendable {
    let options: Run
    let session: BenchSession
    let corpus: Corpus
    let agentBinary: String
    let timeline = Timeline()
    var agents = [SimulatedAgent]()
    private var runners: Task<Void, Never>?

    /// The JSON results, filled phase by phase.
    private(set) var results: [String: JSONValue] = [:]
    /// The printed table: figure, value, and its floor and ratio where one applies.
    private(set) var rows: [(name: String, value: String, floor: String)] = []
    private(set) var notes: [String] = []
    private let failures = Mutex<[String]>([])
    var errors: Int { failures.withLock { $0.count } }
    var errorNotes: [String] { failures.withLock { $0 } }

    private var floorHTTP = Duration.zero
    private var floorCommit = Duration.zero
    private var baseline = ProcessStats(resident: 0, anonymous: 0, cpuSeconds: 0)

    init(options: Run, session: BenchSession, corpus: Corpus, agentBinary: String) {
        self.options = options
        self.session = session
        self.corpus = corpus
        self.agentBinary = agentBinary
    }

    var admin: AdminClient { session.admin }
    var clusterNames: [String] { agents.map(\.name) }

    func note(_ text: String) {
        notes.append(text)
        print("note: " + text)
        fflush(nil)
    }

    func fail(_ text: String) { failures.withLock { $0.append(text) } }

    func run() async throws {
        defer { runners?.cancel() }
        try await floors()
        try bundleSizes()
        try await enrol()
        try await initialWorks()
        try await idle()
        try await latency()
        try await burst()
        try await statusIngest()
        try await fanOut()
        try await realAgent()
        try await verifyAtHub()
        results["errors"] = .int(Int64(errors))
    }

    // MARK: - Floors and sizes

    private func floors() async throws {
        try await Task.sleep(for: .seconds(1))
        baseline = session.hub.stats
        floorHTTP = try await Floor.httpRoundTrip(http: session.adminHTTP, url: session.url, tls: session.adminTLS)
        floorCommit = try Floor.sqliteCommit(directory: session.state)
        results["floor"] = ["http_rtt_ms": .double(floorHTTP.milliseconds), "sqlite_commit_ms": .double(floorCommit.milliseconds)]
        row("floor: HTTP round trip (loopback, TLS)", String(format: "%.2f ms", floorHTTP.milliseconds))
        row("floor: SQLite commit (WAL, synchronous=FULL)", String(format: "%.2f ms", floorCommit.milliseconds))
        results["hub_rss_bytes_start"] = .int(Int64(baseline.resident))
        print(String(format: "hub at %@ (%@), %.1f MiB at start", session.url, session.binary, Double(baseline.resident) / 1_048_576))
    }

    /// A throughput beside what one client gets writing serially at the floor (a round trip and a commit each).
    private func serialFloor(_ perSecond: Double) -> String {
        let serial = 1000 / (floorHTTP.milliseconds + floorCommit.milliseconds)
        return String(format: "one client at the floor, serially: %.0f/s; ×%.2f", serial, perSecond / serial)
    }

    /// A change's floor: two acknowledged writes (the work, then the site's status) with nothing in between.
    private var changeFloorMs: Double { 2 * (floorHTTP.milliseconds + floorCommit.milliseconds) }

    private func bundleSizes() throws {
        let codec = BundleCodec()
        func sizes(_ works: [ManifestWork]) throws -> (json: Int, compressed: Int) {
            let encoded = try codec.encode(WorkBundle(cluster: "bench", revision: 1, since: nil, works: works))
            return (encoded.uncompressedSize, encoded.bytes.count)
        }
        let boutique = try sizes([ManifestWork(metadata: ObjectMeta(name: "online-boutique"), spec: .init(manifests: corpus.boutique))])
        let prometheus = try sizes(corpus.prometheusComponents.map { ManifestWork(metadata: ObjectMeta(name: $0.name), spec: .init(manifests: $0.manifests)) })
        let json = boutique.json + prometheus.json
        let compressed = boutique.compressed + prometheus.compressed
        results["bundle_bytes_json"] = .int(Int64(json))
        results["bundle_bytes_compressed"] = .int(Int64(compressed))
        results["bundles"] = [
            "online_boutique": ["works": 1, "json": .int(Int64(boutique.json)), "compressed": .int(Int64(boutique.compressed))],
            "kube_prometheus": [
                "works": .int(Int64(corpus.prometheusComponents.count)), "json": .int(Int64(prometheus.json)),
                "compressed": .int(Int64(prometheus.compressed)),
            ],
        ]
        for (name, size) in [("Online Boutique, 1 work", boutique), ("kube-prometheus, \(corpus.prometheusComponents.count) works", prometheus)] {
            row("bundle: \(name)", String(format: "%@ JSON → %@ sent (%.1f× smaller)", Self.bytes(size.json), Self.bytes(size.compressed), Double(size.json) / Double(size.compressed)))
        }
    }

    // MARK: - Sites

    private func enrol() async throws {
        let (enrolled, seconds) = try await session.enrol(count: options.clusters, timeline: timeline)
        agents = enrolled
        results["clusters"] = .int(Int64(agents.count))
        results["enrol_per_second"] = .double(Double(agents.count) / seconds)
        row("enrolment (CSR, auto-approved)", String(format: "%d sites in %.1f s, %.0f/s", agents.count, seconds, Double(agents.count) / seconds))
        let sites = agents
        runners = Task {
            await withTaskGroup(of: Void.self) { group in
                for agent in sites { group.addTask { await agent.run(pollWait: 30) } }
            }
        }
        let connected = try await Reconnect.waitFor(all: agents.count, timeout: options.timeout) {
            agents.count { $0.lastAnswer.withLock { $0 } != nil }
        }
        if connected.count < agents.count { fail("\(agents.count - connected.count) sites never reached the hub") }
    }

    /// `--works-per-cluster` works on every site, written through the API `--concurrency` at a time: the write
    /// throughput. Then every site must report them Applied.
    private func initialWorks() async throws {
        let count = options.worksPerCluster
        guard count > 0 else { return }
        var writes = [(cluster: String, work: ManifestWork)]()
        for (index, agent) in agents.enumerated() {
            for slot in 0..<count {
                writes.append((agent.name, initialWork(cluster: index, slot: slot)))
            }
        }
        let started = ContinuousClock.now
        let stored = await forEach(writes, concurrency: options.concurrency) { write -> (String, String, Int64)? in
            do {
                let work = try await self.admin.apply(write.work, cluster: write.cluster)
                return (write.cluster, work.name, work.generation)
            } catch {
                self.fail("writing \(write.work.name) to \(write.cluster): \(error)")
                return nil
            }
        }.compactMap { $0 }
        let seconds = (ContinuousClock.now - started).inSeconds
        let perSecond = Double(stored.count) / seconds
        results["writes_per_second"] = .double(perSecond)
        row("work writes through the API (\(options.concurrency) at once)", String(format: "%d works in %.1f s, %.0f/s", stored.count, seconds, perSecond),
            floor: serialFloor(perSecond))
        var last = started
        for (cluster, work, generation) in stored {
            let key = Timeline.Key(cluster: cluster, work: work, generation: generation, kind: .acknowledged)
            if let instant = await timeline.wait(for: key, timeout: max(1, options.timeout - (ContinuousClock.now - started).inSeconds)) {
                last = max(last, instant)
            } else {
                fail("\(work) on \(cluster) was never reported Applied")
            }
        }
        results["initial_applied_seconds"] = .double((last - started).inSeconds)
        row("…all of them Applied at the hub", String(format: "%.1f s after the first write", (last - started).inSeconds))
    }

    /// A site's initial works: Online Boutique's services in turn (a typical work: a Deployment, its Services and
    /// ServiceAccount, 1–3 KiB), a round of twelve per namespace.
    func initialWork(cluster: Int, slot: Int) -> ManifestWork {
        let count = corpus.boutiqueServices.count
        let service = (cluster + slot) % count
        let round = slot / count
        let suffix = round == 0 ? "" : "-\(round)"
        return corpus.boutiqueWork(service, name: corpus.boutiqueServices[service].name + suffix, namespace: "boutique" + suffix)
    }

    /// The hub with every site connected and nothing changing.
    private func idle() async throws {
        try await Task.sleep(for: .seconds(5))
        let start = session.hub.stats
        let window = 10.0
        try await Task.sleep(for: .seconds(window))
        let end = session.hub.stats
        let perCluster = (end.resident - baseline.resident) / max(1, agents.count)
        let cpu = ProcessStats.cpuShare(from: start, to: end, seconds: window)
        results["hub_rss_bytes"] = .int(Int64(end.resident))
        results["hub_rss_bytes_per_cluster"] = .int(Int64(perCluster))
        results["hub_cpu_idle"] = .double(cpu)
        row("hub idle, \(agents.count) sites connected", String(format: "%.1f MiB RSS (%.1f KiB per site over %.1f MiB at start), %.1f%% of a core",
            Double(end.resident) / 1_048_576, Double(perCluster) / 1024, Double(baseline.resident) / 1_048_576, cpu * 100))
    }

    // MARK: - Latency

    private struct Lifecycle {
        var create: Duration?
        var createSite: Duration?
        var update: Duration?
        var updateSite: Duration?
        var delete: Duration?
        var deleteSite: Duration?
    }

    /// `--rate` single-site changes a second for `--duration` seconds: each a create, then (once Applied) an
    /// update, then (once Applied) a delete, each timed from the API call until the site has it and until the hub
    /// holds the site's status for it.
    private func latency() async throws {
        let total = Int((options.duration * options.rate).rounded())
        guard total > 0 else { return }
        let started = ContinuousClock.now
        var lifecycles = [Lifecycle]()
        await withTaskGroup(of: Lifecycle.self) { group in
            for index in 0..<total {
                let at = started + .milliseconds(Int64(Double(index) * 1000 / options.rate))
                let agent = agents[index % agents.count]
                group.addTask {
                    try? await Task.sleep(until: at, clock: .continuous)
                    return await self.lifecycle(index: index, cluster: agent.name)
                }
            }
            for await lifecycle in group { lifecycles.append(lifecycle) }
        }
        let create = Percentiles(lifecycles.compactMap(\.create))
        let update = Percentiles(lifecycles.compactMap(\.update))
        let delete = Percentiles(lifecycles.compactMap(\.delete))
        let createSite = Percentiles(lifecycles.compactMap(\.createSite))
        let updateSite = Percentiles(lifecycles.compactMap(\.updateSite))
        let deleteSite = Percentiles(lifecycles.compactMap(\.deleteSite))
        results["latency_ms"] = create.json
        results["update_ms"] = update.json
        results["delete_ms"] = delete.json
        results["site_latency_ms"] = ["create": createSite.json, "update": updateSite.json, "delete": deleteSite.json]
        results["changes"] = .int(Int64(total))
        let floor = String(format: "2 acknowledged writes %.1f ms: ×%%.1f", changeFloorMs)
        row("create → Applied at the hub", create.text, floor: String(format: floor, create.p50 / changeFloorMs))
        row("create → applied on the site", createSite.text)
        row("update → Applied at the hub", update.text, floor: String(format: floor, update.p50 / changeFloorMs))
        row("update → applied on the site", updateSite.text)
        row("delete → gone at the hub", delete.text, floor: String(format: floor, delete.p50 / changeFloorMs))
        row("delete → gone from the site", deleteSite.text)
    }

    private func lifecycle(index: Int, cluster: String) async -> Lifecycle {
        let name = String(format: "lat-%05d", index)
        let work = corpus.boutiqueWork(index, name: name, namespace: name)
        var lifecycle = Lifecycle()
        /// One change: the API call (returning the generation it leads to), then until the hub has the site's word
        /// (`at hub`) and when the site had it (`on site`); nil when it never came.
        func change(_ what: String, hub: Timeline.Kind, site: Timeline.Kind, _ call: () async throws -> Int64) async throws -> (Duration, Duration?, Int64)? {
            let started = ContinuousClock.now
            let generation = try await call()
            guard let done = await timeline.wait(for: .init(cluster: cluster, work: name, generation: generation, kind: hub), timeout: options.timeout) else {
                fail("\(what) of \(name) on \(cluster) never reached the hub")
                return nil
            }
            return (done - started, timeline.instant(.init(cluster: cluster, work: name, generation: generation, kind: site)).map { $0 - started }, generation)
        }
        do {
            guard let created = try await change("create", hub: .acknowledged, site: .applied, { try await admin.apply(work, cluster: cluster).generation }) else { return lifecycle }
            (lifecycle.create, lifecycle.createSite) = (created.0, created.1)
            // Update: the Deployment scaled to 2.
            guard let updated = try await change("update", hub: .acknowledged, site: .applied, { try await admin.apply(work.scaled(to: 2), cluster: cluster).generation }) else { return lifecycle }
            (lifecycle.update, lifecycle.updateSite) = (updated.0, updated.1)
            guard let deleted = try await change("delete", hub: .removalAcknowledged, site: .removed, {
                _ = try await admin.deleteWork(name, cluster: cluster)
                return updated.2
            }) else { return lifecycle }
            (lifecycle.delete, lifecycle.deleteSite) = (deleted.0, deleted.1)
        } catch {
            fail("\(name) on \(cluster): \(error)")
        }
        return lifecycle
    }

    // MARK: - Burst, status ingest, fan-out

    /// 100 works created at once on one site (Boutique services, each in a namespace of its own): until the hub
    /// shows all of them Applied. Then they are deleted again.
    private func burst() async throws {
        let cluster = agents[agents.count / 2].name
        let works = (0..<100).map { corpus.boutiqueWork($0, name: String(format: "burst-%03d", $0), namespace: String(format: "burst-%03d", $0)) }
        let started = ContinuousClock.now
        let stored = await forEach(works, concurrency: 100) { work -> (String, Int64)? in
            do { return (work.name, try await self.admin.apply(work, cluster: cluster).generation) } catch {
                self.fail("burst: writing \(work.name): \(error)")
                return nil
            }
        }.compactMap { $0 }
        var last = started
        for (name, generation) in stored {
            if let instant = await timeline.wait(for: .init(cluster: cluster, work: name, generation: generation, kind: .acknowledged), timeout: options.timeout) {
                last = max(last, instant)
            } else {
                fail("burst: \(name) on \(cluster) never reported Applied")
            }
        }
        let seconds = (last - started).inSeconds
        results["burst100_seconds"] = .double(seconds)
        row("100 works at once on one site → all Applied", String(format: "%.3f s", seconds))
        _ = await forEach(stored, concurrency: 100) { (name, generation) -> Void in
            do {
                _ = try await self.admin.deleteWork(name, cluster: cluster)
                if await self.timeline.wait(for: .init(cluster: cluster, work: name, generation: generation, kind: .removalAcknowledged), timeout: self.options.timeout) == nil {
                    self.fail("burst: \(name) on \(cluster) never reported gone")
                }
            } catch {
                self.fail("burst: deleting \(name): \(error)")
            }
        }
    }

    /// Status reports, one work each, from every site in turn, `--concurrency` at a time, for five seconds.
    private func statusIngest() async throws {
        let seconds = 5.0
        let started = ContinuousClock.now
        let deadline = started + .seconds(seconds)
        let sent = await withTaskGroup(of: Int.self) { group in
            for lane in 0..<options.concurrency {
                group.addTask {
                    var next = lane
                    var sent = 0
                    while ContinuousClock.now < deadline {
                        let agent = self.agents[next % self.agents.count]
                        // The site's first work (when it has one: else a report the hub has no work for).
                        var work = self.initialWork(cluster: next % self.agents.count, slot: 0)
                        work.metadata.generation = 1
                        let workName = work.name
                        next += self.options.concurrency
                        var status = SimulatedAgent.status(of: work, at: Date())
                        status.conditions[0].message = "report \(next)"
                        do {
                            try await agent.report(WorkStatusUpdate(name: workName, observedGeneration: 1, status: status))
                            sent += 1
                        } catch {
                            self.fail("status report from \(agent.name): \(error)")
                        }
                    }
                    return sent
                }
            }
            return await group.reduce(0, +)
        }
        let elapsed = (ContinuousClock.now - started).inSeconds
        let perSecond = Double(sent) / elapsed
        results["status_per_second"] = .double(perSecond)
        row("status reports ingested (\(options.concurrency) sites at once)", String(format: "%.0f/s", perSecond), floor: serialFloor(perSecond))
    }

    /// A WorkSet placed on every site: the time until all of them report it Available, first when it is created,
    /// then for one change to its template.
    private func fanOut() async throws {
        let names = clusterNames
        let selector = Placement.ClusterSelector(labelSelector: LabelSelector(matchLabels: ["bench": "true"]))
        _ = try await admin.applyPlacement(Placement(metadata: ObjectMeta(name: "bench-all"), spec: .init(predicates: [.init(requiredClusterSelector: selector)])))
        var decisions = 0
        let placed = ContinuousClock.now
        while decisions < names.count, (ContinuousClock.now - placed).inSeconds < options.timeout {
            decisions = try await admin.placement("bench-all").status?.decisions.count ?? 0
            if decisions < names.count { try await Task.sleep(for: .milliseconds(100)) }
        }
        guard decisions == names.count else {
            fail("fan-out: the placement chose \(decisions) of \(names.count) sites")
            return
        }
        let template = corpus.boutiqueWork(0, name: "bench-fanout", namespace: "bench-fanout")
        func measure(_ spec: ManifestWork.Spec, what: String) async throws -> Double? {
            let before = timeline.generations(clusters: names, work: "bench-fanout", kind: .acknowledged).compactMapValues { $0 }
            let started = ContinuousClock.now
            _ = try await admin.applyWorkSet(WorkSet(metadata: ObjectMeta(name: "bench-fanout"), spec: .init(placementRefs: [.init(name: "bench-all")], manifestWorkTemplate: spec)))
            var reached = (count: 0, last: ContinuousClock.Instant?.none)
            while (ContinuousClock.now - started).inSeconds < options.timeout {
                reached = timeline.count(clusters: names, work: "bench-fanout", kind: .acknowledged, newerThan: before)
                if reached.count == names.count { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            guard reached.count == names.count, let last = reached.last else {
                fail("fan-out (\(what)): \(names.count - reached.count) of \(names.count) sites never reported it Available")
                return nil
            }
            return (last - started).inSeconds
        }
        if let created = try await measure(template.spec, what: "create") {
            results["fanout_create_seconds"] = .double(created)
            row("WorkSet created → Available on all \(names.count) sites", String(format: "%.2f s", created))
        }
        if let changed = try await measure(template.scaled(to: 3).spec, what: "change") {
            results["fanout_seconds"] = .double(changed)
            row("one change → Available on all \(names.count) sites", String(format: "%.2f s", changed))
        }
    }

    // MARK: - One real agent

    /// A real `cairn-agent` (simulated cluster, its SQLite cache) given 50 works from the corpus: how long until
    /// the hub shows them all Applied, and its memory and CPU once idle.
    private func realAgent() async throws {
        let directory = session.state + "/agent"
        let name = "bench-agent"
        let process = try BenchProcess(
            binary: agentBinary,
            arguments: [
                "run", "--hub", session.url, "--token", session.token, "--ca-fingerprint", session.fingerprint, "--name", name,
                "--state-dir", directory, "--adapter", "simulated", "--simulated-ready-delay", "0", "--log-level", "warning",
            ],
            log: session.state + "/agent.log")
        defer { process.terminate() }
        let joinedBy = ContinuousClock.now + .seconds(options.timeout)
        while ContinuousClock.now < joinedBy {
            if let cluster = try? await admin.cluster(name), cluster.status.conditions[type: ConditionType.joined]?.status == Condition.true { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let works = corpus.catalogue.prefix(50).map { ManifestWork(metadata: ObjectMeta(name: $0.name), spec: .init(manifests: $0.manifests)) }
        let started = ContinuousClock.now
        _ = await forEach(works, concurrency: 8) { work -> Void in
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
        try await Task.sleep(for: .seconds(5))
        let start = process.stats
        let window = 10.0
        try await Task.sleep(for: .seconds(window))
        let end = process.stats
        let cpu = ProcessStats.cpuShare(from: start, to: end, seconds: window)
        results["agent_rss_bytes"] = .int(Int64(end.resident))
        results["agent_anon_bytes"] = .int(Int64(end.anonymous))
        results["agent_cpu_idle"] = .double(cpu)
        results["agent_apply50_seconds"] = .double(seconds)
        row("real cairn-agent: 50 works written → all Applied", String(format: "%.2f s", seconds))
        row("real cairn-agent idle with 50 works", String(format: "%.1f MiB RSS, %.1f MiB anonymous, %.2f%% of a core",
            Double(end.resident) / 1_048_576, Double(end.anonymous) / 1_048_576, cpu * 100))
    }

    // MARK: - What the hub shows

    /// Every site's initial works and the fan-out work Applied at their generation at the hub, and nothing the
    /// latency and burst phases deleted left behind — read back through the API for up to 50 sites.
    private func verifyAtHub() async throws {
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

    // MARK: - Output

    func row(_ name: String, _ value: String, floor: String = "") {
        rows.append((name, value, floor))
        print(String(format: "%-52@ %@%@", name as NSString, value, floor.isEmpty ? "" : "   [" + floor + "]"))
        fflush(nil)  // each figure as it comes, also into a file: a long run shows where it is
    }

    func printTable() {
        print("\n| measure | result | floor |\n|---|---|---|")
        for row in rows { print("| \(row.name) | \(row.value) | \(row.floor) |") }
        for note in notes { print("\nnote: \(note)") }
    }

    var json: JSONValue {
        var all = results
        all["notes"] = .array(notes.map { .string($0) })
        all["error_notes"] = .array(errorNotes.prefix(100).map { .string($0) })
        return .object(all)
    }

    static func bytes(_ count: Int) -> String {
        count >= 1 << 20 ? String(format: "%.2f MiB", Double(count) / 1_048_576) : String(format: "%.1f KiB", Double(count) / 1024)
    }

    /// Runs `body` over `items`, at most `concurrency` at once; results in the items' order.
    func forEach<Item: Sendable, Result: Sendable>(
        _ items: [Item], concurrency: Int, _ body: @escaping @Sendable (Item) async -> Result
    ) async -> [Result] {
        await withTaskGroup(of: (Int, Result).self) { group in
            var results = [Result?](repeating: nil, count: items.count)
            var next = 0
            for _ in 0..<min(concurrency, items.count) {
                let index = next
                group.addTask { (index, await body(items[index])) }
                next += 1
            }
            while let (index, result) = await group.next() {
                results[index] = result
                if next < items.count {
                    let index = next
                    group.addTask { (index, await body(items[index])) }
                    next += 1
                }
            }
            return results.map { $0! }
        }
    }
}

extension Duration {
    var milliseconds: Double { inSeconds * 1000 }
}
