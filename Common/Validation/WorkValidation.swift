/// Bounds on what one work may hold.
public struct WorkLimits: Sendable {
    /// Total size of a work's manifests as JSON.
    public var maxManifestBytes: Int = 8 * 1024 * 1024
    public var maxManifests: Int = 2_000
    /// Nesting depth of any one manifest.
    public var maxDepth: Int = 64
    public init() {}
}

extension ManifestWork {
    /// Checks everything the hub stores or an agent applies; errors name the field at fault.
    public func validate(cluster: String? = nil, limits: WorkLimits = WorkLimits()) throws {
        guard kind == "ManifestWork" else {
            throw CairnError(.invalid, "kind must be ManifestWork, not '\(Names.printable(kind))'", field: "kind")
        }
        guard apiVersion == CairnAPI.version || apiVersion == CairnAPI.ocmWorkVersion else {
            throw CairnError(
                .invalid,
                "apiVersion must be \(CairnAPI.version) or \(CairnAPI.ocmWorkVersion), not '\(Names.printable(apiVersion))'",
                field: "apiVersion")
        }
        try Names.validateLabel(metadata.name, field: "metadata.name")
        if let namespace = metadata.namespace, let cluster, !namespace.isEmpty, namespace != cluster {
            throw CairnError(
                .invalid, "metadata.namespace '\(Names.printable(namespace))' does not match cluster '\(cluster)'",
                field: "metadata.namespace")
        }
        try Names.validateLabels(metadata.labels, field: "metadata.labels")
        let manifests = spec.workload.manifests
        guard manifests.count <= limits.maxManifests else {
            throw CairnError(
                .tooLarge, "spec.workload.manifests has \(manifests.count) manifests; at most \(limits.maxManifests) are allowed",
                field: "spec.workload.manifests")
        }
        var seen = [ManifestKey: Int]()
        var totalBytes = 0
        for (index, manifest) in manifests.enumerated() {
            let field = "spec.workload.manifests[\(index)]"
            let key = try Self.validateManifest(manifest, field: field, maxDepth: limits.maxDepth)
            if let first = seen[key] {
                throw CairnError(
                    .invalid, "\(field) duplicates manifests[\(first)]: both are \(key) (\(key.apiVersion))", field: field)
            }
            seen[key] = index
            totalBytes += try CairnJSON.encode(manifest).count
            if totalBytes > limits.maxManifestBytes {
                throw CairnError(
                    .tooLarge,
                    "spec.workload.manifests exceed \(limits.maxManifestBytes) bytes of JSON at \(field)",
                    field: "spec.workload.manifests")
            }
        }
        for (index, config) in (spec.manifestConfigs ?? []).enumerated() {
            let field = "spec.manifestConfigs[\(index)].resourceIdentifier"
            guard !config.resourceIdentifier.resource.isEmpty else {
                throw CairnError(.invalid, "\(field).resource must not be empty", field: "\(field).resource")
            }
            try Names.validateObjectName(config.resourceIdentifier.name, field: "\(field).name")
            for (ignoreIndex, ignore) in (config.updateStrategy?.serverSideApply?.ignoreFields ?? []).enumerated() {
                let ignoreField = "spec.manifestConfigs[\(index)].updateStrategy.serverSideApply.ignoreFields[\(ignoreIndex)]"
                if let condition = ignore.condition, condition != UpdateStrategy.IgnoreField.onSpokePresent {
                    throw CairnError(
                        .invalid, "\(ignoreField).condition '\(Names.printable(condition))' is not supported; use OnSpokePresent",
                        field: "\(ignoreField).condition")
                }
                guard !ignore.jsonPaths.isEmpty else {
                    throw CairnError(.invalid, "\(ignoreField).jsonPaths must list at least one path", field: "\(ignoreField).jsonPaths")
                }
                for (pathIndex, path) in ignore.jsonPaths.enumerated() {
                    let parsed = FeedbackPath(path)
                    let segments = parsed?.segments ?? []
                    let identity = ["apiVersion", "kind"].contains(segments.first) || segments.first == "metadata" && !(segments.count > 2 && ["labels", "annotations"].contains(segments[1]))
                    guard parsed != nil, !identity else {
                        throw CairnError(
                            .invalid, "\(ignoreField).jsonPaths[\(pathIndex)] '\(Names.printable(path))' must look like .spec.replicas and may not name the object's identity",
                            field: "\(ignoreField).jsonPaths[\(pathIndex)]")
                    }
                }
            }
            for (ruleIndex, rule) in (config.feedbackRules ?? []).enumerated() where rule.type == .jsonPaths {
                let ruleField = "spec.manifestConfigs[\(index)].feedbackRules[\(ruleIndex)].jsonPaths"
                guard let paths = rule.jsonPaths, !paths.isEmpty else {
                    throw CairnError(.invalid, "\(ruleField) must list at least one path for type JSONPaths", field: ruleField)
                }
                for (pathIndex, path) in paths.enumerated() {
                    guard FeedbackPath(path.path) != nil else {
                        throw CairnError(
                            .invalid, "\(ruleField)[\(pathIndex)].path '\(Names.printable(path.path))' must look like .status.field",
                            field: "\(ruleField)[\(pathIndex)].path")
                    }
                }
            }
        }
    }

