import ArgumentParser
import CairnCommon
import CairnHub
import Foundation
import Logging

@main
struct CairnHubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cairn-hub", abstract: "The Cairn hub: holds what should run where.", subcommands: [Serve.self, AdminTokenCommand.self, CACommand.self, Backup.self, Restore.self])
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the hub.")

    @Option(help: "A YAML configuration file; flags override it.") var config: String?
    @Option(help: "Directory for the database and the admin token.") var stateDir: String?
    @Option(help: "Address to listen on, HOST:PORT (default 127.0.0.1:8443).") var listen: String?
    @Option(help: "Seconds between agent heartbeats (default 10).") var heartbeatInterval: Double?
    @Option(help: "Seconds of silence before a cluster is marked Unknown (default 40; at least twice the heartbeat interval).") var leaseTimeout: Double?
    @Option(help: "Most heartbeats a second to ask for; with more clusters the interval and lease stretch together (default 250).")
    var heartbeatsPerSecond: Double?
    @Option(name: .customLong("san"), help: "Another DNS name or IP address for the serving certificate (repeatable).") var sans: [String] = []
    @Option(help: "Lifetime of cluster client certificates, like 30d or 12h (default 30d).") var certificateLifetime: String?
    @Option(help: "Bundle long-polls held at once, one per connected agent (default 20000); beyond it 503 + Retry-After.") var maxLongPolls: Int?
    @Option(help: "Other requests in flight at once (default 512); beyond it 503 + Retry-After.") var maxConcurrentRequests: Int?
    @Option(help: "Sites' status reports and heartbeats in flight at once, apart from other requests (default 4096); beyond it 503 + Retry-After.")
    var maxConcurrentReports: Int?
    @Option(help: "Enrolments a source address may make at once (default 20).") var enrolmentBurst: Double?
    @Option(help: "Enrolments per second a source address may make after its burst (default 2).") var enrolmentRate: Double?
    @Option(help: "Log level (trace, debug, info, notice, warning, error).") var logLevel: String = "info"

    func run() async throws {
        let tasksOnEventLoops = EventLoopTasks.install()
        let file = try config.map(HubFileConfiguration.load) ?? HubFileConfiguration()
        guard let stateDir = stateDir ?? file.stateDir else { throw ValidationError("--state-dir (or stateDir in --config) is required") }
        var configuration = HubConfiguration(stateDirectory: stateDir)
        (configuration.host, configuration.port) = try HubCommandLine.hostPort(listen ?? file.listen ?? "127.0.0.1:8443")
        configuration.heartbeatInterval = heartbeatInterval ?? file.heartbeatInterval ?? 10
        configuration.leaseTimeout = leaseTimeout ?? file.leaseTimeout ?? 40
        guard configuration.heartbeatInterval > 0, configuration.heartbeatInterval.isFinite else {
            throw CairnError(.invalid, "--heartbeat-interval must be a positive number of seconds", field: "heartbeat-interval")
        }
        // Agents beat every interval give or take a tenth (`HeartbeatResponse.wait`), and a beat can be late.
        guard configuration.leaseTimeout >= 2 * configuration.heartbeatInterval, configuration.leaseTimeout.isFinite else {
            throw CairnError(.invalid, "--lease-timeout must be at least twice the heartbeat interval", field: "lease-timeout")
        }
        configuration.leaseCheckInterval = min(5, max(0.2, configuration.leaseTimeout / 8))
        if let value = heartbeatsPerSecond ?? file.heartbeatsPerSecond {
            guard value > 0, value.isFinite else { throw CairnError(.invalid, "--heartbeats-per-second must be positive", field: "heartbeats-per-second") }
            configuration.heartbeatsPerSecond = value
        }
        configuration.subjectAlternativeNames = sans + (file.subjectAlternativeNames ?? [])
        if let value = maxLongPolls ?? file.maxLongPolls {
            guard value > 0 else { throw CairnError(.invalid, "--max-long-polls must be positive", field: "max-long-polls") }
            configuration.maxLongPolls = value
        }
        if let value = maxConcurrentRequests ?? file.maxConcurrentRequests {
            guard value > 0 else { throw CairnError(.invalid, "--max-concurrent-requests must be positive", field: "max-concurrent-requests") }
            configuration.maxConcurrentRequests = value
        }
        if let value = maxConcurrentReports ?? file.maxConcurrentReports {
            guard value > 0 else { throw CairnError(.invalid, "--max-concurrent-reports must be positive", field: "max-concurrent-reports") }
            configuration.maxConcurrentReports = value
        }
        if let value = enrolmentBurst {
            guard value >= 1 else { throw CairnError(.invalid, "--enrolment-burst must be at least 1", field: "enrolment-burst") }
            configuration.enrolmentBurst = value
        }
        if let value = enrolmentRate {
            guard value > 0 else { throw CairnError(.invalid, "--enrolment-rate must be positive", field: "enrolment-rate") }
            configuration.enrolmentPerSecond = value
        }
        if let lifetime = certificateLifetime ?? file.certificateLifetime {
            configuration.certificateLifetime = try Durations.seconds(lifetime, field: "certificate-lifetime")
        }
        var logger = Logger(label: "cairn-hub")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        if !tasksOnEventLoops {
            // A hub linked with --static-swift-stdlib hides the runtime's hook NIO needs: every request then crosses
            // from an event loop to the task pool and back (an idle 10,000-site hub measured 81% of a core, not 45%).
            logger.warning("Swift tasks run on their own thread pool, not NIO's event loops: build the hub without --static-swift-stdlib for the measured figures")
        }
        let hub = try await HubServer(configuration: configuration, logger: logger)
        let (host, tokenPath, caPath, fingerprint) = (configuration.host, configuration.adminTokenPath, configuration.caPath, hub.pki.fingerprint)
        let app = try hub.application { port in
            print("cairn-hub listening on https://\(host):\(port)")
            print("CA fingerprint: \(fingerprint)")
            print("CA certificate: \(caPath)")
            print("admin token: \(tokenPath)")
            print("make an enrolment token: cairnctl token create --auto-approve --label region=eu")
            fflush(nil)
        }
        try await app.runService()
    }
}

