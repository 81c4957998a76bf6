import Foundation

/// Encodes an `Encodable` into a `JSONValue` tree — every `JSONValue` inside taken whole, dates as RFC 3339
/// text — for `JSONText` to write. Together they give the bytes `CairnJSON`'s JSONEncoder gives (sorted keys,
/// unescaped slashes), at a fraction of its cost on manifests.
final class JSONTreeEncoder: Encoder {
    final class Object {
        var fields: [String: Slot] = [:]
    }

    final class List {
        var items: [Slot] = []
    }

    enum Slot {
        case value(JSONValue)
        case object(Object)
        case list(List)

        var value: JSONValue {
            switch self {
            case .value(let value): value
            case .object(let object): .object(object.fields.mapValues(\.value))
            case .list(let list): .array(list.items.map(\.value))
            }
        }
    }

    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    /// What was encoded here; `store` puts it where it belongs (a super-encoder writes into its parent).
    private(set) var slot: Slot?
    private let store: ((Slot) -> Void)?

    init(codingPath: [any CodingKey], store: ((Slot) -> Void)? = nil) {
        self.codingPath = codingPath
        self.store = store
    }

    private func set(_ slot: Slot) {
        self.slot = slot
        store?(slot)
    }

    static func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        try slot(for: value, codingPath: []).value
    }

    static func slot<T: Encodable>(for value: T, codingPath: [any CodingKey]) throws -> Slot {
        if T.self == JSONValue.self { return .value(value as! JSONValue) }
        if T.self == Date.self { return .value(.string(RFC3339.string(from: value as! Date))) }
        let encoder = JSONTreeEncoder(codingPath: codingPath)
        try value.encode(to: encoder)
        // A value that encodes nothing is an empty object, as JSONEncoder writes it.
        return encoder.slot ?? .object(Object())
    }

    static func double(_ value: Double, _ path: [any CodingKey]) throws -> JSONValue {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: path, debugDescription: "Unable to encode \(value) directly in JSON."))
        }
        return .double(value)
    }

    static func integer<T: FixedWidthInteger>(_ value: T, _ path: [any CodingKey]) throws -> JSONValue {
        guard let exact = Int64(exactly: value) else {
            throw EncodingError.invalidValue(value, .init(codingPath: path, debugDescription: "\(value) does not fit a 64-bit integer."))
        }
        return .int(exact)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object(let object) = slot { return KeyedEncodingContainer(Keyed(object: object, codingPath: codingPath)) }
        let object = Object()
        set(.object(object))
        return KeyedEncodingContainer(Keyed(object: object, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .list(let list) = slot { return Unkeyed(list: list, codingPath: codingPath) }
        let list = List()
        set(.list(list))
        return Unkeyed(list: list, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { Single(encoder: self) }

    struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
        let object: Object
        let codingPath: [any CodingKey]

        mutating func put(_ value: JSONValue, _ key: Key) { object.fields[key.stringValue] = .value(value) }

        mutating func encodeNil(forKey key: Key) throws { put(.null, key) }
        mutating func encode(_ value: Bool, forKey key: Key) throws { put(.bool(value), key) }
        mutating func encode(_ value: String, forKey key: Key) throws { put(.string(value), key) }
        mutating func encode(_ value: Double, forKey key: Key) throws { put(try JSONTreeEncoder.double(value, codingPath + [key]), key) }
        mutating func encode(_ value: Float, forKey key: Key) throws { put(try JSONTreeEncoder.double(Double(value), codingPath + [key]), key) }
        mutating func encode(_ value: Int, forKey key: Key) throws { put(.int(Int64(value)), key) }
        mutating func encode(_ value: Int8, forKey key: Key) throws { put(.int(Int64(value)), key) }
        mutating func encode(_ value: Int16, forKey key: Key) throws { put(.int(Int64(value)), key) }
        mutating func encode(_ value: Int32, forKey key: Key) throws { put(.int(Int64(value)), key) }
        mutating func encode(_ value: Int64, forKey key: Key) throws { put(.int(value), key) }
        mutating func encode(_ value: UInt, forKey key: Key) throws { put(try JSONTreeEncoder.integer(value, codingPath + [key]), key) }
        mutating func encode(_ value: UInt8, forKey key: Key) throws { put(.int(Int64(value)), key) }
        mutating func encode(_ value: UInt16, forKey key: Key) throws { put(.int(Int64(value)), key) }
        mutating func encode(_ value: UInt32, forKey key: Key) throws { put(.int(Int64(value)), key) }
        mutating func encode(_ value: UInt64, forKey key: Key) throws { put(try JSONTreeEncoder.integer(value, codingPath + [key]), key) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
            object.fields[key.stringValue] = try JSONTreeEncoder.slot(for: value, codingPath: codingPath + [key])
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
            let nested = Object()
            object.fields[key.stringValue] = .object(nested)
            return KeyedEncodingContainer(Keyed<NestedKey>(object: nested, codingPath: codingPath + [key]))
        }

        mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
            let nested = List()
            object.fields[key.stringValue] = .list(nested)
            return Unkeyed(list: nested, codingPath: codingPath + [key])
        }

        mutating func superEncoder() -> any Encoder {
            let object = self.object
            return JSONTreeEncoder(codingPath: codingPath) { object.fields["super"] = $0 }
        }

        mutating func superEncoder(forKey key: Key) -> any Encoder {
            let object = self.object
            return JSONTreeEncoder(codingPath: codingPath + [key]) { object.fields[key.stringValue] = $0 }
        }
    }

    struct Unkeyed: UnkeyedEncodingContainer, OneValueAtATime {
        let list: List
        let codingPath: [any CodingKey]
        var count: Int { list.items.count }

        var path: [any CodingKey] { codingPath + [JSONTreeDecoder.Index(list.items.count)] }
        mutating func put(_ value: JSONValue) { list.items.append(.value(value)) }

        mutating func encode<T: Encodable>(_ value: T) throws { list.items.append(try JSONTreeEncoder.slot(for: value, codingPath: path)) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
            let nested = Object()
            let nestedPath = path
            list.items.append(.object(nested))
            return KeyedEncodingContainer(Keyed<NestedKey>(object: nested, codingPath: nestedPath))
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let nested = List()
            let nestedPath = path
            list.items.append(.list(nested))
            return Unkeyed(list: nested, codingPath: nestedPath)
        }

        mutating func superEncoder() -> any Encoder {
            let list = self.list
            let index = list.items.count
            let nestedPath = path
            list.items.append(.value(.null))
            return JSONTreeEncoder(codingPath: nestedPath) { list.items[index] = $0 }
        }
    }

    struct Single: SingleValueEncodingContainer, OneValueAtATime {
        let encoder: JSONTreeEncoder
        var codingPath: [any CodingKey] { encoder.codingPath }

        var path: [any CodingKey] { codingPath }
        func put(_ value: JSONValue) { encoder.set(.value(value)) }

        mutating func encode<T: Encodable>(_ value: T) throws { encoder.set(try JSONTreeEncoder.slot(for: value, codingPath: codingPath)) }
    }
}

/// The unkeyed and single-value containers: each primitive becomes one value, put at `path`.
protocol OneValueAtATime {
    /// Where the next value goes, for errors.
    var path: [any CodingKey] { get }
    mutating func put(_ value: JSONValue)
}

extension OneValueAtATime {
    mutating func encodeNil() throws { put(.null) }
    mutating func encode(_ value: Bool) throws { put(.bool(value)) }
    mutating func encode(_ value: String) throws { put(.string(value)) }
    mutating func encode(_ value: Double) throws { put(try JSONTreeEncoder.double(value, path)) }
    mutating func encode(_ value: Float) throws { put(try JSONTreeEncoder.double(Double(value), path)) }
    mutating func encode(_ value: Int) throws { put(.int(Int64(value))) }
    mutating func encode(_ value: Int8) throws { put(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { put(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { put(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { put(.int(value)) }
    mutating func encode(_ value: UInt) throws { put(try JSONTreeEncoder.integer(value, path)) }
    mutating func encode(_ value: UInt8) throws { put(.int(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { put(.int(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { put(.int(Int64(value))) }
    mutating func encode(_ value: UInt64) throws { put(try JSONTreeEncoder.integer(value, path)) }
}

/// Writes a `JSONValue` as compact JSON text exactly as `CairnJSON`'s JSONEncoder writes it: keys sorted,
/// slashes and non-ASCII left as they are, control characters escaped, whole doubles without ".0".
public enum JSONText {
    public static func bytes(_ value: JSONValue) throws -> [UInt8] {
        var output = [UInt8]()
        output.reserveCapacity(1024)
        try write(value, into: &output)
        return output
    }

    static func write(_ value: JSONValue, into output: inout [UInt8]) throws {
        switch value {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let bool): output.append(contentsOf: (bool ? "true" : "false").utf8)
        case .int(let number): output.append(contentsOf: String(number).utf8)
        case .double(let number):
            guard number.isFinite else {
                throw EncodingError.invalidValue(number, .init(codingPath: [], debugDescription: "Unable to encode \(number) directly in JSON."))
            }
            var text = number.description
            if text.hasSuffix(".0") { text.removeLast(2) }
            output.append(contentsOf: text.utf8)
        case .string(let text): string(text, into: &output)
        case .array(let items):
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                try write(item, into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let fields):
            output.append(UInt8(ascii: "{"))
            for (index, key) in fields.keys.sorted().enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                string(key, into: &output)
                output.append(UInt8(ascii: ":"))
                try write(fields[key]!, into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    private static let hex = Array("0123456789abcdef".utf8)

    static func string(_ text: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var start = 0
            for (index, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
                start = index + 1
                switch byte {
                case UInt8(ascii: "\""): output.append(contentsOf: #"\""#.utf8)
                case UInt8(ascii: "\\"): output.append(contentsOf: #"\\"#.utf8)
                case 0x0A: output.append(contentsOf: #"\n"#.utf8)
                case 0x0D: output.append(contentsOf: #"\r"#.utf8)
                case 0x09: output.append(contentsOf: #"\t"#.utf8)
                case 0x08: output.append(contentsOf: #"\b"#.utf8)
                case 0x0C: output.append(contentsOf: #"\f"#.utf8)
                default: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                }
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<bytes.count]))
        }
        output.append(UInt8(ascii: "\""))
    }
}
