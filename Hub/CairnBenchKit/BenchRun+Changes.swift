import CairnCommon
import CairnCtlKit
import Foundation

/// The phases that change what sites run: API writes, single-site latency, the burst, status ingest, fan-out.
extension BenchRun {
    /// `--works-per-cluster` works on every site, written through the API `--concurrency` at a time: the write
    /// throughput. Then every site must report them Applied.
    func initialWorks() async throws {
        let count = options.worksPerCluster
        guard count > 0 else { return }
        var writes = [(cluster: String, work: ManifestWork)]()
        for (index, agent) in agents.enumerated() {
            for slot in 0..<count {
                writes.append((agent.name, initialWork(cluster: index, slot: slot)))
            }
        }
        let (hubBefore, benchBefore) = (session.hub.stats, ProcessStats.of(getpid()))
        let started = ContinuousClock.now
        let stored = try await concurrently(writes, atMost: options.concurrency) { write -> (String, String, Int64)? in
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
            floor: requestFloor(perSecond, requests: 4))
        let last = await latest(
            of: stored.map { Timeline.Key(cluster: $0.0, work: $0.1, generation: $0.2, kind: .acknowledged) }, from: started, within: options.timeout
        ) { "\($0.work) on \($0.cluster) was never reported Applied" }
        results["initial_applied_seconds"] = .double((last - started).inSeconds)
        row("…all of them Applied at the hub", String(format: "%.1f s after the first write", (last - started).inSeconds))
        // What each write cost, from the first write until every site reported it (delivery and status included, and
        // whatever else the fleet did meanwhile): where the time goes, hub or sites. It moves with this machine's
        // speed too, but less than writes/s does.
        let (hubAfter, benchAfter) = (session.hub.stats, ProcessStats.of(getpid()))
        let hubMs = 1000 * (hubAfter.cpuSeconds - hubBefore.cpuSeconds) / Double(max(1, stored.count))
        let benchMs = 1000 * (benchAfter.cpuSeconds - benchBefore.cpuSeconds) / Double(max(1, stored.count))
        results["hub_cpu_ms_per_write"] = .double(hubMs)
        results["bench_cpu_ms_per_write"] = .double(benchMs)
        row("…CPU per write, until Applied", String(format: "hub %.2f ms, the bench's sites and client %.2f ms", hubMs, benchMs))
    }

    /// Waits for each of `keys`, failing those that never come; the latest instant among them (`started` when none
    /// came). With `within`, they share that many seconds from `started`; else each may take `--timeout`.
    func latest(
        of keys: [Timeline.Key], from started: ContinuousClock.Instant, within shared: Double?, failing: (Timeline.Key) -> String
    ) async -> ContinuousClock.Instant {
        var last = started
        for key in keys {
            let timeout = shared.map { max(1, $0 - (ContinuousClock.now - started).inSeconds) } ?? options.timeout
            if let instant = await timeline.wait(for: key, timeout: timeout) { last = max(last, instant) } else { fail(failing(key)) }
        }
        return last
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

    struct Lifecycle {
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
    func latency() async throws {
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

    func lifecycle(index: Int, cluster: String) async -> Lifecycle {
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

    /// 100 works created at once on one site (Boutique services, each in a namespace of its own): until the hub
    /// shows all of them Applied. Then they are deleted again.
    func burst() async throws {
        let cluster = agents[agents.count / 2].name
        let works = (0..<100).map { corpus.boutiqueWork($0, name: String(format: "burst-%03d", $0), namespace: String(format: "burst-%03d", $0)) }
        let started = ContinuousClock.now
        let stored = try await concurrently(works, atMost: 100) { work -> (String, Int64)? in
            do { return (work.name, try await self.admin.apply(work, cluster: cluster).generation) } catch {
                self.fail("burst: writing \(work.name): \(error)")
                return nil
            }
        }.compactMap { $0 }
        let last = await latest(
            of: stored.map { Timeline.Key(cluster: cluster, work: $0.0, generation: $0.1, kind: .acknowledged) }, from: started, within: nil
        ) { "burst: \($0.work) on \($0.cluster) never reported Applied" }
        let seconds = (last - started).inSeconds
        results["burst100_seconds"] = .double(seconds)
        row("100 works at once on one site → all Applied", String(format: "%.3f s", seconds))
        _ = try await concurrently(stored, atMost: 100) { (name, generation) -> Void in
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
    func statusIngest() async throws {
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
        row("status reports ingested (\(options.concurrency) sites at once)", String(format: "%.0f/s", perSecond), floor: requestFloor(perSecond, requests: 1))
    }

    /// Requests the simulated sites had shed so far (503 with Retry-After).
    var shedBySites: Int { agents.reduce(0) { $0 + $1.shed.load(ordering: .relaxed) } }

    /// A WorkSet placed on every site: the time until all of them report it Available, first when it is created,
    /// then for one change to its template.
    func fanOut() async throws {
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
            let before = timeline.generations(clusters: names, work: "bench-fanout", kind: .acknowledged)
            let shedBefore = shedBySites
            let started = ContinuousClock.now
            _ = try await admin.applyWorkSet(WorkSet(metadata: ObjectMeta(name: "bench-fanout"), spec: .init(placementRefs: [.init(name: "bench-all")], manifestWorkTemplate: spec)))
            var reached = (count: 0, last: ContinuousClock.Instant?.none)
            while (ContinuousClock.now - started).inSeconds < options.timeout {
                reached = timeline.count(clusters: names, work: "bench-fanout", kind: .acknowledged, newerThan: before)
                if reached.count == names.count { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            let shed = shedBySites - shedBefore
            results["fanout_\(what)_shed"] = .int(Int64(shed))
            if shed > 0 { note("fan-out (\(what)): the hub turned away \(shed) of the sites' requests with 503 and Retry-After") }
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
}
