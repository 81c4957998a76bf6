/// `k=v` arguments.
public enum KeyValue {
    public static func parse(_ text: String, field: String) throws -> (String, String) {
        guard let equals = text.firstIndex(of: "=") else {
            throw CairnError(.invalid, "\(field) '\(text)' must be key=value", field: field)
        }
        let key = String(text[..<equals]), value = String(text[text.index(after: equals)...])
        try Names.validateLabelKey(key, field: field)
        try Names.validateLabelValue(value, field: field)
        return (key, value)
    }
}