    /// A manifest needs apiVersion, kind and metadata.name, each well formed.
    @discardableResult
    public static func validateManifest(_ manifest: JSONValue, field: String, maxDepth: Int = 64) throws -> ManifestKey {
        guard case .object = manifest else {
            throw CairnError(.invalid, "\(field) must be an object", field: field)
        }
        guard manifest.depth <= maxDepth else {
            throw CairnError(.invalid, "\(field) is nested deeper than \(maxDepth) levels", field: field)
        }
        guard let apiVersion = manifest["apiVersion"]?.stringValue, !apiVersion.isEmpty else {
            throw CairnError(.invalid, "\(field).apiVersion is required", field: "\(field).apiVersion")
        }
        let versionParts = apiVersion.split(separator: "/", omittingEmptySubsequences: false)
        guard versionParts.count <= 2, versionParts.allSatisfy({ !$0.isEmpty }),
            !apiVersion.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7f })
        else {
            throw CairnError(.invalid, "\(field).apiVersion '\(Names.printable(apiVersion))' must be VERSION or GROUP/VERSION", field: "\(field).apiVersion")
        }
        guard let kind = manifest["kind"]?.stringValue, !kind.isEmpty else {
            throw CairnError(.invalid, "\(field).kind is required", field: "\(field).kind")
        }
        guard kind.unicodeScalars.allSatisfy({ CharacterSetCheck.isAlnum($0) }) else {
            throw CairnError(.invalid, "\(field).kind '\(Names.printable(kind))' must be letters and digits", field: "\(field).kind")
        }
        guard case .object = manifest["metadata"] else {
            throw CairnError(.invalid, "\(field).metadata is required", field: "\(field).metadata")
        }
        guard let name = manifest["metadata"]?["name"]?.stringValue else {
            throw CairnError(.invalid, "\(field).metadata.name is required", field: "\(field).metadata.name")
        }
        try Names.validateObjectName(name, field: "\(field).metadata.name")
        if let namespace = manifest["metadata"]?["namespace"] {
            guard let text = namespace.stringValue else {
                throw CairnError(.invalid, "\(field).metadata.namespace must be a string", field: "\(field).metadata.namespace")
            }
            if !text.isEmpty { try Names.validateNamespace(text, field: "\(field).metadata.namespace") }
        }
        if let labels = manifest["metadata"]?["labels"] {
            guard let fields = labels.objectValue else {
                throw CairnError(.invalid, "\(field).metadata.labels must be an object", field: "\(field).metadata.labels")
            }
            var strings = [String: String]()
            for (key, value) in fields {
                guard let text = value.stringValue else {
                    throw CairnError(.invalid, "\(field).metadata.labels.\(key) must be a string", field: "\(field).metadata.labels.\(key)")
                }
                strings[key] = text
            }
            try Names.validateLabels(strings, field: "\(field).metadata.labels")
        }
        return ManifestKey(manifest: manifest)!
    }
}

enum CharacterSetCheck {
    static func isAlnum(_ scalar: Unicode.Scalar) -> Bool {
        (scalar.value >= 48 && scalar.value <= 57) || (scalar.value >= 65 && scalar.value <= 90)
            || (scalar.value >= 97 && scalar.value <= 122)
    }
}

/// A feedback path in the `.status.readyReplicas` form OCM's JSONPaths rules use.
public struct FeedbackPath: Sendable {
    public var segments: [String]

    public init?(_ text: String) {
        var path = text
        if path.hasPrefix("{") && path.hasSuffix("}") { path = String(path.dropFirst().dropLast()) }
        guard path.hasPrefix(".") else { return nil }
        let segments = path.dropFirst().split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !segments.isEmpty, segments.allSatisfy({ !$0.isEmpty }) else { return nil }
        self.segments = segments
    }
}
