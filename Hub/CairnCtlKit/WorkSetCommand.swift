import ArgumentParser
import CairnCommon
import Foundation

struct WorkSetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workset", abstract: "WorkSets: one template, fanned out to a placement's clusters.",
        subcommands: [Apply.self, Get.self, List.self, Delete.self, Status.self])

    static func table(_ workSets: [WorkSet]) -> [[String]] {
        [["NAME", "PLACEMENT", "REVISION", "PHASE", "TOTAL", "AVAILABLE", "UPDATED", "DEGRADED"]]
            + workSets.map {
                let summary = $0.status?.summary ?? WorkSet.Summary()
                return [
                    $0.name, $0.spec.placementRefs.first?.name ?? "-", String($0.metadata.generation ?? 0), $0.status?.phase ?? "Pending",
                    String(summary.total), String(summary.available), String(summary.updated), String(summary.degraded),
                ]
            }
    }

    /// One line per cluster: the rollout as it stands.
    static func lines(_ workSet: WorkSet) -> [String] {
        let status = workSet.status ?? WorkSet.Status()
        return ["\(workSet.name): revision \(status.revision) \(status.phase), \(status.summary.available)/\(status.summary.total) available, \(status.summary.updated) updated"]
            + status.clusters.map { "  \($0.name): \($0.state) (revision \($0.revision.map(String.init) ?? "-"))\($0.message.map { ": \($0)" } ?? "")" }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create or update WorkSets from a file.")
        @OptionGroup var connection: Connection
        @Option(name: .shortAndLong) var file: String
        func run() async throws {
            let workSets = try readDocuments(file).enumerated().map { index, document in
                try CairnJSON.convert(document, to: WorkSet.self, what: "document \(index + 1)")
            }
            for workSet in workSets { try workSet.validate() }
            for workSet in try await connection.run({ client in try await workSets.asyncMap { try await client.applyWorkSet($0) } }) {
                print("workset \(workSet.name) applied (revision \(workSet.metadata.generation ?? 1))")
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a WorkSet with its rollout status.")
        @OptionGroup var connection: Connection
        @Argument var name: String
        @Option(name: .shortAndLong) var output: OutputFormat = .table
        func run() async throws {
            let workSet = try await connection.run { try await $0.workSet(name) }
            try Printer.print(workSet, format: output) { WorkSetCommand.table([workSet]) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List WorkSets.")
        @OptionGroup var connection: Connection
        @Option(name: .shortAndLong) var output: OutputFormat = .table
        func run() async throws {
            let workSets = try await connection.run { try await $0.workSets() }
            try Printer.print(ItemList(items: workSets), format: output) { WorkSetCommand.table(workSets) }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a WorkSet; its works leave every cluster.")
        @OptionGroup var connection: Connection
        @Argument var name: String
        func run() async throws {
            try await connection.run { try await $0.deleteWorkSet(name) }
            print("workset \(name) deleted")
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the rollout; with --watch, a line per change until it settles or the timeout.")
        @OptionGroup var connection: Connection
        @Argument var name: String
        @Flag(help: "Keep watching, printing each change.") var watch = false
        @Option(help: "How long to watch.") var timeout: String = "10m"
        func run() async throws {
            let seconds = try Durations.seconds(timeout, field: "timeout")
            try await connection.run { client in
                var last = [String]()
                let deadline = Date().addingTimeInterval(seconds)
                repeat {
                    let workSet = try await client.workSet(name)
                    let lines = WorkSetCommand.lines(workSet)
                    for line in lines where !last.contains(line) { print(line) }
                    last = lines
                    // Settled: the current revision has finished, one way or the other.
                    let settled = workSet.status.map {
                        $0.revision == workSet.metadata.generation && ["Succeeded", "Paused", "RolledBack"].contains($0.phase)
                    } ?? false
                    if !watch || settled { return }
                    try await Task.sleep(for: .milliseconds(500))
                } while Date() < deadline
            }
        }
    }
}
