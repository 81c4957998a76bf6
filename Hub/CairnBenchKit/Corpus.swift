import CairnCommon
import Foundation

/// The works the bench deploys, all from the real manifests in the shared corpus (never generated look-alikes,
/// which compress far better than real ones).
struct Corpus: Sendable {
    /// Online Boutique, one work per service (Deployment, Services, ServiceAccount), named `ob-<service>`.
    let boutiqueServices: [(name: String, manifests: [JSONValue])]
    /// Online Boutique as one work.
    let boutique: [JSONValue]
    /// kube-prometheus as a handful of works: `setup` (its CRDs and namespace) and one per component.
    let prometheusComponents: [(name: String, manifests: [JSONValue])]
    /// kube-prometheus, one work per file (the CRDs and namespace as one work).
    let prometheusFiles: [(name: String, manifests: [JSONValue])]

    /// Distinct works with no object in common: every Boutique service, then kube-prometheus file by file.
    var catalogue: [(name: String, manifests: [JSONValue])] { boutiqueServices + prometheusFiles }

    /// `--corpus`, else `../shared/corpus` or `shared/corpus` from the working directory or one above it.
    static func locate(_ given: String?) throws -> String {
        let here = FileManager.default.currentDirectoryPath
        let candidates = given.map { [$0] } ?? [here + "/../shared/corpus", here + "/shared/corpus", here + "/../../shared/corpus"]
        for candidate in candidates where FileManager.default.fileExists(atPath: candidate + "/online-boutique/kubernetes-manifests.yaml") {
            return URL(fileURLWithPath: candidate).standardizedFileURL.path
        }
        throw BenchError("no corpus at \(candidates.joined(separator: " or ")): give --corpus, the folder holding online-boutique/ and kube-prometheus/")
    }

    init(path: String) throws {
        let parser = DocumentParser()
        func documents(_ file: String) throws -> [JSONValue] {
            try parser.parse(try String(contentsOfFile: file, encoding: .utf8), source: file)
        }
        boutique = try documents(path + "/online-boutique/kubernetes-manifests.yaml")
        var services = [String: [JSONValue]]()
        var order = [String]()
        for manifest in boutique {
            let service = manifest["metadata"]?["labels"]?["app"]?.stringValue ?? manifest["metadata"]?["name"]?.stringValue ?? "unnamed"
            if services[service] == nil { order.append(service) }
            services[service, default: []].append(manifest)
        }
        boutiqueServices = order.map { ("ob-" + Self.label($0), services[$0]!) }

        let folder = path + "/kube-prometheus/manifests"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yaml") }.sorted()
        var setup = [JSONValue]()
        for file in try FileManager.default.contentsOfDirectory(atPath: folder + "/setup").filter({ $0.hasSuffix(".yaml") }).sorted() {
            setup += try documents(folder + "/setup/" + file)
        }
        var components = [String: [JSONValue]]()
        var componentOrder = [String]()
        var perFile = [(name: String, manifests: [JSONValue])]()
        for file in files {
            let manifests = try documents(folder + "/" + file)
            let component = String(file.prefix { $0 != "-" })
            if components[component] == nil { componentOrder.append(component) }
            components[component, default: []] += manifests
            perFile.append(("kp-" + Self.label(String(file.dropLast(".yaml".count))), manifests))
        }
        prometheusComponents = [("kp-setup", setup)] + componentOrder.map { ("kp-" + Self.label($0), components[$0]!) }
        prometheusFiles = [("kp-setup", setup)] + perFile
        guard boutiqueServices.count >= 10, prometheusFiles.count >= 50 else {
            throw BenchError("the corpus at \(path) is smaller than expected (\(boutiqueServices.count) services, \(prometheusFiles.count) kube-prometheus files)")
        }
    }

    /// A DNS-1123 label from a file or service name: lower case, dashes for anything else, at most 63 characters.
    static func label(_ text: String) -> String {
        let mapped = text.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }
        return String(String(mapped).prefix(63))
    }

    /// A Boutique service as a work of its own: its objects in `namespace`, so copies never share an object.
    func boutiqueWork(_ index: Int, name: String, namespace: String) -> ManifestWork {
        let service = boutiqueServices[index % boutiqueServices.count]
        let manifests = service.manifests.map { manifest -> JSONValue in
            var copy = manifest
            copy["metadata"]?["namespace"] = .string(namespace)
            return copy
        }
        return ManifestWork(metadata: ObjectMeta(name: name), spec: .init(manifests: manifests))
    }
}

extension ManifestWork {
    /// The same work with its Deployment scaled to `replicas`: the update the bench measures.
    func scaled(to replicas: Int) -> ManifestWork {
        var work = self
        work.spec.workload.manifests = work.spec.workload.manifests.map { manifest in
            guard manifest["kind"]?.stringValue == "Deployment" else { return manifest }
            var copy = manifest
            copy["spec"]?["replicas"] = .int(Int64(replicas))
            return copy
        }
        return work
    }
}
