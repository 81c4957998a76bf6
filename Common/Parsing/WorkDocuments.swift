/// Turns parsed documents into works: ManifestWork documents are taken as they are; plain manifests become
/// one work with the given name.
public enum WorkDocuments {
    public static func works(from documents: [JSONValue], cluster: String?, defaultName: String?) throws -> [ManifestWork] {
        let kinds = documents.map { $0["kind"]?.stringValue }
        if kinds.contains("ManifestWork") {
            guard kinds.allSatisfy({ $0 == "ManifestWork" }) else {
                throw CairnError(.invalid, "a file with ManifestWork documents must hold only ManifestWork documents")
            }
            return try documents.enumerated().map { index, document in
                var work = try CairnJSON.convert(document, to: ManifestWork.self, what: "document \(index + 1)")
                if let cluster {
                    if let namespace = work.metadata.namespace, !namespace.isEmpty, namespace != cluster {
                        throw CairnError(
                            .invalid,
                            "document \(index + 1): metadata.namespace '\(namespace)' does not match --cluster \(cluster)",
                            field: "metadata.namespace")
                    }
                    work.metadata.namespace = cluster
                }
                work.status = nil
                return work
            }
        }
        guard let defaultName else {
            throw CairnError(.invalid, "plain manifests need a work name", field: "metadata.name")
        }
        var work = ManifestWork(metadata: ObjectMeta(name: defaultName, namespace: cluster), spec: .init(manifests: documents))
        work.status = nil
        return [work]
    }
}
