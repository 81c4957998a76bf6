import ArgumentParser
import CairnCommon
import Foundation

/// Reads a file (or standard input) of YAML or JSON documents.
func readDocuments(_ file: String) throws -> [JSONValue] {
    let text: String
    if file == "-" {
        text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
    } else {
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw CairnError(.invalid, "cannot read \(file): \(error.localizedDescription)", field: "file")
        }
    }
    return try DocumentParser().parse(text, source: file)
}

struct PlacementCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "placement", abstract: "Placements: rules choosing clusters.", subcommands: [Apply.self, Get.self, List.self, Delete.self])

    static func table(_ placements: [Placement]) -> [[String]] {
        [["NAME", "WANTED", "SELECTED", "SATISFIED", "DECISIONS"]]
            + placements.map {
                [
                    $0.name, $0.spec.numberOfClusters.map(String.init) ?? "all", String($0.status?.numberOfSelectedClusters ?? 0),
                    Printer.condition($0.status?.conditions, "PlacementSatisfied"),
                    ($0.status?.decisions ?? []).map(\.clusterName).joined(separator: ",").nonEmpty ?? "-",
                ]
            }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create or update placements from a file.")
        @OptionGroup var connection: Connection
        @Option(name: .shortAndLong) var file: String
        func run() async throws {
            let placements = try readDocuments(file).enumerated().map { index, document in
                try CairnJSON.convert(document, to: Placement.self, what: "document \(index + 1)")
            }
            for placement in placements { try placement.validate() }
            for placement in try await connection.run({ client in try await placements.asyncMap { try await client.applyPlacement($0) } }) {
                print("placement \(placement.name) applied")
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a placement with its decisions.")
        @OptionGroup var connection: Connection
        @Argument var name: String
        @Option(name: .shortAndLong) var output: OutputFormat = .table
        func run() async throws {
            let placement = try await connection.run { try await $0.placement(name) }
            try Printer.print(placement, format: output) { PlacementCommand.table([placement]) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List placements.")
        @OptionGroup var connection: Connection
        @Option(name: .shortAndLong) var output: OutputFormat = .table
        func run() async throws {
            let placements = try await connection.run { try await $0.placements() }
            try Printer.print(ItemList(items: placements), format: output) { PlacementCommand.table(placements) }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a placement.")
        @OptionGroup var connection: Connection
        @Argument var name: String
        func run() async throws {
            try await connection.run { try await $0.deletePlacement(name) }
            print("placement \(name) deleted")
        }
    }
}

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "events", abstract: "What the hub decided or noticed, newest first.")
    @OptionGroup var connection: Connection
    @Option(name: .customLong("for"), help: "Only events of KIND/NAME, like Placement/web.") var object: String?
    @Option(help: "How many.") var limit: Int = 50
    @Option(name: .shortAndLong) var output: OutputFormat = .table
    func run() async throws {
        let events = try await connection.run { try await $0.events(for: object, limit: limit) }
        try Printer.print(ItemList(items: events), format: output) {
            [["TIME", "OBJECT", "REASON", "MESSAGE"]] + events.map { [RFC3339.string(from: $0.time), $0.object, $0.reason, $0.message] }
        }
    }
}

/// `cairnctl apply -f FILE`: any mix of Placements and ManifestWorks, like kubectl.
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "apply", abstract: "Apply a file of Placements, WorkSets and ManifestWorks.")
    @OptionGroup var connection: Connection
    @Option(name: .shortAndLong) var file: String
    @Option(help: "The cluster for ManifestWorks without metadata.namespace.") var cluster: String?

    func run() async throws {
        var steps = [(String, @Sendable (AdminClient) async throws -> Void)]()
        for (index, document) in try readDocuments(file).enumerated() {
            let what = "document \(index + 1)"
            switch document["kind"]?.stringValue {
            case "Placement":
                let placement = try CairnJSON.convert(document, to: Placement.self, what: what)
                try placement.validate()
                steps.append(("placement \(placement.name)", { _ = try await $0.applyPlacement(placement) }))
            case "WorkSet", "ManifestWorkReplicaSet":
                let workSet = try CairnJSON.convert(document, to: WorkSet.self, what: what)
                try workSet.validate()
                steps.append(("workset \(workSet.name)", { _ = try await $0.applyWorkSet(workSet) }))
            case "ManifestWork":
                var work = try CairnJSON.convert(document, to: ManifestWork.self, what: what)
                guard let target = work.metadata.namespace ?? cluster else {
                    throw CairnError(.invalid, "\(what): a ManifestWork needs metadata.namespace (its cluster) or --cluster", field: "metadata.namespace")
                }
                work.status = nil
                try work.validate(cluster: target)
                let ready = work
                steps.append(("work \(ready.name) on \(target)", { _ = try await $0.apply(ready, cluster: target) }))
            default:
                throw CairnError(.invalid, "\(what): kind '\(document["kind"]?.stringValue ?? "")' is not one cairnctl apply takes (Placement, WorkSet, ManifestWork)", field: "kind")
            }
        }
        try await connection.run { client in
            for (name, step) in steps {
                try await step(client)
                print("\(name) applied")
            }
        }
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}

extension Array where Element: Sendable {
    func asyncMap<T: Sendable>(_ transform: (Element) async throws -> T) async throws -> [T] {
        var results = [T]()
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
