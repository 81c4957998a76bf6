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
    var runners: Task<Void, Never>?

    /// The JSON results, filled phase by phase.
    var results: [String: JSONValue] = [:]
    /// The printed table: figure, value, and its floor and ratio where one applies.
    private(set) var rows: [(name: String, value: String, floor: String)] = []
    private(set) var notes: [String] = []
    private let failures = Mutex<[String]>([])
    var errors: Int { failures.withLock { $0.count } }
    var errorNotes: [String] { failures.withLock { $0 } }

    var floorHTTP = Duration.zero
    var floorCommit = Duration.zero
    var floorRequests = Floor.RequestFloor(perSecond: 0, hubMs: 0, clientMs: 0)
    var baseline = ProcessStats(resident: 0, anonymous: 0, cpuSeconds: 0)

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

    /// Runs one phase, saying on standard error when it starts and ends (with the wall-clock time): what a profiler
    /// attached to the hub or the bench needs to know which window to record.
    private func phase(_ name: String, _ body: () async throws -> Void) async throws {
        let stderr = FileHandle.standardError
        stderr.write(Data("phase \(name): started at \(Date().timeIntervalSince1970)\n".utf8))
        try await body()
        stderr.write(Data("phase \(name): ended at \(Date().timeIntervalSince1970)\n".utf8))
    }

    func run() async throws {
        defer { runners?.cancel() }
        try await floors()
        try bundleSizes()
        try await phase("enrolment") { try await enrol() }
        try await phase("writes") { try await initialWorks() }
        try await phase("idle") { try await idle() }
        try await phase("latency") { try await latency() }
        try await phase("burst") { try await burst() }
        try await phase("status") { try await statusIngest() }
        try await phase("fan-out") { try await fanOut() }
        try await phase("agent") { try await realAgent() }
        try await phase("check") { try await verifyAtHub() }
        results["errors"] = .int(Int64(errors))
    }

    private func floors() async throws {
        try await Task.sleep(for: .seconds(1))
        baseline = session.hub.stats
        floorHTTP = try await Floor.httpRoundTrip(http: session.adminHTTP, url: session.url, tls: session.adminTLS)
        let hub = session.hub
        floorRequests = try await Floor.requests(http: session.adminHTTP, url: session.url, tls: session.adminTLS, hub: { hub.stats }, concurrency: options.concurrency)
        floorCommit = try Floor.sqliteCommit(directory: session.state)
        results["floor"] = [
            "http_rtt_ms": .double(floorHTTP.milliseconds), "sqlite_commit_ms": .double(floorCommit.milliseconds),
            "requests_per_second": .double(floorRequests.perSecond),
            "request_cpu_ms": ["hub": .double(floorRequests.hubMs), "client": .double(floorRequests.clientMs)],
        ]
        row("floor: HTTP round trip (loopback, TLS)", String(format: "%.2f ms", floorHTTP.milliseconds))
        row(
            "floor: requests, \(options.concurrency) at once (loopback, TLS)",
            String(format: "%.0f/s; CPU each: hub %.3f ms, client %.3f ms", floorRequests.perSecond, floorRequests.hubMs, floorRequests.clientMs))
        row("floor: SQLite commit (WAL, synchronous=FULL)", String(format: "%.2f ms", floorCommit.milliseconds))
        results["hub_rss_bytes_start"] = .int(Int64(baseline.resident))
        print(String(format: "hub at %@ (%@), %.1f MiB at start", session.url, session.binary, Double(baseline.resident) / 1_048_576))
    }

    /// A throughput beside trivial requests' at the same concurrency, `requests` of them to each unit counted: a
    /// work write to a connected site is four (the write, the site's poll answered, its status report, its next
    /// poll); a status report is one.
    func requestFloor(_ perSecond: Double, requests: Int) -> String {
        let floor = floorRequests.perSecond / Double(requests)
        return String(format: "trivial requests %.0f/s, %d each: %.0f/s; ×%.2f", floorRequests.perSecond, requests, floor, floor > 0 ? perSecond / floor : 0)
    }

    /// A change's floor: two acknowledged writes (the work, then the site's status) with nothing in between.
    var changeFloorMs: Double { 2 * (floorHTTP.milliseconds + floorCommit.milliseconds) }

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
}

extension Duration {
    var milliseconds: Double { inSeconds * 1000 }
}
