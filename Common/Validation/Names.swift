/// Name and label syntax, as Kubernetes defines it.
public enum Names {
    /// A DNS-1123 label: lower-case alphanumerics and '-', starting and ending alphanumeric, at most 63 characters.
    /// Cluster and work names use it: they become path segments, SQL keys and certificate subjects.
    public static func validateLabel(_ name: String, field: String) throws {
        guard !name.isEmpty else { throw CairnError(.invalid, "\(field) must not be empty", field: field) }
        guard name.utf8.count <= 63 else {
            throw CairnError(.invalid, "\(field) '\(name.prefix(70))…' is longer than 63 characters", field: field)
        }
        guard isDNSLabel(Substring(name)) else {
            throw CairnError(
                .invalid,
                "\(field) '\(printable(name))' must be a DNS-1123 label: lower-case letters, digits and '-', "
                    + "starting and ending with a letter or digit",
                field: field)
        }
    }

    /// A name inside a manifest: what the Kubernetes API accepts as a path segment (RBAC names use ':').
    public static func validateObjectName(_ name: String, field: String) throws {
        guard !name.isEmpty else { throw CairnError(.invalid, "\(field) must not be empty", field: field) }
        guard name.utf8.count <= 253 else {
            throw CairnError(.invalid, "\(field) is longer than 253 characters", field: field)
        }
        guard name != ".", name != "..", !name.contains("/"), !name.contains("%"),
            !name.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7f })
        else {
            throw CairnError(
                .invalid, "\(field) '\(printable(name))' may not contain '/', '%', spaces or control characters",
                field: field)
        }
    }

    /// A namespace inside a manifest: a DNS-1123 label.
    public static func validateNamespace(_ name: String, field: String) throws {
        try validateLabel(name, field: field)
    }

    /// Label keys: an optional DNS-1123 subdomain prefix and '/', then a name of at most 63 characters.
    public static func validateLabelKey(_ key: String, field: String) throws {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        let name: Substring
        if parts.count == 2 {
            let prefix = parts[0]
            guard !prefix.isEmpty, prefix.utf8.count <= 253,
                prefix.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(isDNSLabel)
            else {
                throw CairnError(
                    .invalid, "\(field): label key prefix '\(printable(String(prefix)))' must be a DNS-1123 subdomain",
                    field: field)
            }
            name = parts[1]
        } else if parts.count == 1 {
            name = parts[0]
        } else {
            throw CairnError(.invalid, "\(field): label key '\(printable(key))' has more than one '/'", field: field)
        }
        guard isQualifiedName(name) else {
            throw CairnError(
                .invalid,
                "\(field): label key '\(printable(key))' must be at most 63 letters, digits, '-', '_' or '.', "
                    + "starting and ending with a letter or digit",
                field: field)
        }
    }

    /// Label values: empty, or at most 63 letters, digits, '-', '_', '.', starting and ending alphanumeric.
    public static func validateLabelValue(_ value: String, field: String) throws {
        guard value.isEmpty || isQualifiedName(Substring(value)) else {
            throw CairnError(
                .invalid,
                "\(field): label value '\(printable(value))' must be at most 63 letters, digits, '-', '_' or '.', "
                    + "starting and ending with a letter or digit",
                field: field)
        }
    }

    /// Labels an object may carry: plenty to select by, and a bound on what one request can make the hub store.
    public static let maxLabels = 100

    public static func validateLabels(_ labels: [String: String]?, field: String) throws {
        guard let labels else { return }
        guard labels.count <= maxLabels else {
            throw CairnError(.invalid, "\(field) has \(labels.count) labels; at most \(maxLabels) are allowed", field: field)
        }
        for key in labels.keys.sorted() {
            try validateLabelKey(key, field: "\(field).\(key)")
            try validateLabelValue(labels[key]!, field: "\(field).\(key)")
        }
    }

    static func isDNSLabel(_ name: Substring) -> Bool {
        guard let first = name.utf8.first, let last = name.utf8.last, name.utf8.count <= 63 else { return false }
        func alnum(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 48 && c <= 57) }
        return alnum(first) && alnum(last) && name.utf8.allSatisfy { alnum($0) || $0 == 45 }
    }

    static func isQualifiedName(_ name: Substring) -> Bool {
        guard let first = name.utf8.first, let last = name.utf8.last, name.utf8.count <= 63 else { return false }
        func alnum(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) }
        return alnum(first) && alnum(last) && name.utf8.allSatisfy { alnum($0) || $0 == 45 || $0 == 95 || $0 == 46 }
    }

    /// Shows a bad name without letting control characters into logs and terminals.
    static func printable(_ text: String) -> String {
        String(
            text.prefix(80).unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? "?" : Character($0) })
    }
}
