import ArgumentParser
import CairnCommon
import Foundation

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Enrolment tokens.", subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token for new sites.")
        @OptionGroup var connection: Connection
        @Flag(help: "Accept sites that enrol with it at once.") var autoApprove = false
        @Option(name: .customLong("label"), help: "A label to stamp on clusters that enrol with it, k=v (repeatable).") var labels: [String] = []
        @Option(help: "Lifetime, like 30m, 24h, 7d.") var ttl: String = "24h"
        @Option(help: "How many sites may enrol with it (default: unlimited).") var uses: Int?
        @Option(name: .shortAndLong) var output: OutputFormat = .table

        func run() async throws {
            var stamped = [String: String]()
            for label in labels {
                let (key, value) = try KeyValue.parse(label, field: "--label")
                stamped[key] = value
            }
            let request = TokenRequest(autoApprove: autoApprove, labels: stamped, ttlSeconds: try Durations.seconds(ttl, field: "ttl"), maxUses: uses)
            let token = try await connection.run { try await $0.createToken(request) }
            let hub = try connection.resolved().hub
            try Printer.print(token, format: output) {
                [
                    ["TOKEN", "ID", "AUTO-APPROVE", "LABELS", "USES", "EXPIRES"],
                    [token.token ?? "", token.id, String(token.autoApprove), Printer.labels(token.labels), token.maxUses.map(String.init) ?? "unlimited", RFC3339.string(from: token.expiresAt)],
                ]
            }
            if output == .table {
                print("\nstart a new site with:\n  cairn-agent run --hub \(hub) --token \(token.token ?? "") --ca-fingerprint \(token.caFingerprint ?? "") --name NAME --state-dir /var/lib/cairn-agent")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (secrets are never shown again).")
        @OptionGroup var connection: Connection
        @Option(name: .shortAndLong) var output: OutputFormat = .table

        func run() async throws {
            let tokens = try await connection.run { try await $0.tokens() }
            try Printer.print(ItemList(items: tokens), format: output) {
                [["ID", "AUTO-APPROVE", "LABELS", "USES", "EXPIRES", "REVOKED"]]
                    + tokens.map {
                        [$0.id, String($0.autoApprove), Printer.labels($0.labels), "\($0.uses)/\($0.maxUses.map(String.init) ?? "∞")", RFC3339.string(from: $0.expiresAt), String($0.revoked)]
                    }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token.")
        @OptionGroup var connection: Connection
        @Argument var id: String

        func run() async throws {
            let token = try await connection.run { try await $0.revokeToken(id) }
            print("token \(token.id) revoked")
        }
    }
}
