import CairnCommon
import Foundation
import GRDB

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

extension AgentCache {
    /// The deletions held by the brake, if any.
    public func deletionHold() throws -> DeletionHold? {
        try pool.read { db in try Self.deletionHold(db) }
    }

    static func deletionHold(_ db: Database) throws -> DeletionHold? {
        try meta(db, "deletion_hold").map {
            try CairnJSON.decode(DeletionHold.self, from: Data($0.utf8), what: "deletion hold")
        }
    }

    /// Inside a bundle's commit: releases a hold the bundle releases, keeps the brake's window, and holds this
    /// bundle's deletions when the site would shrink too far within it (or the hub went back in time).
    static func weighDeletions(
        _ db: Database, bundle: WorkBundle, brake: DeletionBrake, regressed: Bool, now: Date, before: (works: Int, objects: Int),
        removed: (works: Int, objects: Int), changed: inout Set<String>
    ) throws {
        var hold = try deletionHold(db)
        var window = try meta(db, "deletion_window").map {
            try CairnJSON.decode(DeletionWindow.self, from: Data($0.utf8), what: "deletion window")
        }
        if let current = hold, let released = bundle.deletionsReleasedThrough, released >= current.revision {
            // Released: every work is looked at again, so what was held is carried out; the window starts over.
            hold = nil
            window = nil
            try db.execute(sql: "DELETE FROM meta WHERE key IN ('deletion_hold', 'deletion_window')")
            changed.formUnion(try String.fetchAll(db, sql: "SELECT name FROM works"))
        }
        if var open = window, now.timeIntervalSince1970 - open.opened <= brake.window {
            open.peakWorks = max(open.peakWorks, before.works)
            open.peakObjects = max(open.peakObjects, before.objects)
            window = open
        } else {
            window = nil
        }
        if removed.works + removed.objects > 0 {
            let weighed = window ?? DeletionWindow(opened: now.timeIntervalSince1970, peakWorks: before.works, peakObjects: before.objects)
            let shrinkWorks = weighed.peakWorks - (before.works - removed.works)
            let shrinkObjects = weighed.peakObjects - (before.objects - removed.objects)
            window = weighed
            if hold != nil || regressed || brake.trips(removing: shrinkWorks, of: weighed.peakWorks) || brake.trips(removing: shrinkObjects, of: weighed.peakObjects) {
                let held = DeletionHold(
                    revision: bundle.revision, reason: regressed ? .hubWentBack : (hold?.reason ?? .massDeletion),
                    works: (hold?.works ?? 0) + removed.works, objects: (hold?.objects ?? 0) + removed.objects,
                    deletedWorks: shrinkWorks, totalWorks: weighed.peakWorks, deletedObjects: shrinkObjects, totalObjects: weighed.peakObjects)
                try setMeta(db, "deletion_hold", try CairnJSON.string(held))
            }
        }
        if let window {
            try setMeta(db, "deletion_window", try CairnJSON.string(window))
        } else {
            try db.execute(sql: "DELETE FROM meta WHERE key = 'deletion_window'")
        }
    }
}
