import ArgumentParser
import CairnCommon
import Foundation
import Synchronization

/// Many sites connected to one hub, the hub killed and started again, everyone coming back at once.
struct Reconnect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "N simulated sites connect to a hub; the hub is killed (-9) and restarted; measures the hub's memory idle and while they all reconnect.")

    @Option(help: "Simulated sites.") var clusters: Int = 1_000
    @Option(help: "The cairn-hub binary (default: beside this one).") var hub: String?
    @Option(help: "Seconds a long-poll is held.") var pollWait: Double = 30
    @Option(help: "Seconds to wait for everyone to come back before giving up.") var timeout: Double = 180
    @Option(help: "Write the results here as JSON.") var out: String?

    func run() async throws {
        let limits = Limits.raise()
        let session = try await BenchSession.start(binary: hub, clusters: clusters)
        do {
            try await Task.sleep(for: .milliseconds(500))
            let baseline = session.hub.residentBytes
            print("hub at \(session.url); \(clusters) simulated sites; open files \(limits.files), ephemeral ports \(limits.ports)")
            let (agents, enrolSeconds) = try await session.enrol(count: clusters, timeline: nil)
            print(String(format: "enrolled %d sites in %.1f s (%.0f/s)", agents.count, enrolSeconds, Double(agents.count) / enrolSeconds))

            let runners = BenchSession.run(agents, pollWait: pollWait)
            defer { runners.cancel() }
            _ = try await waitFor(all: agents.count, timeout: timeout) { agents.count(where: \.answered) }
            try await Task.sleep(for: .seconds(5))
            let idle = session.hub.residentBytes
            print(String(format: "idle with %d connected: hub RSS %.1f MiB (%.0f KiB per site over the %.1f MiB it started with)",
                agents.count, Double(idle) / 1_048_576, Double(idle - baseline) / 1024 / Double(agents.count), Double(baseline) / 1_048_576))

            // kill -9, a second of silence, the same hub again on the same port.
            // A site is back once the restarted hub has renewed its lease — by a heartbeat, or by a poll it holds
            // (an idle site polls and skips heartbeats, so its first answer may come a long-poll later).
            let restarted = Date()
            let gone = try await session.restartHub(log: "hub-2.log")
            let sampler = RSSSampler(process: session.hub)
            let samples = Task { await sampler.run() }
            let back = try await waitForLeases(of: agents.count, renewedAfter: gone, from: restarted, session: session)
            samples.cancel()
            await samples.value
            let peak = sampler.peak.withLock { $0 }
            let shed = agents.reduce(0) { $0 + $1.shed.load(ordering: .relaxed) }
            print(String(format: "after kill -9: %d of %d back (lease renewed at the new hub) in %.1f s; hub RSS peak %.1f MiB while they reconnected; %d requests shed with Retry-After",
                back.count, agents.count, back.seconds, Double(peak) / 1_048_576, shed))
            let results: JSONValue = [
                "clusters": .int(Int64(agents.count)),
                "enrol_per_second": .double(Double(agents.count) / enrolSeconds),
                "hub_rss_bytes_start": .int(Int64(baseline)),
                "hub_rss_bytes": .int(Int64(idle)),
                "hub_rss_bytes_per_cluster": .int(Int64((idle - baseline) / max(1, agents.count))),
                "reconnect_seconds": .double(back.seconds),
                "reconnected": .int(Int64(back.count)),
                "reconnect_peak_rss_bytes": .int(Int64(peak)),
                "reconnect_shed": .int(Int64(shed)),
                "errors": .int(Int64(agents.count - back.count)),
            ]
            if let out { try CairnJSON.encode(results).write(to: URL(fileURLWithPath: out)) }
            runners.cancel()
            guard await session.finish() else { throw BenchError("the hub did not stop within 30 s of SIGTERM (killed)") }
            if back.count < agents.count { throw ExitCode(1) }
        } catch {
            await session.finish(kill: true)
            throw error
        }
    }

    /// Waits until the hub shows `count` clusters whose lease it renewed after `gone`, when the old hub had exited, or
    /// the timeout. Returns how many, and the seconds from `start` until the bench saw them all in the hub's cluster list
    /// (read four times a second, less often for many sites): an upper bound, late by up to a second more since the hub
    /// writes lease times once a second. The list gives whole seconds; the new hub started a second after `gone`, so
    /// every time it wrote is at least the whole second after `gone`, and none the old hub wrote is.
    private func waitForLeases(of count: Int, renewedAfter gone: Date, from start: Date, session: BenchSession) async throws -> (count: Int, seconds: Double) {
        let every = Duration.milliseconds(max(250, min(1_000, count / 10)))
        let threshold = Date(timeIntervalSince1970: gone.timeIntervalSince1970.rounded(.down) + 1)
        var renewed = 0
        while Date().timeIntervalSince(start) < timeout {
            if let clusters = try? await session.admin.clusters() {
                renewed = clusters.count { ($0.status.lastHeartbeatTime ?? .distantPast) >= threshold }
                if renewed >= count { return (renewed, Date().timeIntervalSince(start)) }
            }
            try await Task.sleep(for: every)
        }
        return (renewed, timeout)
    }
}
