/// What identifies a manifest on a cluster: group, version, kind, namespace and name.
public struct ManifestKey: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public var apiVersion: String
    public var kind: String
    public var namespace: String?
    public var name: String

    public init(apiVersion: String, kind: String, namespace: String?, name: String) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.namespace = (namespace?.isEmpty ?? true) ? nil : namespace
        self.name = name
    }

    /// Reads the key of a manifest that has already been validated.
    public init?(manifest: JSONValue) {
        guard let apiVersion = manifest["apiVersion"]?.stringValue, let kind = manifest["kind"]?.stringValue,
            let name = manifest["metadata"]?["name"]?.stringValue
        else { return nil }
        self.init(apiVersion: apiVersion, kind: kind, namespace: manifest["metadata"]?["namespace"]?.stringValue, name: name)
    }

    public var group: String {
        let parts = apiVersion.split(separator: "/", maxSplits: 1)
        return parts.count == 2 ? String(parts[0]) : ""
    }

    public var version: String {
        let parts = apiVersion.split(separator: "/", maxSplits: 1)
        return String(parts.last ?? "")
    }

    /// The resource name Kubernetes would use (lower-case plural of the kind).
    public var resource: String { Self.resource(forKind: kind) }

    /// Namespaces and CRDs first, then what workloads refer to, then workloads; deletion runs the other way.
    public var applyOrder: Int {
        switch kind {
        case "Namespace", "CustomResourceDefinition": return 0
        case "ServiceAccount", "Secret", "ConfigMap", "ClusterRole", "Role", "PriorityClass", "StorageClass",
            "PersistentVolume", "LimitRange", "ResourceQuota":
            return 1
        case "ClusterRoleBinding", "RoleBinding", "PersistentVolumeClaim", "Service":
            return 2
        case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod":
            return 4
        default:
            return group.contains(".") && !group.hasSuffix(".k8s.io") ? 5 : 3
        }
    }

    public var description: String {
        if let namespace { return "\(kind) \(namespace)/\(name)" }
        return "\(kind) \(name)"
    }

    /// A stable text form, used as a database key.
    public var id: String { "\(apiVersion)|\(kind)|\(namespace ?? "")|\(name)" }

    public static func < (lhs: ManifestKey, rhs: ManifestKey) -> Bool {
        (lhs.applyOrder, lhs.id) < (rhs.applyOrder, rhs.id)
    }

    public static func resource(forKind kind: String) -> String {
        let lower = kind.lowercased()
        if lower == "endpoints" { return lower }
        if lower.hasSuffix("s") || lower.hasSuffix("x") || lower.hasSuffix("ch") || lower.hasSuffix("sh") { return lower + "es" }
        if lower.hasSuffix("y"), let beforeY = lower.dropLast().last, !"aeiou".contains(beforeY) { return lower.dropLast() + "ies" }
        return lower + "s"
    }
}
