import Crypto
import Foundation

/// Hex digests, as Cairn stores and compares them.
public enum Hashing {
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// Lower-case hex SHA-256.
    public static func sha256(_ data: some DataProtocol) -> String {
        hex(SHA256.hash(data: data))
    }
}

extension String {
    /// The string as one URL path segment: '/' and anything not allowed in a path are percent-encoded.
    public var pathSegment: String {
        addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? self
    }
}
