import ArgumentParser
import CairnCommon
import Foundation
import Yams

/// `-o table|yaml|json`.
public enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case table, yaml, json
}

enum Printer {
    static func print<T: Encodable>(_ value: T, format: OutputFormat, table: () -> [[String]]) throws {
        switch format {
        case .json:
            Swift.print(try CairnJSON.string(value, pretty: true))
        case .yaml:
            let json = try CairnJSON.decode(JSONValue.self, from: try CairnJSON.encode(value))
            let encoder = YAMLEncoder()
            encoder.options.sortKeys = true
            Swift.print(try encoder.encode(json), terminator: "")
        case .table:
            Swift.print(render(table()), terminator: "")
        }
    }

    /// Aligns rows under their header, two spaces apart.
    static func render(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        var widths = header.map(\.count)
        for row in rows { for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) } }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index] + 2, withPad: " ", startingAt: 0)
            }.joined()
        }.joined(separator: "\n") + "\n"
    }

    static func labels(_ labels: [String: String]?) -> String {
        let text = (labels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        return text.isEmpty ? "-" : text
    }

    static func condition(_ conditions: [Condition]?, _ type: String) -> String {
        conditions?[type: type]?.status ?? "-"
    }

    static func age(_ date: Date?) -> String {
        guard let date else { return "-" }
        let seconds = Int(Date().timeIntervalSince(date))
        if seconds < 120 { return "\(seconds)s" }
        if seconds < 7200 { return "\(seconds / 60)m" }
        if seconds < 172_800 { return "\(seconds / 3600)h" }
        return "\(seconds / 86400)d"
    }
}
