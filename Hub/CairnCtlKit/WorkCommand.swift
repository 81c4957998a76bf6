import ArgumentParser
import CairnCommon
import Foundation

struct WorkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "work", abstract: "ManifestWorks: what runs on one cluster.", subcommands: [Apply.self, Get.self, List.self, Delete.self])

    static func table(_ works: [ManifestWork]) -> [[String]] {
        [["CLUSTER", "NAME", "GENERATION", "MANIFESTS", "APPLIED", "AVAILABLE", "DEGRADED", "AGE"]]
            + works.map {
                [
                    $0.metadata.namespace ?? "-", $0.name, String($0.generation), String($0.spec.workload.manifests.count),
                    Printer.condition($0.status?.conditions, ConditionType.applied), Printer.condition($0.status?.conditions, ConditionType.available),
                    $0.metadata.deletionTimestamp != nil ? "deleting" : Printer.condition($0.status?.conditions, ConditionType.degraded),
                    Printer.age($0.metadata.creationTimestamp),
                ]
            }
    }

    /// True when the condition holds for the work's current generation.
    static func holds(_ work: ManifestWork, _ type: String) -> Bool {
        guard let condition = work.status?.conditions[type: type] else { return false }
        return condition.status == Condition.true && (condition.observedGeneration ?? work.generation) >= work.generation
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or update works from a file: ManifestWork documents, or plain manifests that become one work.")
        @OptionGroup var connection: Connection
        @Option(name: .shortAndLong, help: "A YAML (multi-document) or JSON file; - for standard input.") var file: String
        @Option(help: "The cluster to apply to.") var cluster: String
        @Option(help: "The work's name, for a file of plain manifests (default: the file name).") var name: String?
        @Option(help: "Wait until this condition holds (Applied or Available).") var wait: String?
        @Option(help: "How long to wait.") var timeout: String = "60s"
        @Option(name: .shortAndLong) var output: OutputFormat = .table

        func run() async throws {
            let documents = try readDocuments(file)
            let stem = ((file as NSString).lastPathComponent as NSString).deletingPathExtension.lowercased()
                .map { $0.isLetter || $0.isNumber ? $0 : "-" }
            let works = try WorkDocuments.works(from: documents, cluster: cluster, defaultName: name ?? String(stem))
            for work in works { try work.validate(cluster: cluster) }
            let applied = try await connection.run { client in
                var results = [ManifestWork]()
                for work in works { results.append(try await client.apply(work, cluster: cluster)) }
                guard let wait else { return results }
                guard [ConditionType.applied, ConditionType.available].contains(wait) else {
                    throw CairnError(.invalid, "--wait takes Applied or Available, not \(wait)", field: "wait")
                }
                var settled = [ManifestWork]()
                for work in results {
                    settled.append(
                        try await waitFor(
                            timeout: timeout, what: "work \(work.name) on \(cluster) to be \(wait)",
                            poll: { try await client.work(work.name, cluster: cluster) }, done: { WorkCommand.holds($0, wait) },
                            describe: { describeConditions($0.status?.conditions ?? []) }))
                }
                return settled
            }
            if output == .table {
                for work in applied { print("work \(work.name) applied to \(cluster) (generation \(work.generation))\(wait.map { ", \($0)" } ?? "")") }
            } else {
                try Printer.print(ItemList(items: applied), format: output) { [] }
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one work with its status.")
        @OptionGroup var connection: Connection
        @Argument var name: String
        @Option(help: "The cluster it belongs to.") var cluster: String
        @Option(name: .shortAndLong) var output: OutputFormat = .table
        func run() async throws {
            let work = try await connection.run { try await $0.work(name, cluster: cluster) }
            try Printer.print(work, format: output) { WorkCommand.table([work]) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List works.")
        @OptionGroup var connection: Connection
        @Option(help: "Only this cluster's works.") var cluster: String?
        @Option(name: .shortAndLong) var output: OutputFormat = .table
        func run() async throws {
            let works = try await connection.run { try await $0.works(cluster: cluster) }
            try Printer.print(ItemList(items: works), format: output) { WorkCommand.table(works) }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a work; its objects leave the site (unless orphaned).")
        @OptionGroup var connection: Connection
        @Argument var name: String
        @Option(help: "The cluster it belongs to.") var cluster: String
        @Flag(help: "Wait until the site has removed it.") var wait = false
        @Option(help: "How long to wait.") var timeout: String = "60s"
        func run() async throws {
            try await connection.run { client in
                _ = try await client.deleteWork(name, cluster: cluster)
                guard wait else { return }
                let seconds = try Durations.seconds(timeout, field: "timeout")
                let deadline = Date().addingTimeInterval(seconds)
                while true {
                    do { _ = try await client.work(name, cluster: cluster) } catch let error as CairnError where error.code == .notFound { return }
                    guard Date() < deadline else {
                        throw CairnError(.unavailable, "timed out after \(timeout) waiting for the site to remove work \(name)")
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            print("work \(name) deleted from \(cluster)\(wait ? " (gone from the site)" : "")")
        }
    }
}