struct AdminTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin-token", abstract: "Administrator bearer tokens, made on the hub machine.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an admin or viewer token; it is printed once.")
        @Option(help: "The hub's state directory.") var stateDir: String
        @Option(help: "admin (may change anything) or viewer (read-only).") var role: String = "viewer"

        func run() async throws {
            guard let role = AdminRole(rawValue: role) else { throw ValidationError("--role must be admin or viewer") }
            let token = try await HubServer.createAdminToken(stateDirectory: stateDir, role: role)
            print(token)
        }
    }
}

struct CACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Rotate the hub's CA: stage a successor, activate it, retire the old one (each applies at the next restart).")
    @Argument(help: "stage, activate or retire.") var step: String
    @Option(help: "The hub's state directory.") var stateDir: String

    func run() async throws {
        guard let step = CARotation.Step(rawValue: step) else { throw ValidationError("the step must be stage, activate or retire") }
        print(try CARotation.run(step, pkiDirectory: HubConfiguration(stateDirectory: stateDir).pkiDirectory))
    }
}

struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Back up the hub — database, PKI and admin token — into one file; safe while the hub serves.")
    @Option(help: "The hub's state directory.") var stateDir: String
    @Option(help: "The backup file to write.") var to: String

    func run() async throws {
        let summary = try HubBackup.backup(stateDirectory: stateDir, to: to)
        print("backed up \(summary) to \(to)")
    }
}

struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a backup into a state directory no hub is serving (what was there is moved aside).",
        discussion: """
            Agents holding a newer revision than the backup notice that the hub went back in time: they take its
            full state, but hold every deletion it brings (condition DeletionHeld) until an administrator runs
            cairnctl cluster release-deletions.
            """)
    @Option(help: "The hub's state directory.") var stateDir: String
    @Option(help: "The backup file to restore.") var from: String

    func run() async throws {
        let summary = try HubBackup.restore(stateDirectory: stateDir, from: from)
        print("restored \(summary) into \(stateDir)")
    }
}
