import Foundation

/// Random secrets and their stored form (SHA-256 hex). Only hashes are ever stored.
public enum Secrets {
    public static func random(bytes count: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    public static func hash(_ secret: String) -> String {
        Hashing.sha256(Data(secret.utf8))
    }

    /// Compares two hashes in time independent of where they differ.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}

/// Durations as operators write them: 90s, 10m, 24h, 7d, or plain seconds.
extension Duration {
    /// The duration as a number of seconds.
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

public enum Durations {
    public static func seconds(_ text: String, field: String) throws -> Double {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            if let value = Double(text.dropLast(suffix.count)), value >= 0, value.isFinite { return value * factor }
        }
        if let value = Double(text), value >= 0, value.isFinite { return value }
        throw CairnError(.invalid, "\(field) '\(text)' is not a duration like 30s, 10m, 24h or 7d", field: field)
    }
}
