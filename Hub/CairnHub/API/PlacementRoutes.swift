import CairnCommon
import Foundation
import Hummingbird

/// Placements and the event log.
struct PlacementRoutes: Sendable {
    let store: any HubStore
    let auth: Authenticator
    /// Fired when anything placement decisions depend on changes.
    let rescheduled: Wakeup

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.get("placements") { request, _ in
            _ = try await auth.requireAdmin(request, write: false)
            return try Response.json(ItemList(items: try await store.placements()))
        }
        group.get("placements/:name") { request, context in
            _ = try await auth.requireAdmin(request, write: false)
            let name = try request.pathParameter("name", context: context)
            guard let placement = try await store.placement(named: name) else {
                throw CairnError(.notFound, "placement \(name) not found", field: "name")
            }
            return try Response.json(placement)
        }
        group.put("placements/:name") { request, context in
            _ = try await auth.requireAdmin(request, write: true)
            let name = try request.pathParameter("name", context: context)
            let placement = try await request.decode(Placement.self, context: context, what: "Placement")
            guard placement.name == name else {
                throw CairnError(.invalid, "metadata.name '\(placement.name)' does not match the path's '\(name)'", field: "metadata.name")
            }
            try placement.validate()
            let stored = try await store.applyPlacement(placement, now: Date())
            await rescheduled.fire()
            return try Response.json(stored, status: stored.metadata.generation == 1 && stored.status == nil ? .created : .ok)
        }
        group.delete("placements/:name") { request, context in
            _ = try await auth.requireAdmin(request, write: true)
            try await store.deletePlacement(named: try request.pathParameter("name", context: context))
            await rescheduled.fire()
            return Response(status: .noContent)
        }
        group.get("events") { request, _ in
            _ = try await auth.requireAdmin(request, write: false)
            let object = request.uri.queryParameters["for"].map(String.init)
            let limit = request.uri.queryParameters["limit"].flatMap { Int($0) } ?? 100
            return try Response.json(ItemList(items: try await store.events(object: object, limit: max(1, min(limit, 10_000)))))
        }
        group.put("clusters/:name/taints/:key") { request, context in
            _ = try await auth.requireAdmin(request, write: true)
            let name = try request.pathParameter("name", context: context)
            let key = try request.pathParameter("key", context: context).removingPercentEncoding ?? ""
            var taint = try await request.decode(Taint.self, context: context, what: "taint")
            try Names.validateLabelKey(key, field: "key")
            if let value = taint.value { try Names.validateLabelValue(value, field: "value") }
            guard [Taints.noSelect, Taints.noSelectIfNew].contains(taint.effect) else {
                throw CairnError(.invalid, "effect must be NoSelect or NoSelectIfNew", field: "effect")
            }
            guard !key.hasPrefix("cairn.io/") else {
                throw CairnError(.invalid, "taints under cairn.io/ are the hub's own", field: "key")
            }
            taint.key = key
            let cluster = try await store.setTaint(cluster: name, taint: taint, key: key, now: Date())
            await rescheduled.fire()
            return try Response.json(cluster)
        }
        group.delete("clusters/:name/taints/:key") { request, context in
            _ = try await auth.requireAdmin(request, write: true)
            let name = try request.pathParameter("name", context: context)
            let key = try request.pathParameter("key", context: context).removingPercentEncoding ?? ""
            let cluster = try await store.setTaint(cluster: name, taint: nil, key: key, now: Date())
            await rescheduled.fire()
            return try Response.json(cluster)
        }
    }
}
