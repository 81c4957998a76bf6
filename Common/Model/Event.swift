import Foundation

/// Something the hub decided or noticed, for `cairnctl events`.
public struct Event: Codable, Sendable, Equatable {
    public var time: Date
    /// `Placement/web`, `WorkSet/shop`, `ManagedCluster/c1`.
    public var object: String
    public var reason: String
    public var message: String

    public init(time: Date, object: String, reason: String, message: String) {
        self.time = time
        self.object = object
        self.reason = reason
        self.message = message
    }
}
