import CairnCommon
import Foundation
import Yams

/// The hub's YAML configuration file (packaging/examples/hub.yaml).
public struct HubFileConfiguration: Decodable, Sendable {
    public var stateDir: String?
    public var listen: String?
    public var heartbeatInterval: Double?
    public var leaseTimeout: Double?
    public var heartbeatsPerSecond: Double?
    public var subjectAlternativeNames: [String]?
    public var certificateLifetime: String?
    public var maxLongPolls: Int?
    public var maxConcurrentRequests: Int?
    public var maxConcurrentReports: Int?

    public init() {}

    public static func load(_ path: String) throws -> HubFileConfiguration {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CairnError(.invalid, "cannot read \(path): \(error.localizedDescription)", field: "config")
        }
        do { return try YAMLDecoder().decode(HubFileConfiguration.self, from: text) } catch {
            throw CairnError(.invalid, "\(path) is not a valid hub configuration: \(error)", field: "config")
        }
    }
}
