import CairnCommon
import CairnHub
import CairnTestSupport
import Foundation
import Testing

/// The served OpenAPI document is docs/openapi.yaml, and it describes the routes the hub has.
@Suite(.ownThread) struct OpenAPITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func `the served document is docs/openapi.yaml (run scripts/embed-openapi.sh after editing it)`() throws {
        let file = try String(contentsOf: Self.root.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        #expect(HubServer.openAPIDocument == file)
    }

    @Test func `every administrator route is described`() throws {
        let document = try #require(try DocumentParser().parse(HubServer.openAPIDocument).first)
        let paths = Set(try #require(document["paths"]?.objectValue).keys)
        // The routes, read from the controllers' sources: a new route without a description fails here.
        var routes = Set<String>()
        let api = Self.root.appendingPathComponent("Hub/CairnHub/API")
        let sources = try FileManager.default.contentsOfDirectory(atPath: api.path).filter { $0.hasSuffix(".swift") }.map(api.appendingPathComponent)
            + [Self.root.appendingPathComponent("Hub/CairnHub/HubServer.swift")]
        for url in sources {
            let source = try String(contentsOf: url, encoding: .utf8)
            let pattern = try Regex(#"(?:group|api)\.(?:get|post|put|patch|delete)\("([^"]+)"\)"#)
            for match in source.matches(of: pattern) {
                guard let route = match.output[1].substring.map(String.init), !route.hasPrefix("agent/clusters/"), route != "agent/enrolment" else { continue }
                routes.insert("/" + route.replacing(try Regex(#":([a-z]+)"#)) { "{\($0.output[1].substring ?? "")}" })
            }
        }
        #expect(!routes.isEmpty)
        #expect(routes.subtracting(paths).isEmpty, "not described: \(routes.subtracting(paths).sorted())")
        #expect(paths.subtracting(routes).isEmpty, "described but not served: \(paths.subtracting(routes).sorted())")
    }
}
