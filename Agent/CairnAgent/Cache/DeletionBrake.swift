import CairnCommon
import Foundation

/// When one bundle would delete too much of the site, the agent holds those deletions (and any that follow)
/// until an administrator releases them: a hub restored from an empty or old database, or one bad write,
/// can never wipe the fleet.
public struct DeletionBrake: Sendable, Codable, Equatable {
    /// The brake trips when bundles delete more than this share of the site's works or objects…
    public var fraction: Double = 0.5
    /// …and more than this many of them…
    public var minimum: Int = 5
    /// …within this many seconds (so deleting one at a time does not slip through).
    public var window: Double = 600

    public init(fraction: Double = 0.5, minimum: Int = 5, window: Double = 600) {
        self.fraction = fraction
        self.minimum = minimum
        self.window = window
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        fraction = try container.decodeIfPresent(Double.self, forKey: .fraction) ?? 0.5
        minimum = try container.decodeIfPresent(Int.self, forKey: .minimum) ?? 5
        window = try container.decodeIfPresent(Double.self, forKey: .window) ?? 600
    }

    public func trips(removing count: Int, of total: Int) -> Bool {
        count > minimum && Double(count) > fraction * Double(total)
    }
}

/// Deletions the agent holds, as it reports them (condition DeletionHeld) and keeps them in its cache.
public struct DeletionHold: Sendable, Codable, Equatable {
    public enum Reason: String, Sendable, Codable {
        /// More than the brake allows in one bundle.
        case massDeletion = "MassDeletion"
        /// A full bundle older than the cached revision: the hub went back in time (restored from a backup).
        case hubWentBack = "HubWentBack"
    }
    /// The bundle revision that tripped the brake (the latest one that added to the hold).
    public var revision: Int64
    public var reason: Reason
    /// Works and objects whose deletion is held.
    public var works: Int
    public var objects: Int
    /// What the brake weighed: how far the site would shrink within its window, from its largest size then.
    public var deletedWorks: Int
    public var totalWorks: Int
    public var deletedObjects: Int
    public var totalObjects: Int

    public init(revision: Int64, reason: Reason, works: Int, objects: Int, deletedWorks: Int, totalWorks: Int, deletedObjects: Int, totalObjects: Int) {
        self.revision = revision
        self.reason = reason
        self.works = works
        self.objects = objects
        self.deletedWorks = deletedWorks
        self.totalWorks = totalWorks
        self.deletedObjects = deletedObjects
        self.totalObjects = totalObjects
    }

    public var message: String {
        let why =
            reason == .hubWentBack
            ? "the hub went back to an older revision"
            : "\(deletedWorks) of \(totalWorks) works and \(deletedObjects) of \(totalObjects) objects would be gone within the brake's window"
        return "holding the deletion of \(works) works and \(objects) objects (revision \(revision)): \(why); "
            + "everything keeps running until an administrator runs cairnctl cluster release-deletions"
    }
}

/// The largest the site was since the brake's window opened (at a deletion): what it shrinks from. Churn —
/// the same work removed and added again — does not add up; a site emptied one work at a time does.
struct DeletionWindow: Codable, Equatable {
    var opened: Double
    var peakWorks: Int
    var peakObjects: Int
}
