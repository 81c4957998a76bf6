import ArgumentParser
import CairnCommon
import Foundation
import Yams

/// `cairnctl`: the administrator's command line.
public struct CtlCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cairnctl", abstract: "Administer a Cairn hub.",
        subcommands: [
            ApplyCommand.self, TokenCommand.self, ClusterCommand.self, WorkCommand.self, PlacementCommand.self, WorkSetCommand.self, EventsCommand.self,
            AuditCommand.self,
        ])
    public init() {}
}

/// Where the hub is and how to authenticate: flags, else CAIRN_HUB / CAIRN_TOKEN, else the config file.
struct Connection: ParsableArguments {
    @Option(help: "The hub's URL (or CAIRN_HUB).") var hub: String?
    @Option(help: "An admin bearer token (or CAIRN_TOKEN).") var token: String?
    @Option(help: "The hub's CA certificate (or CAIRN_CA_FILE).") var caFile: String?
    @Option(help: "The SHA-256 fingerprint of the hub's CA (or CAIRN_CA_FINGERPRINT).") var caFingerprint: String?

    struct FileConfiguration: Decodable {
        var hub: String?
        var token: String?
        var caFile: String?
        var caFingerprint: String?
    }

    static var configPath: String {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_CONFIG_HOME"] ?? ((environment["HOME"] ?? ".") + "/.config")
        return base + "/cairn/config.yaml"
    }

    func resolved() throws -> (hub: String, token: String, trust: AdminClient.Trust?) {
        let environment = ProcessInfo.processInfo.environment
        var file = FileConfiguration()
        if let text = try? String(contentsOfFile: Self.configPath, encoding: .utf8) {
            file = try YAMLDecoder().decode(FileConfiguration.self, from: text)
        }
        guard let hub = hub ?? environment["CAIRN_HUB"] ?? file.hub else {
            throw CairnError(.invalid, "no hub given: use --hub, CAIRN_HUB or hub: in \(Self.configPath)", field: "hub")
        }
        guard let token = token ?? environment["CAIRN_TOKEN"] ?? file.token else {
            throw CairnError(.invalid, "no admin token given: use --token, CAIRN_TOKEN or token: in \(Self.configPath)", field: "token")
        }
        var trust: AdminClient.Trust?
        if let path = caFile ?? environment["CAIRN_CA_FILE"] ?? file.caFile {
            trust = .caFile(path)
        } else if let fingerprint = caFingerprint ?? environment["CAIRN_CA_FINGERPRINT"] ?? file.caFingerprint {
            trust = .fingerprint(fingerprint)
        }
        return (hub, token, trust)
    }

    func run<T: Sendable>(_ body: (AdminClient) async throws -> T) async throws -> T {
        let (hub, token, trust) = try resolved()
        return try await AdminClient.with(hub: hub, token: token, trust: trust, body)
    }
}

/// Polls until `done` says yes or the timeout passes; the failure names the last state seen.
func waitFor<T: Sendable>(
    timeout: String, what: String, poll: () async throws -> T, done: (T) -> Bool, describe: (T) -> String
) async throws -> T {
    let seconds = try Durations.seconds(timeout, field: "timeout")
    let deadline = Date().addingTimeInterval(seconds)
    var last = try await poll()
    while !done(last) {
        guard Date() < deadline else {
            throw CairnError(.unavailable, "timed out after \(timeout) waiting for \(what); last status: \(describe(last))")
        }
        try await Task.sleep(for: .milliseconds(100))
        last = try await poll()
    }
    return last
}

func describeConditions(_ conditions: [Condition]) -> String {
    conditions.isEmpty ? "no conditions yet" : conditions.map { "\($0.type)=\($0.status) (\($0.reason)\($0.message.isEmpty ? "" : ": \($0.message)"))" }.joined(separator: "; ")
}

/// `cairnctl audit`: who changed what, newest first.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Show the audit log of administrator writes.")
    @OptionGroup var connection: Connection
    @Option(help: "How many entries.") var limit: Int = 50
    @Option(name: .shortAndLong) var output: OutputFormat = .table

    func run() async throws {
        let entries = try await connection.run { try await $0.audit(limit: limit) }
        try Printer.print(ItemList(items: entries), format: output) {
            [["TIME", "ACTOR", "ACTION", "STATUS", "RESULT"]]
                + entries.map { [RFC3339.string(from: $0.time), $0.actor, $0.action, String($0.status), $0.result] }
        }
    }
}
