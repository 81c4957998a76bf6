import Crypto
import Foundation

/// Hex digests, as Cairn stores and compares them.
public enum Hashing {
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        // Not String(format:): that showed in the hub's profile, once per request.
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
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
