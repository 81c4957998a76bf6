import CairnCommon
import Foundation

/// Who this agent is to its hub, and the credential it proves it with. All agent credential handling lives
/// here and in `HubClient`'s authorization header; the trust model swaps the secret for a client certificate.
public struct AgentIdentity: Codable, Sendable, Equatable {
    public var hubURL: String
    public var clusterName: String
    /// Made on the site at first start; the hub stores only its hash.
    public var secret: String
    public var enrolment: EnrolmentState
    public var labels: [String: String]

    public init(hubURL: String, clusterName: String, labels: [String: String]) {
        self.hubURL = hubURL
        self.clusterName = clusterName
        self.secret = Secrets.random()
        self.enrolment = .pending
        self.labels = labels
    }

    public var credentialHash: String { Secrets.hash(secret) }
    public var authorization: String { "Bearer \(clusterName):\(secret)" }
}
