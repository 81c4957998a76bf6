/// The one error type of Cairn: a code that maps to an HTTP status, a message that names the object,
/// and the field at fault when there is one.
public struct CairnError: Error, Sendable, Equatable, CustomStringConvertible, Codable {
    public struct Code: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let invalid = Code(rawValue: "Invalid")
        public static let tooLarge = Code(rawValue: "TooLarge")
        public static let notFound = Code(rawValue: "NotFound")
        public static let conflict = Code(rawValue: "Conflict")
        public static let unauthorized = Code(rawValue: "Unauthorized")
        public static let forbidden = Code(rawValue: "Forbidden")
        public static let tokenRejected = Code(rawValue: "TokenRejected")
        public static let bundleRejected = Code(rawValue: "BundleRejected")
        public static let unavailable = Code(rawValue: "Unavailable")
        public static let tooManyRequests = Code(rawValue: "TooManyRequests")
        public static let `internal` = Code(rawValue: "Internal")
    }

    public var code: Code
    public var message: String
    public var field: String?
    /// For 429 and 503: seconds a client should wait before trying again (the Retry-After header, not the body).
    public var retryAfter: Int?

    public init(_ code: Code, _ message: String, field: String? = nil, retryAfter: Int? = nil) {
        self.code = code
        self.message = message
        self.field = field
        self.retryAfter = retryAfter
    }

    enum CodingKeys: String, CodingKey {
        case code, message, field
    }

    public var description: String { message }

    /// The HTTP status this error answers with.
    public var httpStatus: Int {
        switch code {
        case .invalid: return 400
        case .tooLarge: return 413
        case .notFound: return 404
        case .conflict: return 409
        case .unauthorized, .tokenRejected: return 401
        case .forbidden: return 403
        case .unavailable: return 503
        case .tooManyRequests: return 429
        case .bundleRejected: return 422
        default: return 500
        }
    }

    /// The JSON body every error response carries: `{"error": {"code", "message", "field"}}`.
    public struct Body: Codable, Sendable {
        public var error: CairnError
        public init(error: CairnError) { self.error = error }
    }
}
