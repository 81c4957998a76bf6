import ArgumentParser
import CairnCommon
import Foundation

/// `cairn-agent status`: what this site holds, read from the cache alone (works offline).
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the agent's state, from its cache.")
    @Option(help: "The agent's state directory.") var stateDir: String
    @Option(name: .shortAndLong, help: "table or json.") var output: String = "table"

    func run() async throws {
        let report = try AgentReport.read(stateDirectory: stateDir)
        if output == "json" {
            print(try CairnJSON.string(report, pretty: true))
            return
        }
        print("hub:          \(report.hub ?? "-")")
        print("cluster:      \(report.cluster ?? "-")")
        print("enrolment:    \(report.enrolment ?? "not enrolled")")
        print("last contact: \(report.lastContact.map(RFC3339.string(from:)) ?? "never")")
        print("revision:     \(report.revision.map(String.init) ?? "none")")
        print("outbox:       \(report.outbox) unsent, \(report.journal) transitions journaled")
        print("deletions:    \(report.deletionHold.map { "HELD — \($0.message)" } ?? "none held")")
        print("")
        print("WORK".padding(toLength: 28, withPad: " ", startingAt: 0) + "GEN   APPLIED  AVAILABLE  DEGRADED")
        for work in report.works {
            print(
                work.name.padding(toLength: 28, withPad: " ", startingAt: 0)
                    + String(work.generation).padding(toLength: 6, withPad: " ", startingAt: 0)
                    + (work.conditions["Applied"] ?? "-").padding(toLength: 9, withPad: " ", startingAt: 0)
                    + (work.conditions["Available"] ?? "-").padding(toLength: 11, withPad: " ", startingAt: 0)
                    + (work.deleting ? "deleting" : (work.conditions["Degraded"] ?? "-")))
        }
    }
}

/// What `cairn-agent status` shows.
public struct AgentReport: Codable, Sendable {
    public struct Work: Codable, Sendable {
        public var name: String
        public var generation: Int64
        public var deleting: Bool
        public var conditions: [String: String]
    }
    public var hub: String?
    public var cluster: String?
    public var enrolment: String?
    public var lastContact: Date?
    public var revision: Int64?
    public var outbox: Int
    public var journal: Int
    public var deletionHold: DeletionHold?
    public var works: [Work]

    public static func read(stateDirectory: String) throws -> AgentReport {
        let path = AgentConfiguration(stateDirectory: stateDirectory).cachePath
        guard FileManager.default.fileExists(atPath: path) else {
            throw CairnError(.notFound, "no agent cache at \(path)", field: "state-dir")
        }
        let cache = try AgentCache(path: path)
        let identity = try cache.identity()
        let statuses = try cache.latestStatuses()
        let works = try cache.works().map { cached in
            Work(
                name: cached.work.name, generation: cached.work.generation, deleting: cached.deleting,
                conditions: Dictionary(
                    (statuses[cached.work.name]?.status?.conditions ?? []).map { ($0.type, $0.status) }, uniquingKeysWith: { a, _ in a }))
        }
        return AgentReport(
            hub: identity?.hubURL, cluster: identity?.clusterName, enrolment: identity?.enrolment.rawValue,
            lastContact: try cache.lastContact(), revision: try cache.revision(), outbox: try cache.outboxLength(), journal: try cache.journalLength(), deletionHold: try cache.deletionHold(), works: works)
    }
}

/// `cairn-agent objects`: the objects on this site — all of the simulated cluster's, or, for a Kubernetes
/// site, the ones the agent manages (its inventory), each read live from the API server.
struct ObjectsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "objects", abstract: "List the objects on this site.")
    @Option(help: "The agent's state directory.") var stateDir: String
    @Option(help: "simulated or kubernetes, as the agent runs.") var adapter: String = "simulated"
    @Option(help: "For --adapter kubernetes: a kubeconfig file (default: in-cluster).") var kubeconfig: String?
    @Option(help: "The kubeconfig context (default: its current context).") var context: String?
    @Option(name: .shortAndLong, help: "table or json.") var output: String = "table"

    func run() async throws {
        let configuration = AgentConfiguration(stateDirectory: stateDir)
        var objects = [JSONValue]()
        switch adapter {
        case "simulated":
            guard FileManager.default.fileExists(atPath: configuration.simulatedClusterPath) else {
                throw CairnError(.notFound, "no simulated cluster at \(configuration.simulatedClusterPath)", field: "state-dir")
            }
            objects = try await SimulatedCluster(path: configuration.simulatedClusterPath).objects()
        case "kubernetes":
            guard FileManager.default.fileExists(atPath: configuration.cachePath) else {
                throw CairnError(.notFound, "no agent cache at \(configuration.cachePath)", field: "state-dir")
            }
            let keys = Set(try AgentCache(path: configuration.cachePath).inventory().values.flatMap(\.keys)).sorted()
            let connection = try kubeconfig.map { try KubeConnection.kubeconfig(path: $0, context: context) } ?? KubeConnection.inCluster()
            let site = KubernetesAdapter(connection: connection)
            do {
                for key in keys {
                    // An object the agent manages that is gone is listed too: it is what a resync will restore.
                    objects.append(
                        try await site.get(key)
                            ?? ["apiVersion": .string(key.apiVersion), "kind": .string(key.kind), "metadata": ["name": .string(key.name), "namespace": key.namespace.map(JSONValue.string) ?? .null], "missing": true])
                }
            } catch {
                await site.shutdown()
                throw error
            }
            await site.shutdown()
        default:
            throw CairnError(.invalid, "adapter '\(adapter)' is not known; use 'simulated' or 'kubernetes'", field: "adapter")
        }
        if output == "json" {
            print(try CairnJSON.string(ItemList(items: objects), pretty: true))
            return
        }
        print("KIND".padding(toLength: 24, withPad: " ", startingAt: 0) + "NAMESPACE".padding(toLength: 20, withPad: " ", startingAt: 0) + "NAME".padding(toLength: 32, withPad: " ", startingAt: 0) + "AVAILABLE")
        for object in objects {
            let verdict = Availability.evaluate(object)
            let available = object["missing"] == true ? "missing" : "\(verdict.status) (\(verdict.message))"
            print(
                (object["kind"]?.stringValue ?? "").padding(toLength: 24, withPad: " ", startingAt: 0)
                    + (object["metadata"]?["namespace"]?.stringValue ?? "").padding(toLength: 20, withPad: " ", startingAt: 0)
                    + (object["metadata"]?["name"]?.stringValue ?? "").padding(toLength: 32, withPad: " ", startingAt: 0)
                    + available)
        }
    }
}
