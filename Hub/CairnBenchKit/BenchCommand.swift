import ArgumentParser
import AsyncHTTPClient
import CairnAgent
import CairnCommon
import CairnCtlKit
import Foundation
import Synchronization

/// `cairn-bench`: measures the hub and agents on this machine.
public struct BenchCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cairn-bench", abstract: "Measure Cairn on this machine.", subcommands: [Reconnect.self])
    public init() {}
}

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
        let binary = hub ?? (URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("cairn-hub").path)
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("cairn-bench-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: state) }
        let extra = ["--enrolment-burst", String(clusters), "--enrolment-rate", "10000", "--max-long-polls", String(max(20_000, clusters * 2))]
        var hubProcess = try HubProcess(binary: binary, stateDirectory: state + "/hub", port: 0, log: state + "/hub-1.log", extra: extra)
        try await hubProcess.waitListening()
        let url = hubProcess.url
        try await Task.sleep(for: .milliseconds(500))
        let baseline = hubProcess.residentBytes
        print("hub at \(url); \(clusters) simulated sites; open files \(limits.files), ephemeral ports \(limits.ports)")

        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let adminToken = try String(contentsOfFile: state + "/hub/admin-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let token = try await AdminClient.with(hub: url, token: adminToken, trust: .caFile(state + "/hub/pki/ca.pem")) {
                try await $0.createToken(TokenRequest(autoApprove: true, labels: [:], ttlSeconds: 3600, maxUses: clusters))
            }
            guard let secret = token.token, let fingerprint = token.caFingerprint else { throw BenchError("the hub made no token") }
            let caPEM = try await HubClient.pinnedCA(http: http, baseURL: url, fingerprint: fingerprint)

            // Enrolment, 32 at a time.
            let started = ContinuousClock.now
            var agents = [SimulatedAgent]()
            try await withThrowingTaskGroup(of: SimulatedAgent.self) { group in
                var next = 0
                func add() {
                    let name = String(format: "site-%05d", next)
                    next += 1
                    group.addTask { try await SimulatedAgent.enrol(name: name, http: http, hubURL: url, caPEM: caPEM, fingerprint: fingerprint, token: secret) }
                }
                for _ in 0..<min(32, clusters) { add() }
                while let agent = try await group.next() {
                    agents.append(agent)
                    if next < clusters { add() }
                }
            }
            let enrolSeconds = (ContinuousClock.now - started).inSeconds
            print(String(format: "enrolled %d sites in %.1f s (%.0f/s)", agents.count, enrolSeconds, Double(agents.count) / enrolSeconds))

            let sites = agents
            let wait = pollWait
            let runners = Task {
                await withTaskGroup(of: Void.self) { group in
                    for agent in sites { group.addTask { await agent.run(pollWait: wait) } }
                }
            }
            defer { runners.cancel() }
            func answeredSince(_ moment: Date) -> Int { agents.filter { ($0.lastAnswer.withLock { $0 } ?? .distantPast) >= moment }.count }
            let connectedAt = Date()
            _ = try await waitFor(all: agents.count, timeout: timeout) { answeredSince(.distantPast) }
            try await Task.sleep(for: .seconds(5))
            let idle = hubProcess.residentBytes
            print(String(format: "idle with %d connected: hub RSS %.1f MiB (%.0f KiB per site over the %.1f MiB it started with)",
                agents.count, Double(idle) / 1_048_576, Double(idle - baseline) / 1024 / Double(agents.count), Double(baseline) / 1_048_576))
            _ = connectedAt

            // kill -9, a second of silence, the same hub again on the same port.
            hubProcess.kill()
            try await Task.sleep(for: .seconds(1))
            let restarted = Date()
            hubProcess = try HubProcess(binary: binary, stateDirectory: state + "/hub", port: hubProcess.port, log: state + "/hub-2.log", extra: extra)
            try await hubProcess.waitListening()
            let sampler = RSSSampler(process: hubProcess)
            let samples = Task { await sampler.run() }
            let back = try await waitFor(all: agents.count, timeout: timeout) { answeredSince(restarted) }
            samples.cancel()
            await samples.value
            let peak = sampler.peak.withLock { $0 }
            let shed = agents.reduce(0) { $0 + $1.shed.load(ordering: .relaxed) }
            print(String(format: "after kill -9: %d of %d back in %.1f s; hub RSS peak %.1f MiB while they reconnected; %d requests shed with Retry-After",
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
            hubProcess.terminate()
            try await http.shutdown()
            if back.count < agents.count { throw ExitCode(1) }
        } catch {
            hubProcess.kill()
            try? await http.shutdown()
            throw error
        }
    }

    /// Waits until `count()` reaches `all` or the timeout; returns how many made it and how long it took.
    func waitFor(all: Int, timeout: Double, _ count: () -> Int) async throws -> (count: Int, seconds: Double) {
        let started = ContinuousClock.now
        while (ContinuousClock.now - started).inSeconds < timeout {
            let now = count()
            if now >= all { return (now, (ContinuousClock.now - started).inSeconds) }
            try await Task.sleep(for: .milliseconds(50))
        }
        return (count(), timeout)
    }
}

/// The hub's resident memory, every 100 ms, keeping the peak.
final class RSSSampler: Sendable {
    let process: HubProcess
    let peak = Mutex<Int>(0)
    init(process: HubProcess) { self.process = process }
    func run() async {
        while !Task.isCancelled {
            let now = process.residentBytes
            peak.withLock { $0 = max($0, now) }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// Limits that would distort a run with many connections, raised where the process may.
enum Limits {
    static func raise() -> (files: Int, ports: String) {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let ports = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
            .split(whereSeparator: \.isWhitespace).joined(separator: "-") ?? "unknown"
        return (Int(limit.rlim_cur), ports)
    }
}
