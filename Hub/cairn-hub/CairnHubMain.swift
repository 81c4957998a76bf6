import ArgumentParser
import CairnHub
import Logging

@main
struct CairnHubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn-hub", abstract: "The Cairn hub: holds what should run where.", subcommands: [Serve.self])
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the hub.")

    @Option(help: "Directory for the database and the admin token.") var stateDir: String
    @Option(help: "Address to listen on, HOST:PORT.") var listen: String = "127.0.0.1:8443"
    @Option(help: "Seconds between agent heartbeats.") var heartbeatInterval: Double = 10
    @Option(help: "Seconds of silence before a cluster is marked Unknown.") var leaseTimeout: Double = 40
    @Option(help: "Log level (trace, debug, info, notice, warning, error).") var logLevel: String = "info"

    func run() async throws {
        var configuration = HubConfiguration(stateDirectory: stateDir)
        (configuration.host, configuration.port) = try HubCommandLine.hostPort(listen)
        configuration.heartbeatInterval = heartbeatInterval
        configuration.leaseTimeout = leaseTimeout
        configuration.leaseCheckInterval = min(5, max(0.2, leaseTimeout / 8))
        var logger = Logger(label: "cairn-hub")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let hub = try await HubServer(configuration: configuration, logger: logger)
        let (host, tokenPath) = (configuration.host, configuration.adminTokenPath)
        let app = hub.application { port in
            print("cairn-hub listening on http://\(host):\(port)")
            print("admin token: \(tokenPath)")
        }
        try await app.runService()
    }
}
