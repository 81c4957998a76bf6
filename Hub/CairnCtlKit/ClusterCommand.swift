import ArgumentParser
import CairnCommon
import Foundation

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Managed clusters (edge sites).",
        subcommands: [List.self, Get.self, Approve.self, Deny.self, Label.self, Unlabel.self, Taint.self, Untaint.self, ReleaseDeletions.self, Remove.self])

    static func table(_ clusters: [ManagedCluster]) -> [[String]] {
        [["NAME", "ENROLMENT", "JOINED", "AVAILABLE", "REVISION", "LABELS", "LAST-HEARTBEAT"]]
            + clusters.map {
                [
                    $0.name, $0.status.enrolment.rawValue, Printer.condition($0.status.conditions, ConditionType.joined),
                    Printer.condition($0.status.conditions, ConditionType.available), String($0.status.revision),
                    Printer.labels($0.metadata.labels), Printer.age($0.status.lastHeartbeatTime),
                ]
            }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List clusters.")
        @OptionGroup var connection: Connection
        @Option(name: .shortAndLong) var output: OutputFormat = .table
        func run() async throws {
            let clusters = try await connection.run { try await $0.clusters() }
            try Printer.print(ItemList(items: clusters), format: output) { ClusterCommand.table(clusters) }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one cluster.")
        @OptionGroup var connection: Connection
        @Argument var name: String
        @Option(name: .shortAndLong) var output: OutputFormat = .table
        func run() async throws {
            let cluster = try await connection.run { try await $0.cluster(name) }
            try Printer.print(cluster, format: output) { ClusterCommand.table([cluster]) }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Accept a pending cluster.")
        @OptionGroup var connection: Connection
        @Argument var name: String
        @Flag(help: "Wait until the agent has joined.") var wait = false
        @Flag(help: "Issue a new certificate to a site whose certificate expired.") var renew = false
        @Option(help: "How long to wait.") var timeout: String = "60s"
        func run() async throws {
            let cluster = try await connection.run { client in
                let approved = try await client.approve(name, renew: renew)
                guard wait else { return approved }
                return try await waitFor(
                    timeout: timeout, what: "cluster \(name) to join", poll: { try await client.cluster(name) },
                    done: { $0.status.conditions.isTrue(ConditionType.joined) }, describe: { describeConditions($0.status.conditions) })
            }
            print("cluster \(cluster.name) approved\(wait ? " and joined" : "")")
        }
    }

    struct Deny: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refuse a cluster; its agent is cut off.")
        @OptionGroup var connection: Connection
        @Argument var name: String
        func run() async throws {
            let cluster = try await connection.run { try await $0.deny(name) }
            print("cluster \(cluster.name) denied")
        }
    }

    struct ReleaseDeletions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "release-deletions",
            abstract: "Let the site's agent carry out the deletions it holds (see the cluster's DeletionHeld condition).")
        @OptionGroup var connection: Connection
        @Argument var name: String
        func run() async throws {
            let cluster = try await connection.run { try await $0.releaseDeletions(name) }
            let held = cluster.status.conditions[type: ConditionType.deletionHeld]
            print("cluster \(cluster.name): deletions released; the agent carries them out with its next bundle")
            if let held, held.status == Condition.true { print("  was holding: \(held.message)") }
        }
    }

    struct Label: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set labels, k=v.")
        @OptionGroup var connection: Connection
        @Argument var name: String
        @Argument(help: "k=v pairs.") var labels: [String]
        func run() async throws {
            var set = [String: String]()
            for label in labels {
                let (key, value) = try KeyValue.parse(label, field: "label")
                set[key] = value
            }
            let cluster = try await connection.run { try await $0.label(name, LabelPatch(set: set)) }
            print("cluster \(cluster.name) labels: \(Printer.labels(cluster.metadata.labels))")
        }
    }

    struct Unlabel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove labels by key.")
        @OptionGroup var connection: Connection
        @Argument var name: String
        @Argument(help: "Label keys.") var keys: [String]
        func run() async throws {
            let cluster = try await connection.run { try await $0.label(name, LabelPatch(remove: keys)) }
            print("cluster \(cluster.name) labels: \(Printer.labels(cluster.metadata.labels))")
        }
    }

    struct Taint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Taint a cluster: key=value:Effect (NoSelect or NoSelectIfNew).")
        @OptionGroup var connection: Connection
        @Argument var name: String
        @Argument(help: "key=value:Effect, or key:Effect.") var taint: String
        func run() async throws {
            guard let colon = taint.lastIndex(of: ":") else {
                throw CairnError(.invalid, "taint '\(taint)' must be key=value:Effect", field: "taint")
            }
            let effect = String(taint[taint.index(after: colon)...])
            let pair = taint[..<colon].split(separator: "=", maxSplits: 1).map(String.init)
            let value = CairnCommon.Taint(key: pair[0], value: pair.count > 1 ? pair[1] : nil, effect: effect)
            let cluster = try await connection.run { try await $0.taint(name, value) }
            print("cluster \(cluster.name) tainted: \((cluster.spec.taints ?? []).map { "\($0.key)=\($0.value ?? ""):\($0.effect)" }.joined(separator: ", "))")
        }
    }

    struct Untaint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a taint by key.")
        @OptionGroup var connection: Connection
        @Argument var name: String
        @Argument var key: String
        func run() async throws {
            _ = try await connection.run { try await $0.untaint(name, key: key) }
            print("cluster \(name) untainted \(key)")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a cluster and its works from the hub; its agent is cut off.")
        @OptionGroup var connection: Connection
        @Argument var name: String
        func run() async throws {
            try await connection.run { try await $0.removeCluster(name) }
            print("cluster \(name) removed")
        }
    }
}
