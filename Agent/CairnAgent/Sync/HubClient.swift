import AsyncHTTPClient
import CairnCommon
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// The agent's only way to the hub. Every call goes agent → hub; the hub never dials the site.
public struct HubClient: Sendable {
    let connections: HubConnections
    let baseURL: String
    let tls: TLSConfiguration?
    /// How long a call may take (a long-poll: its wait plus this); a black-holed link is given up after it.
    let timeout: TimeAmount

    public init(http: HTTPClient, baseURL: String, tls: TLSConfiguration?, timeout: TimeAmount = .seconds(30)) {
        self.init(connections: HubConnections(using: http), baseURL: baseURL, tls: tls, timeout: timeout)
    }

    /// Calls made through `connections`' current client (the agent's own, replaced after a large bundle).
    init(connections: HubConnections, baseURL: String, tls: TLSConfiguration?, timeout: TimeAmount) {
        self.connections = connections
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.tls = tls
        self.timeout = timeout
    }

    /// Fetches the hub's CA without verifying the server (nothing secret is sent) and keeps it only if its
    /// fingerprint is the pinned one.
    public static func pinnedCA(http: HTTPClient, baseURL: String, fingerprint: String) async throws -> String {
        var request = HTTPClientRequest(url: (baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL) + "/api/v1/ca")
        request.tlsConfiguration = TrustMaterial.unverifiedTLS()
        let response = try await http.execute(request, timeout: .seconds(30))
        guard response.status == .ok else { throw try await error(from: response) }
        let pem = String(buffer: try await response.body.collect(upTo: 1 << 20))
        return try TrustMaterial.pem(try TrustMaterial.pinned(try TrustMaterial.certificates(pem: pem), fingerprint: fingerprint))
    }

    /// What the bundle endpoint answered.
    public enum BundleAnswer: Sendable {
        case nothingNew
        case bundle(bytes: [UInt8], digest: String, stateDigest: String, signature: String)
    }

    /// A poll's answer: the bundle, if any, and whether the hub asks for a heartbeat (the poll did not renew the
    /// lease: `BundleHeaders.heartbeatWanted`).
    public struct PollAnswer: Sendable {
        public var bundle: BundleAnswer
        public var heartbeatWanted: Bool
    }

    public func enrol(_ request: EnrolRequest) async throws -> EnrolmentStatus {
        try await call(.POST, "agent/enrol", body: request, authorization: nil, timeout: timeout)
    }

    public func enrolment(_ identity: AgentIdentity) async throws -> EnrolmentStatus {
        try await call(.GET, "agent/enrolment", body: Optional<String>.none, authorization: identity.enrolmentAuthorization, timeout: timeout)
    }

    public func renew(_ request: RenewRequest, identity: AgentIdentity) async throws -> EnrolmentStatus {
        try await call(.POST, "agent/clusters/\(identity.clusterName)/renew", body: request, authorization: nil, timeout: timeout)
    }

    public func heartbeat(_ heartbeat: Heartbeat, identity: AgentIdentity) async throws -> HeartbeatResponse {
        try await call(.POST, "agent/clusters/\(identity.clusterName)/heartbeat", body: heartbeat, authorization: nil, timeout: timeout)
    }

    public func report(_ report: StatusReport, identity: AgentIdentity) async throws {
        let _: Empty = try await call(.POST, "agent/clusters/\(identity.clusterName)/status", body: report, authorization: nil, timeout: timeout * 2)
    }

    /// Long-polls for the bundle after `since`; the hub holds the request up to `wait` seconds.
    public func bundle(since: Int64?, wait: Double, identity: AgentIdentity, maxBytes: Int) async throws -> PollAnswer {
        var path = "agent/clusters/\(identity.clusterName)/bundle?wait=\(wait)"
        if let since { path += "&since=\(since)" }
        var request = HTTPClientRequest(url: "\(baseURL)/api/v1/\(path)")
        request.tlsConfiguration = tls
        return try await connections.call { http in
            let response = try await http.execute(request, timeout: .milliseconds(Int64(wait * 1000)) + timeout)
            let heartbeatWanted = response.headers.first(name: BundleHeaders.heartbeatWanted) != nil
            if response.status == .noContent { return PollAnswer(bundle: .nothingNew, heartbeatWanted: heartbeatWanted) }
            guard response.status == .ok else { throw try await Self.error(from: response) }
            guard let digest = response.headers.first(name: BundleHeaders.digest),
                let stateDigest = response.headers.first(name: BundleHeaders.stateDigest),
                let signature = response.headers.first(name: BundleHeaders.signature)
            else {
                throw CairnError(.bundleRejected, "the hub sent a bundle without its digest, state digest or signature")
            }
            let body: ByteBuffer
            do {
                body = try await response.body.collect(upTo: maxBytes)
            } catch is NIOTooManyBytesError {
                throw CairnError(.bundleRejected, "bundle is larger than \(maxBytes) bytes compressed")
            }
            return PollAnswer(
                bundle: .bundle(bytes: Array(body.readableBytesView), digest: digest, stateDigest: stateDigest, signature: signature),
                heartbeatWanted: heartbeatWanted)
        }
    }

    struct Empty: Decodable {}

    func call<Body: Encodable, Answer: Decodable>(
        _ method: HTTPMethod, _ path: String, body: Body?, authorization: String?, timeout: TimeAmount
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: "\(baseURL)/api/v1/\(path)")
        request.method = method
        request.tlsConfiguration = tls
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(try CairnJSON.encode(body))
        }
        let data = try await connections.call { http in
            let response = try await http.execute(request, timeout: timeout)
            guard (200..<300).contains(response.status.code) else { throw try await Self.error(from: response) }
            return try await response.body.collect(upTo: 4 * 1024 * 1024)
        }
        if let empty = Empty() as? Answer { return empty }
        return try CairnJSON.decode(Answer.self, from: Data(data.readableBytesView), what: "hub answer")
    }

    static func error(from response: HTTPClientResponse) async throws -> HubError {
        let data = try? await response.body.collect(upTo: 1024 * 1024)
        let body = data.flatMap { try? CairnJSON.decode(CairnError.Body.self, from: Data($0.readableBytesView)) }
        var error = body?.error ?? CairnError(.internal, "hub answered \(response.status)")
        error.retryAfter = response.headers.first(name: "Retry-After").flatMap { Int($0) }
        return HubError(status: Int(response.status.code), error: error)
    }
}

/// A refusal from the hub, with its status and error body.
public struct HubError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var error: CairnError
    public var description: String { "hub answered \(status): \(error.message)" }
    /// The hub asked to be left alone this long (429/503 with Retry-After).
    public var retryAfter: Int? { status == 429 || status == 503 ? error.retryAfter : nil }
}
