import CairnCommon
import Foundation

/// Rotating the hub's CA without losing a site, in three steps, each taking effect when the hub restarts:
/// `stage` makes a successor that the hub trusts and hands to agents (they pick it up at renewal); `activate`
/// makes it sign the serving certificate and new client certificates while the old CA's certificates still
/// work; `retire` drops the old CA once every site has renewed.
public enum CARotation {
    public enum Step: String, CaseIterable, Sendable {
        case stage, activate, retire
    }

    public static func run(_ step: Step, pkiDirectory: String, now: Date = Date()) throws -> String {
        func path(_ name: String) -> String { (pkiDirectory as NSString).appendingPathComponent(name) }
        func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }
        func read(_ name: String) throws -> String { try String(contentsOfFile: path(name), encoding: .utf8) }
        func move(_ from: String, _ to: String) throws {
            _ = try? FileManager.default.removeItem(atPath: path(to))
            try FileManager.default.moveItem(atPath: path(from), toPath: path(to))
        }
        guard exists("ca.key"), exists("ca.pem") else {
            throw CairnError(.notFound, "no CA in \(pkiDirectory): start the hub once first", field: "state-dir")
        }
        switch step {
        case .stage:
            guard !exists("ca-next.pem") else { throw CairnError(.conflict, "a successor CA is already staged; activate it first") }
            guard !exists("ca-previous.pem") else { throw CairnError(.conflict, "the previous CA is not retired yet; retire it first") }
            let (key, certificate) = try HubPKI.makeCA(name: "Cairn hub CA \(RFC3339.string(from: now))", now: now)
            try HubPKI.write(key.pemRepresentation, to: path("ca-next.key"), mode: 0o600)
            try HubPKI.write(try TrustMaterial.pem([certificate]), to: path("ca-next.pem"), mode: 0o644)
            try HubPKI.write(try read("ca.pem") + read("ca-next.pem"), to: path("trust.pem"), mode: 0o644)
            return "staged a successor CA \(try TrustMaterial.fingerprint(certificate)); restart the hub, then wait until every site has renewed"
        case .activate:
            guard exists("ca-next.pem"), exists("ca-next.key") else { throw CairnError(.conflict, "no successor CA is staged; stage one first") }
            try move("ca.key", "ca-previous.key")
            try move("ca.pem", "ca-previous.pem")
            try move("ca-next.key", "ca.key")
            try move("ca-next.pem", "ca.pem")
            try HubPKI.write(try read("ca.pem") + read("ca-previous.pem"), to: path("trust.pem"), mode: 0o644)
            let active = try TrustMaterial.certificates(pem: try read("ca.pem"))[0]
            return "activated CA \(try TrustMaterial.fingerprint(active)); restart the hub; sites pinning the old fingerprint still enrol until it is retired"
        case .retire:
            guard exists("ca-previous.pem") else { throw CairnError(.conflict, "there is no previous CA to retire") }
            try FileManager.default.removeItem(atPath: path("ca-previous.pem"))
            try? FileManager.default.removeItem(atPath: path("ca-previous.key"))
            try FileManager.default.removeItem(atPath: path("trust.pem"))
            return "retired the previous CA; restart the hub; certificates it issued are no longer accepted"
        }
    }
}
