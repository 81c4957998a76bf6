import ArgumentParser
import CairnCommon
import Foundation

/// The whole benchmark in one run: a hub, N simulated sites, every figure of issue 7 next to its floor.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start a hub and N simulated sites; measure enrolment, change → Applied latency, a 100-work burst, fan-out, write and status throughput, hub and agent memory, bundle sizes and the machine's floors.",
        discussion: """
            The hub is the cairn-hub beside this program (build it with -c release for figures worth quoting); it runs
            as a child process on SQLite in a temporary folder. The sites run inside this process, each real on the
            wire (own key and certificate, mTLS long-polls, signed bundles, status reports). One real cairn-agent
            is started to measure its memory idle with 50 works. Every work comes from the corpus (--corpus).
            Exit status 1 when a change was never applied or a status never received.
            """)

    @Option(help: "Simulated sites.") var clusters: Int = 100
    @Option(help: "Works (Online Boutique services) created on every site before the idle measurement; they measure write throughput.") var worksPerCluster: Int = 2
    @Option(help: "Seconds of single-site creates, updates and deletes for the latency figures.") var duration: Double = 30
    @Option(help: "Single-site changes started per second during those seconds.") var rate: Double = 20
    @Option(help: "Write the results here as JSON.") var out: String?
    @Option(help: "The cairn-hub binary (default: beside this one).") var hub: String?
    @Option(help: "The cairn-agent binary for the agent's memory (default: beside this one).") var agent: String?
    @Option(help: "The corpus folder (default: ../shared/corpus).") var corpus: String?
    @Option(help: "Administrator requests in flight at once while writes and statuses are measured.") var concurrency: Int = 32
    @Option(help: "Seconds to wait for any one change before counting it as never applied.") var timeout: Double = 120

    func validate() throws {
        guard clusters >= 1, clusters <= 50_000 else { throw ValidationError("--clusters must be between 1 and 50000") }
        guard worksPerCluster >= 0, worksPerCluster <= 100 else { throw ValidationError("--works-per-cluster must be between 0 and 100") }
        guard duration >= 0, duration <= 3600 else { throw ValidationError("--duration must be between 0 and 3600 seconds") }
        guard rate > 0, rate <= 1_000 else { throw ValidationError("--rate must be above 0 and at most 1000 per second") }
        guard concurrency >= 1, concurrency <= 256 else { throw ValidationError("--concurrency must be between 1 and 256") }
        guard timeout >= 1 else { throw ValidationError("--timeout must be at least 1 second") }
    }

    func run() async throws {
        let limits = Limits.raise()
        let corpus = try Corpus(path: try Corpus.locate(self.corpus))
        let agentBinary = agent ?? BenchSession.sibling("cairn-agent")
        guard FileManager.default.isExecutableFile(atPath: agentBinary) else { throw BenchError("no cairn-agent at \(agentBinary): give --agent") }
        let session = try await BenchSession.start(binary: hub, clusters: clusters + 1)
        let bench = BenchRun(options: self, session: session, corpus: corpus, agentBinary: agentBinary)
        bench.note(String(format: "open files %d%@, ephemeral ports %@ (%d sites hold about %d connections: one each, HTTP/2)",
            limits.files, limits.files < clusters + 256 ? " — too few for this run" : "", limits.ports, clusters, clusters))
        if session.binary.contains("/debug/") { bench.note("the hub is a debug build: build with `swift build -c release` for figures worth quoting") }
        do {
            try await bench.run()
            if !(await session.finish()) { bench.fail("the hub did not stop within 30 s of SIGTERM (killed)") }
        } catch {
            await session.finish(kill: true)
            throw error
        }
        bench.printTable()
        if let out { try CairnJSON.encode(bench.json, pretty: true).write(to: URL(fileURLWithPath: out)) }
        if bench.errors > 0 {
            print("errors: \(bench.errors) — " + bench.errorNotes.prefix(10).joined(separator: "; "))
            throw ExitCode(1)
        }
        print("errors: 0 — every change applied and every status received")
    }
}
