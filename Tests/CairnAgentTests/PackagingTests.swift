import CairnCommon
import Foundation
import Testing
import Yams

/// packaging/kubernetes holds together: every file is listed, names and mounts agree, one replica, Recreate.
@Suite struct PackagingTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("packaging/kubernetes").path

    func documents() throws -> [String: [JSONValue]] {
        var result = [String: [JSONValue]]()
        for file in try FileManager.default.contentsOfDirectory(atPath: Self.directory) where file.hasSuffix(".yaml") {
            result[file] = try DocumentParser().parse(try String(contentsOfFile: Self.directory + "/" + file, encoding: .utf8), source: file)
        }
        return result
    }

    @Test func `the in-cluster manifests agree with each other`() throws {
        let files = try documents()
        let listed = try #require(files["kustomization.yaml"]?.first?["resources"]?.arrayValue).compactMap(\.stringValue)
        #expect(Set(listed) == Set(files.keys).subtracting(["kustomization.yaml"]))
        let all = listed.flatMap { files[$0] ?? [] }
        func one(_ kind: String) throws -> JSONValue { try #require(all.first { $0["kind"]?.stringValue == kind }, "no \(kind)") }

        let namespace = try one("Namespace")["metadata"]?["name"]
        for object in all where !["Namespace", "ClusterRole", "ClusterRoleBinding"].contains(object["kind"]?.stringValue ?? "") {
            #expect(object["metadata"]?["namespace"] == namespace, "\(object["kind"] ?? nil) in another namespace")
            #expect(try ManifestWork.validateManifest(object, field: "manifest") == ManifestKey(manifest: object))
        }
        let deployment = try one("Deployment")
        let serviceAccount = try one("ServiceAccount")
        #expect(deployment["spec"]?["replicas"] == 1)
        #expect(deployment["spec"]?["strategy"]?["type"] == "Recreate")
        let pod = try #require(deployment["spec"]?["template"]?["spec"])
        #expect(pod["serviceAccountName"] == serviceAccount["metadata"]?["name"])
        let binding = try one("ClusterRoleBinding")
        #expect(binding["roleRef"]?["name"] == (try one("ClusterRole"))["metadata"]?["name"])
        #expect(binding["subjects"]?.arrayValue?.contains { $0["name"] == serviceAccount["metadata"]?["name"] && $0["namespace"] == namespace } == true)

        // Volumes name the ConfigMap, Secret and claim that exist; the config file points into the mounts.
        let volumes = pod["volumes"]?.arrayValue ?? []
        let mounts = pod["containers"]?.arrayValue?.first?["volumeMounts"]?.arrayValue ?? []
        func mountPath(_ volume: String) -> String? { mounts.first { $0["name"]?.stringValue == volume }?["mountPath"]?.stringValue }
        func volume(_ source: String) -> String? { volumes.first { $0[source] != nil }?["name"]?.stringValue }
        let configMap = try one("ConfigMap")
        #expect(volumes.contains { $0["configMap"]?["name"] == configMap["metadata"]?["name"] })
        #expect(volumes.contains { $0["secret"]?["secretName"] == (try? one("Secret"))?["metadata"]?["name"] })
        #expect(volumes.contains { $0["persistentVolumeClaim"]?["claimName"] == (try? one("PersistentVolumeClaim"))?["metadata"]?["name"] })
        let agentYAML = try #require(configMap["data"]?["agent.yaml"]?.stringValue)
        let agent = try #require(try DocumentParser().parse(agentYAML, source: "agent.yaml").first)
        #expect(agent["adapter"] == "kubernetes")
        let stateMount = try #require(volume("persistentVolumeClaim").flatMap(mountPath))
        #expect(agent["stateDir"]?.stringValue == stateMount)
        let secretMount = try #require(volume("secret").flatMap(mountPath))
        let tokenKey = try #require((try one("Secret"))["stringData"]?.objectValue?.keys.first)
        #expect(agent["tokenFile"]?.stringValue == secretMount + "/" + tokenKey)
        let args = pod["containers"]?.arrayValue?.first?["args"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let configPath = try #require(args.firstIndex(of: "--config").map { args[$0 + 1] })
        #expect(mounts.contains { $0["mountPath"]?.stringValue == configPath && $0["subPath"] == "agent.yaml" })
    }
}
