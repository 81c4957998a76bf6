import Foundation

/// The one JSON configuration both sides use: sorted keys (deterministic bytes), RFC 3339 dates.
public enum CairnJSON {
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(RFC3339.string(from: date))
        }
        return encoder
    }

    /// Compact text is written from a tree (`JSONTreeEncoder`, `JSONText`): the same bytes as `encoder()`
    /// gives, which work hashes depend on, without Codable's cost on every manifest field.
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> Data {
        if pretty { return try encoder(pretty: true).encode(value) }
        return Data(try bytes(value))
    }

    /// Compact JSON as bytes.
    public static func bytes<T: Encodable>(_ value: T) throws -> [UInt8] {
        try JSONText.bytes(try JSONTreeEncoder.encode(value))
    }

    /// The same bytes as text, for database columns and output.
    public static func string<T: Encodable>(_ value: T, pretty: Bool = false) throws -> String {
        String(decoding: try encode(value, pretty: pretty), as: UTF8.self)
    }

    /// Decodes `T`, turning Codable's errors into a `CairnError` that names the offending field. The text is
    /// parsed once into a tree (`JSONParser`) and `T` read from it: the manifests inside are taken whole.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, what: String = "body") throws -> T {
        let tree: JSONValue
        do {
            tree = try JSONParser.parse(data)
        } catch let failure as JSONParser.Failure {
            throw CairnError(.invalid, "\(what) is not valid JSON: \(failure)", field: nil)
        }
        return try convert(tree, to: type, what: what)
    }

    /// Re-types a JSON value (for example a parsed YAML document) as `T`.
    public static func convert<T: Decodable>(_ value: JSONValue, to type: T.Type, what: String) throws -> T {
        do {
            return try JSONTreeDecoder.decode(type, from: value)
        } catch let error as DecodingError {
            throw CairnError(decoding: error, what: what)
        }
    }
}

/// RFC 3339 timestamps with second precision, as Kubernetes writes them.
public enum RFC3339 {
    public static func string(from date: Date) -> String {
        Date.ISO8601FormatStyle().format(date)
    }

    public static func date(from text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
        return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)
    }
}

extension CairnError {
    init(decoding error: DecodingError, what: String) {
        func path(_ codingPath: [any CodingKey]) -> String {
            var text = ""
            for key in codingPath {
                if let index = key.intValue {
                    text += "[\(index)]"
                } else {
                    text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
                }
            }
            return text
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            self.init(.invalid, "\(what): \(field) is required", field: field)
        case .typeMismatch(let type, let context):
            let field = path(context.codingPath)
            self.init(.invalid, "\(what): \(field.isEmpty ? "document" : field) must be \(Self.describe(type))", field: field)
        case .valueNotFound(let type, let context):
            let field = path(context.codingPath)
            self.init(.invalid, "\(what): \(field) must be \(Self.describe(type)), not null", field: field)
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            let detail = context.underlyingError.map { "\($0)" } ?? context.debugDescription
            if field.isEmpty {
                self.init(.invalid, "\(what) is not valid JSON: \(detail)", field: nil)
            } else {
                self.init(.invalid, "\(what): \(field): \(context.debugDescription)", field: field)
            }
        @unknown default:
            self.init(.invalid, "\(what) is malformed", field: nil)
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type, is Int32.Type: return "an integer"
        case is Bool.Type: return "a boolean"
        case is Double.Type: return "a number"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "a list" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }
}
