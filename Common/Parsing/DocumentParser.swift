import Foundation
import Yams

/// Reads multi-document YAML or JSON into JSON values, bounded against size and alias bombs.
public struct DocumentParser: Sendable {
    public var maxInputBytes: Int = 16 * 1024 * 1024
    /// Nodes produced across all documents; YAML aliases count each time they are expanded.
    public var maxNodes: Int = 2_000_000
    public var maxDepth: Int = 64
    public var maxDocuments: Int = 5_000

    public init() {}

    public func parse(_ text: String, source: String = "input") throws -> [JSONValue] {
        guard text.utf8.count <= maxInputBytes else {
            throw CairnError(.tooLarge, "\(source) is larger than \(maxInputBytes) bytes")
        }
        let trimmed = text.drop { $0.isWhitespace }
        if trimmed.first == "{" || trimmed.first == "[" {
            let value = try CairnJSON.decode(JSONValue.self, from: Data(text.utf8), what: source)
            guard value.depth <= maxDepth else {
                throw CairnError(.invalid, "\(source) is nested deeper than \(maxDepth) levels")
            }
            if case .array(let items) = value, items.allSatisfy({ $0.objectValue != nil }) { return items.flatMap(Self.expandList) }
            return Self.expandList(value)
        }
        var budget = maxNodes
        var documents = [JSONValue]()
        do {
            // The sequence stops at a parse error and keeps it in `error` rather than throwing.
            var sequence = try Yams.compose_all(yaml: text)
            while let node = sequence.next() {
                guard documents.count < maxDocuments else {
                    throw CairnError(.tooLarge, "\(source) has more than \(maxDocuments) documents")
                }
                let value = try convert(node, depth: 0, budget: &budget, source: source, document: documents.count)
                if value != .null { documents.append(contentsOf: Self.expandList(value)) }
            }
            if let error = sequence.error { throw error }
        } catch let error as CairnError {
            throw error
        } catch {
            throw CairnError(.invalid, "\(source) is not valid YAML: \(error)")
        }
        return documents
    }

    /// A `v1/List` or `*List` document (kube-prometheus ships ConfigMapList and RoleBindingList) stands for its
    /// items, as kubectl reads it.
    static func expandList(_ document: JSONValue) -> [JSONValue] {
        guard let kind = document["kind"]?.stringValue, kind.hasSuffix("List"), let items = document["items"]?.arrayValue else {
            return [document]
        }
        return items
    }

    private func convert(_ node: Node, depth: Int, budget: inout Int, source: String, document: Int) throws -> JSONValue {
        budget -= 1
        guard budget >= 0 else {
            throw CairnError(
                .tooLarge, "\(source) expands to more than \(maxNodes) nodes (YAML aliases are counted each time they are used)")
        }
        guard depth <= maxDepth else {
            throw CairnError(.invalid, "\(source) document \(document + 1) is nested deeper than \(maxDepth) levels")
        }
        switch node {
        case .scalar(let scalar):
            switch Tag.Name(rawValue: node.tag.rawValue) {
            case .null: return .null
            case .bool: return Bool.construct(from: scalar).map(JSONValue.bool) ?? .string(scalar.string)
            case .int:
                if let value = Int64(scalar.string) { return .int(value) }
                if let value = Int.construct(from: scalar) { return .int(Int64(value)) }
                return .string(scalar.string)
            case .float:
                guard let value = Double.construct(from: scalar) else { return .string(scalar.string) }
                // JSON has no infinity or NaN: `.inf`, `.nan` or 1e309 would be stored as something it cannot hold.
                guard value.isFinite else {
                    throw CairnError(
                        .invalid, "\(source) document \(document + 1) has the number '\(Names.printable(scalar.string))', which JSON cannot hold (quote it to keep it as text)")
                }
                return .double(value)
            default: return .string(scalar.string)
            }
        case .mapping(let mapping):
            var fields = [String: JSONValue]()
            for (key, value) in mapping {
                guard case .scalar(let keyScalar) = key else {
                    throw CairnError(.invalid, "\(source) document \(document + 1) has a mapping key that is not a string")
                }
                if keyScalar.string == "<<" {
                    throw CairnError(.invalid, "\(source) document \(document + 1) uses a YAML merge key ('<<'), which is not supported")
                }
                fields[keyScalar.string] = try convert(value, depth: depth + 1, budget: &budget, source: source, document: document)
            }
            return .object(fields)
        case .sequence(let sequence):
            var items = [JSONValue]()
            for item in sequence {
                items.append(try convert(item, depth: depth + 1, budget: &budget, source: source, document: document))
            }
            return .array(items)
        case .alias:
            throw CairnError(.invalid, "\(source) document \(document + 1) has an unresolved YAML alias")
        }
    }
}
