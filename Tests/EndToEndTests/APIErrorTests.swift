import AsyncHTTPClient
import CairnAgent
import CairnCommon
import CairnTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// Bad requests from the outside: each gets a 4xx with the documented JSON error naming the field, and the
/// hub's state does not change.
@Suite(.serialized) struct APIErrorTests {
    struct Answer {
        var status: Int
        var error: CairnError?
    }

    func send(_ hub: TestHub, _ method: HTTPMethod, _ path: String, body: [UInt8]?, token: String?) async throws -> Answer {
        var request = HTTPClientRequest(url: hub.url + path)
        request.tlsConfiguration = try TrustMaterial.clientTLS(roots: TrustMaterial.certificates(pem: String(contentsOfFile: hub.caPath, encoding: .utf8)))
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body { request.body = .bytes(body) }
        return try await withHTTPClient { http in
            let response = try await http.execute(request, timeout: .seconds(30))
            let data = try await response.body.collect(upTo: 1 << 20)
            let error = try? CairnJSON.decode(CairnError.Body.self, from: Data(data.readableBytesView)).error
            return Answer(status: Int(response.status.code), error: error)
        }
    }

    @Test func `malformed, invalid, oversized and unauthorised requests are refused and change nothing`() async throws {
        let directory = try TemporaryDirectory("api-errors")
        defer { directory.remove() }
        let hub = try await TestHub(stateDirectory: directory.appending("hub"))
        let token = try await hub.token(autoApprove: true)
        let agent = try TestAgent(stateDirectory: directory.appending("c1"), hub: hub, token: token, name: "c1")
        try await hub.waitJoined("c1")
        let revision = try await hub.store.revision(cluster: "c1")
        let admin = hub.adminToken
        func manifestWork(_ manifests: String) -> [UInt8] {
            Array(#"{"apiVersion":"cairn.io/v1","kind":"ManifestWork","metadata":{"name":"w"},"spec":{"workload":{"manifests":[\#(manifests)]}}}"#.utf8)
        }
        struct Case {
            var what: String, method: HTTPMethod, path: String, body: [UInt8]?, token: String?, status: Int, field: String?
            init(_ what: String, _ method: HTTPMethod, _ path: String, _ body: [UInt8]?, _ token: String?, _ status: Int, _ field: String?) {
                (self.what, self.method, self.path, self.body, self.token, self.status, self.field) = (what, method, path, body, token, status, field)
            }
        }
        let hash = String(repeating: "a", count: 64)
        let csr = try AgentKey.loadOrCreate(path: directory.appending("probe.key")).csr(cluster: "c5").replacingOccurrences(of: "\n", with: "\\n")
        let cases: [Case] = [
            Case("not JSON", .PUT, "/api/v1/clusters/c1/works/w", Array("{not json".utf8), admin, 400, nil),
            Case("missing spec", .PUT, "/api/v1/clusters/c1/works/w", Array(#"{"apiVersion":"cairn.io/v1","kind":"ManifestWork","metadata":{"name":"w"}}"#.utf8), admin, 400, "spec"),
            Case("manifest without kind", .PUT, "/api/v1/clusters/c1/works/w", manifestWork(#"{"apiVersion":"v1","metadata":{"name":"a"}}"#), admin, 400, "spec.workload.manifests[0].kind"),
            Case("bad manifest name", .PUT, "/api/v1/clusters/c1/works/w", manifestWork(#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a/b"}}"#), admin, 400, "spec.workload.manifests[0].metadata.name"),
            Case("wrong type", .PUT, "/api/v1/clusters/c1/works/w", manifestWork(#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":7}}"#), admin, 400, "spec.workload.manifests[0].metadata.name"),
            Case("name mismatch", .PUT, "/api/v1/clusters/c1/works/other", manifestWork(""), admin, 400, "metadata.name"),
            Case("bad cluster name", .PUT, "/api/v1/clusters/C_1/works/w", manifestWork(""), admin, 400, "cluster"),
            Case("unknown cluster", .PUT, "/api/v1/clusters/c9/works/w", manifestWork(""), admin, 404, "cluster"),
            Case("oversized body", .PUT, "/api/v1/clusters/c1/works/w", Array(repeating: UInt8(ascii: " "), count: 17 * 1024 * 1024), admin, 413, "body"),
            Case("no token", .PUT, "/api/v1/clusters/c1/works/w", manifestWork(""), nil, 401, "Authorization"),
            Case("wrong token", .PUT, "/api/v1/clusters/c1/works/w", manifestWork(""), "cairn-admin-nope", 401, "Authorization"),
            Case("bad label", .PATCH, "/api/v1/clusters/c1/labels", Array(#"{"set":{"bad key":"x"}}"#.utf8), admin, 400, "set.bad key"),
            Case("bundle without a client certificate", .GET, "/api/v1/agent/clusters/c1/bundle?since=0", nil, nil, 401, "certificate"),
            Case("status without a client certificate", .POST, "/api/v1/agent/clusters/c1/status", Array(#"{"works":[]}"#.utf8), nil, 401, "certificate"),
            Case("enrolment status with a wrong secret", .GET, "/api/v1/agent/enrolment", nil, "c1:wrong", 401, "Authorization"),
            Case("enrol with a CSR for another name", .POST, "/api/v1/agent/enrol", Array(#"{"token":"x.y","clusterName":"c6","credentialHash":"\#(hash)","csr":"\#(csr)"}"#.utf8), nil, 400, "csr"),
            Case("enrol with a garbage CSR", .POST, "/api/v1/agent/enrol", Array(#"{"token":"x.y","clusterName":"c5","credentialHash":"\#(hash)","csr":"nope"}"#.utf8), nil, 400, "csr"),
            Case("enrol with a bad token", .POST, "/api/v1/agent/enrol", Array(#"{"token":"x.y","clusterName":"c5","credentialHash":"\#(hash)","csr":"\#(csr)"}"#.utf8), nil, 401, "token"),
            Case("enrol with a bad name", .POST, "/api/v1/agent/enrol", Array(#"{"token":"x.y","clusterName":"../etc","credentialHash":"\#(hash)","csr":"\#(csr)"}"#.utf8), nil, 400, "clusterName"),
            Case("unknown endpoint", .GET, "/api/v1/nothing-here", nil, admin, 404, nil),
            // Hostile input: each a clear 4xx, nothing stored.
            Case("deeply nested JSON", .PUT, "/api/v1/clusters/c1/works/w", Array((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8), admin, 400, nil),
            Case("deeply nested manifest", .PUT, "/api/v1/clusters/c1/works/w", manifestWork(#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":"# + String(repeating: #"{"a":"#, count: 2_000) + "1" + String(repeating: "}", count: 2_000) + "}"), admin, 400, nil),
            Case("a number JSON cannot hold", .PUT, "/api/v1/clusters/c1/works/w", manifestWork(#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"x":1e999}}"#), admin, 400, nil),
            Case("control characters in a name", .PUT, "/api/v1/clusters/c1/works/w", manifestWork(#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a\u0007b"}}"#), admin, 400, "spec.workload.manifests[0].metadata.name"),
            Case("a NUL in the path", .PUT, "/api/v1/clusters/c1%00/works/w", manifestWork(""), admin, 400, "cluster"),
            Case("path traversal in the path", .PUT, "/api/v1/clusters/..%2F..%2Fetc/works/w", manifestWork(""), admin, 400, "cluster"),
            Case("a huge label value", .PATCH, "/api/v1/clusters/c1/labels", Array(#"{"set":{"region":"\#(String(repeating: "x", count: 1_000_000))"}}"#.utf8), admin, 400, "set.region"),
            Case("ten thousand labels", .PATCH, "/api/v1/clusters/c1/labels", Array(("{\"set\":{" + (0..<10_000).map { "\"k\($0)\":\"v\"" }.joined(separator: ",") + "}}").utf8), admin, 400, "set"),
            Case("a work name with a slash", .PUT, "/api/v1/clusters/c1/works/a%2Fb", manifestWork(""), admin, 400, nil),
        ]
        for item in cases {
            let answer = try await send(hub, item.method, item.path, body: item.body, token: item.token)
            #expect(answer.status == item.status, "\(item.what)")
            #expect(answer.error != nil, "\(item.what): error body in the documented shape")
            if let field = item.field { #expect(answer.error?.field == field, "\(item.what): \(answer.error?.message ?? "")") }
        }
        #expect(try await hub.store.revision(cluster: "c1") == revision)
        #expect(try await hub.admin { try await $0.works(cluster: "c1") }.isEmpty)
        #expect(try await hub.admin { try await $0.clusters() }.map(\.name) == ["c1"])
        #expect(try await hub.admin { try await $0.cluster("c1") }.metadata.labels ?? [:] == [:])
        try await agent.stop()
        try await hub.stop()
    }
}
