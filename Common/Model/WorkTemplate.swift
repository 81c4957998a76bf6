/// Renders `{{ cluster.name }}`, `{{ cluster.labels["k"] }}`, `{{ cluster.claims["k"] }}` and `{{ values.k }}`
/// in every string of a work's manifests. A key that is not there is an error naming it — never an empty string.
public struct WorkTemplate: Sendable {
    public var clusterName: String
    public var labels: [String: String]
    public var claims: [String: String]
    public var values: [String: String]

    public init(clusterName: String, labels: [String: String], claims: [String: String], values: [String: String]) {
        self.clusterName = clusterName
        self.labels = labels
        self.claims = claims
        self.values = values
    }

    public func render(_ spec: ManifestWork.Spec) throws -> ManifestWork.Spec {
        var rendered = spec
        rendered.workload.manifests = try spec.workload.manifests.enumerated().map { index, manifest in
            try render(manifest, field: "spec.manifestWorkTemplate.workload.manifests[\(index)]")
        }
        return rendered
    }

    func render(_ value: JSONValue, field: String) throws -> JSONValue {
        switch value {
        case .string(let text): return .string(try render(text, field: field))
        case .array(let items): return .array(try items.enumerated().map { try render($1, field: "\(field)[\($0)]") })
        case .object(let fields):
            var result = [String: JSONValue]()
            for (key, item) in fields { result[key] = try render(item, field: "\(field).\(key)") }
            return .object(result)
        default: return value
        }
    }

    func render(_ text: String, field: String) throws -> String {
        guard text.contains("{{") else { return text }
        var output = ""
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            output += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw CairnError(.invalid, "\(field): '{{' without '}}'", field: field)
            }
            let expression = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            output += try lookup(expression, field: field)
            rest = rest[close.upperBound...]
        }
        return output + rest
    }

    func lookup(_ expression: String, field: String) throws -> String {
        func key(_ prefix: String) -> String? {
            guard expression.hasPrefix(prefix + "[\""), expression.hasSuffix("\"]") else { return nil }
            return String(expression.dropFirst(prefix.count + 2).dropLast(2))
        }
        func missing(_ what: String) -> CairnError {
            CairnError(.invalid, "\(field): \(what) is not set for cluster \(clusterName)", field: field)
        }
        if expression == "cluster.name" { return clusterName }
        if let name = key("cluster.labels") {
            guard let value = labels[name] else { throw missing("label \"\(name)\"") }
            return value
        }
        if let name = key("cluster.claims") {
            guard let value = claims[name] else { throw missing("claim \"\(name)\"") }
            return value
        }
        if expression.hasPrefix("values.") {
            let name = String(expression.dropFirst("values.".count))
            guard let value = values[name] else { throw missing("value \"\(name)\"") }
            return value
        }
        throw CairnError(.invalid, "\(field): '{{ \(expression) }}' is not cluster.name, cluster.labels[\"k\"], cluster.claims[\"k\"] or values.k", field: field)
    }
}
