import ArgumentParser
import CairnHub
import Foundation
import Logging

@main
struct CairnHubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn-hub", abstract: "The Cairn hub: holds what should run where.", subcommands: [Serve.self])
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the hub.")

    @Option(help: "A YAML configuration file; flags override it.") var config: String?
    @Option(help: "Directory for the database and the admin token.") var stateDir: String?
    @Option(help: "Address to listen on, HOST:PORT (default 127.0.0.1:8443).") var listen: String?
    @Option(help: "Seconds between agent heartbeats (default 10).") var heartbeatInterval: Double?
    @Option(help: "Seconds of silence before a cluster is marked Unknown (default 40).") var leaseTimeout: Double?
    @Option(help: "Log level (trace, debug, info, notice, warning, error).") var logLevel: String = "info"

    func run() async throws {
        let file = try config.map(HubFileConfiguration.load) ?? HubFileConfiguration()
        guard let stateDir = stateDir ?? file.stateDir else { throw ValidationError("--state-dir (or stateDir in --config) is required") }
        var configuration = HubConfiguration(stateDirectory: stateDir)
        (configuration.host, configuration.port) = try HubCommandLine.hostPort(listen ?? file.listen ?? "127.0.0.1:8443")
        configuration.heartbeatInterval = heartbeatInterval ?? file.heartbeatInterval ?? 10
        configuration.leaseTimeout = leaseTimeout ?? file.leaseTimeout ?? 40
        configuration.leaseCheckInterval = min(5, max(0.2, configuration.leaseTimeout / 8))
        var logger = Logger(label: "cairn-hub")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let hub = try await HubServer(configuration: configuration, logger: logger)
        let (host, tokenPath) = (configuration.host, configuration.adminTokenPath)
        let app = hub.application { port in
            print("cairn-hub listening on http://\(host):\(port)")
            print("admin token: \(tokenPath)")
            fflush(nil)
        }
        try await app.runService()
    }
}
