import CairnCommon

/// Whether a live object is available, by the rules of its kind; shared by every adapter.
public enum Availability {
    public struct Verdict: Sendable, Equatable {
        public var status: String
        public var reason: String
        public var message: String
    }

    public static func evaluate(_ live: JSONValue) -> Verdict {
        let kind = live["kind"]?.stringValue ?? ""
        let status = live["status"]
        let generation = live["metadata"]?["generation"]?.intValue ?? 0
        let observed = status?["observedGeneration"]?.intValue ?? generation
        func replicas(_ want: Int64, _ have: Int64, _ noun: String) -> Verdict {
            if observed < generation {
                return Verdict(status: Condition.false, reason: "Progressing", message: "generation \(generation) not yet observed")
            }
            if have >= want {
                return Verdict(status: Condition.true, reason: "MinimumReplicasAvailable", message: "\(have)/\(want) \(noun)")
            }
            return Verdict(status: Condition.false, reason: "Progressing", message: "\(have)/\(want) \(noun)")
        }
        switch kind {
        case "Deployment":
            // Available means the current generation is rolled out: every replica updated and available.
            let want = live["spec"]?["replicas"]?.intValue ?? 1
            let updated = status?["updatedReplicas"]?.intValue ?? 0
            if observed >= generation && updated < want {
                return Verdict(status: Condition.false, reason: "Progressing", message: "\(updated)/\(want) replicas updated")
            }
            return replicas(want, status?["availableReplicas"]?.intValue ?? 0, "replicas available")
        case "ReplicaSet":
            return replicas(live["spec"]?["replicas"]?.intValue ?? 1, status?["availableReplicas"]?.intValue ?? 0, "replicas available")
        case "StatefulSet":
            return replicas(live["spec"]?["replicas"]?.intValue ?? 1, status?["readyReplicas"]?.intValue ?? 0, "replicas ready")
        case "DaemonSet":
            return replicas(status?["desiredNumberScheduled"]?.intValue ?? 0, status?["numberAvailable"]?.intValue ?? 0, "pods available")
        case "Job":
            return condition(live, "Complete", otherwise: "Running")
        case "Pod":
            return condition(live, "Ready", otherwise: "NotReady")
        case "PersistentVolumeClaim":
            let phase = status?["phase"]?.stringValue ?? "Pending"
            return phase == "Bound"
                ? Verdict(status: Condition.true, reason: "Bound", message: "the claim is bound to a volume")
                : Verdict(status: Condition.false, reason: phase, message: "the claim is \(phase)")
        default:
            if let conditions = status?["conditions"]?.arrayValue {
                for type in ["Ready", "Available", "Established"] where conditions.contains(where: { $0["type"]?.stringValue == type }) {
                    return condition(live, type, otherwise: "Not\(type)")
                }
            }
            return Verdict(status: Condition.true, reason: "ResourceExists", message: "the object exists")
        }
    }

    static func condition(_ live: JSONValue, _ type: String, otherwise: String) -> Verdict {
        let found = live["status"]?["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == type }
        if found?["status"]?.stringValue == Condition.true {
            return Verdict(status: Condition.true, reason: type, message: "\(type) is True")
        }
        return Verdict(status: Condition.false, reason: otherwise, message: found?["message"]?.stringValue ?? "\(type) is not True")
    }
}

/// Status feedback values: OCM's well-known status fields per kind, or JSON paths.
public enum Feedback {
    static let wellKnown: [String: [(String, [String])]] = [
        "Deployment": [
            ("ReadyReplicas", ["status", "readyReplicas"]), ("Replicas", ["status", "replicas"]),
            ("AvailableReplicas", ["status", "availableReplicas"]),
        ],
        "StatefulSet": [
            ("ReadyReplicas", ["status", "readyReplicas"]), ("Replicas", ["status", "replicas"]),
            ("AvailableReplicas", ["status", "availableReplicas"]),
        ],
        "DaemonSet": [
            ("NumberReady", ["status", "numberReady"]), ("DesiredNumberScheduled", ["status", "desiredNumberScheduled"]),
            ("NumberAvailable", ["status", "numberAvailable"]),
        ],
        "Job": [("Succeeded", ["status", "succeeded"]), ("Active", ["status", "active"]), ("Failed", ["status", "failed"])],
    ]

    public static func values(for live: JSONValue, rules: [FeedbackRule]) -> [FeedbackValue] {
        var values = [FeedbackValue]()
        for rule in rules {
            switch rule.type {
            case .wellKnownStatus:
                for (name, path) in wellKnown[live["kind"]?.stringValue ?? ""] ?? [] {
                    if let value = live.value(at: path) { values.append(FeedbackValue(name: name, value: value)) }
                }
            case .jsonPaths:
                for path in rule.jsonPaths ?? [] {
                    if let parsed = FeedbackPath(path.path), let value = live.value(at: parsed.segments) {
                        values.append(FeedbackValue(name: path.name, value: value))
                    }
                }
            }
        }
        return values
    }
}
