import AsyncHTTPClient
import CairnCommon
import Foundation
import NIOCore
import NIOHTTP1

/// The agent's only way to the hub. Every call goes agent → hub; the hub never dials the site.
public struct HubClient: Sendable {
    let http: HTTPClient
    let baseURL: String

    public init(http: HTTPClient, baseURL: String) {
        self.http = http
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    }

    /// What the bundle endpoint answered.
    public enum BundleAnswer: Sendable {
        case nothingNew
        case bundle(bytes: [UInt8], digest: String)
    }

    public func enrol(_ request: EnrolRequest) async throws -> EnrolmentStatus {
        try await call(.POST, "agent/enrol", body: request, authorization: nil, timeout: .seconds(30))
    }

    public func enrolment(_ identity: AgentIdentity) async throws -> EnrolmentStatus {
        try await call(.GET, "agent/enrolment", body: Optional<String>.none, authorization: identity.authorization, timeout: .seconds(30))
    }

    public func heartbeat(_ heartbeat: Heartbeat, identity: AgentIdentity) async throws -> HeartbeatResponse {
        try await call(.POST, "agent/heartbeat", body: heartbeat, authorization: identity.authorization, timeout: .seconds(30))
    }

    public func report(_ report: StatusReport, identity: AgentIdentity) async throws {
        let _: Empty = try await call(.POST, "agent/status", body: report, authorization: identity.authorization, timeout: .seconds(60))
    }

    /// Long-polls for the bundle after `since`; the hub holds the request up to `wait` seconds.
    public func bundle(since: Int64?, wait: Double, identity: AgentIdentity, maxBytes: Int) async throws -> BundleAnswer {
        var path = "agent/bundle?wait=\(wait)"
        if let since { path += "&since=\(since)" }
        var request = HTTPClientRequest(url: "\(baseURL)/api/v1/\(path)")
        request.headers.add(name: "Authorization", value: identity.authorization)
        let response = try await http.execute(request, timeout: .milliseconds(Int64((wait + 30) * 1000)))
        if response.status == .noContent { return .nothingNew }
        guard response.status == .ok else { throw try await Self.error(from: response) }
        guard let digest = response.headers.first(name: BundleHeaders.digest) else {
            throw CairnError(.bundleRejected, "the hub sent a bundle without a digest")
        }
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: maxBytes)
        } catch is NIOTooManyBytesError {
            throw CairnError(.bundleRejected, "bundle is larger than \(maxBytes) bytes compressed")
        }
        return .bundle(bytes: Array(body.readableBytesView), digest: digest)
    }

    struct Empty: Decodable {}

    func call<Body: Encodable, Answer: Decodable>(
        _ method: HTTPMethod, _ path: String, body: Body?, authorization: String?, timeout: TimeAmount
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: "\(baseURL)/api/v1/\(path)")
        request.method = method
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(try CairnJSON.encode(body))
        }
        let response = try await http.execute(request, timeout: timeout)
        guard (200..<300).contains(response.status.code) else { throw try await Self.error(from: response) }
        let data = try await response.body.collect(upTo: 4 * 1024 * 1024)
        if Answer.self == Empty.self { return Empty() as! Answer }
        return try CairnJSON.decode(Answer.self, from: Data(data.readableBytesView), what: "hub answer")
    }

    static func error(from response: HTTPClientResponse) async throws -> HubError {
        let data = try? await response.body.collect(upTo: 1024 * 1024)
        let body = data.flatMap { try? CairnJSON.decode(CairnError.Body.self, from: Data($0.readableBytesView)) }
        return HubError(status: Int(response.status.code), error: body?.error ?? CairnError(.internal, "hub answered \(response.status)"))
    }
}

/// A refusal from the hub, with its status and error body.
public struct HubError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var error: CairnError
    public var description: String { "hub answered \(status): \(error.message)" }
}
