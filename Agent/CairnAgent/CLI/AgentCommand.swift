import ArgumentParser
import CairnCommon
import Foundation
import Logging
import ServiceLifecycle
import Yams

/// `cairn-agent`: run the daemon, or look at what it holds, offline.
public struct AgentCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cairn-agent", abstract: "The Cairn agent: runs what the hub says on this site.",
        subcommands: [Run.self, StatusCommand.self, ObjectsCommand.self])
    public init() {}
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Enrol (once) and run the agent.")

    @Option(help: "A YAML configuration file; flags override it.") var config: String?
    @Option(help: "The hub's URL.") var hub: String?
    @Option(help: "The enrolment token (needed only until the site is enrolled).") var token: String?
    @Option(help: "A file holding the enrolment token (a mounted Secret), instead of --token.") var tokenFile: String?
    @Option(help: "This cluster's name (DNS-1123 label).") var name: String?
    @Option(help: "sha256:… fingerprint of the hub's CA (printed by cairnctl token create).") var caFingerprint: String?
    @Option(help: "Directory for the cache and the simulated cluster.") var stateDir: String?
    @Option(help: "simulated (the built-in cluster) or kubernetes.") var adapter: String?
    @Option(help: "For --adapter kubernetes: a kubeconfig file (default: in-cluster).") var kubeconfig: String?
    @Option(help: "The kubeconfig context (default: its current context).") var context: String?
    @Option(name: .customLong("label"), help: "A label to ask for, k=v (repeatable).") var labels: [String] = []
    @Option(help: "Seconds between full re-applies (drift correction).") var resyncInterval: Double?
    @Option(help: "Seconds without a new bundle before the agent gives back the code pages it touched to start and apply (0: never; default 10).") var releaseCodeAfter: Double?
    @Option(help: "Seconds the simulated cluster takes to make a workload ready.") var simulatedReadyDelay: Double?
    @Option(help: "platform claim of the simulated cluster.") var simulatedPlatform: String?
    @Option(help: "Log level.") var logLevel: String = "info"

    func run() async throws {
        var file = AgentFileConfiguration()
        if let config {
            let text = try String(contentsOfFile: config, encoding: .utf8)
            file = try YAMLDecoder().decode(AgentFileConfiguration.self, from: text)
        }
        guard let stateDir = stateDir ?? file.stateDir else {
            throw ValidationError("--state-dir (or stateDir in --config) is required")
        }
        var configuration = AgentConfiguration(stateDirectory: stateDir)
        configuration.hubURL = hub ?? file.hub
        configuration.token = token ?? file.token
        if configuration.token == nil, let path = tokenFile ?? file.tokenFile {
            // Read only while the site is not enrolled; a missing file afterwards is no problem.
            configuration.token = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        configuration.clusterName = name ?? file.name
        configuration.caFingerprint = caFingerprint ?? file.caFingerprint
        configuration.adapter = adapter ?? file.adapter ?? "simulated"
        configuration.kubeconfig = kubeconfig ?? file.kubeconfig
        configuration.kubeContext = context ?? file.context
        configuration.labels = file.labels ?? [:]
        for label in labels {
            let (key, value) = try KeyValue.parse(label, field: "--label")
            configuration.labels[key] = value
        }
        if let value = resyncInterval ?? file.resyncInterval { configuration.resyncInterval = value }
        let releaseCodeAfter = releaseCodeAfter ?? file.releaseCodeAfter ?? 10
        guard releaseCodeAfter >= 0, releaseCodeAfter.isFinite else {
            throw CairnError(.invalid, "releaseCodeAfter must be 0 (never) or a number of seconds, not \(releaseCodeAfter)", field: "releaseCodeAfter")
        }
        configuration.releaseCodeAfter = releaseCodeAfter
        if let value = file.requestTimeout {
            guard value > 0 else { throw CairnError(.invalid, "requestTimeout must be positive", field: "requestTimeout") }
            configuration.requestTimeout = value
        }
        if let brake = file.deletionBrake {
            guard brake.fraction > 0, brake.fraction <= 1 else {
                throw CairnError(.invalid, "deletionBrake.fraction must be above 0 and at most 1, not \(brake.fraction)", field: "deletionBrake.fraction")
            }
            guard brake.minimum >= 0 else {
                throw CairnError(.invalid, "deletionBrake.minimum must not be negative", field: "deletionBrake.minimum")
            }
            configuration.deletionBrake = brake
        }
        if let value = simulatedReadyDelay ?? file.simulated?.readyDelay { configuration.simulated.readyDelay = value }
        if let value = simulatedPlatform ?? file.simulated?.platform { configuration.simulated.platform = value }
        if let value = file.simulated?.cpu { configuration.simulated.allocatableCPU = value }
        if let value = file.simulated?.memory { configuration.simulated.allocatableMemory = value }
        var logger = Logger(label: "cairn-agent")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let daemon = try AgentDaemon(configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [daemon], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// The agent's YAML configuration file.
struct AgentFileConfiguration: Decodable {
    var hub: String?
    var token: String?
    var tokenFile: String?
    var name: String?
    var caFingerprint: String?
    var stateDir: String?
    var adapter: String?
    var kubeconfig: String?
    var context: String?
    var labels: [String: String]?
    var resyncInterval: Double?
    /// Seconds one call to the hub may take (a long-poll: its wait plus this); default 30.
    var requestTimeout: Double?
    /// Holds deletions beyond this share (and count) of the site's works or objects in one bundle.
    var deletionBrake: DeletionBrake?
    /// Seconds without a new bundle before the code pages starting and applying touched go back; 0: never.
    var releaseCodeAfter: Double?
    var simulated: Simulated?

    struct Simulated: Decodable {
        var readyDelay: Double?
        var platform: String?
        var cpu: String?
        var memory: String?
    }
}
