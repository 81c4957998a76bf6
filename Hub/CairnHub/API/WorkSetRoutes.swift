import CairnCommon
import Foundation
import Hummingbird

/// WorkSets: a template fanned out to a placement's clusters.
struct WorkSetRoutes: Sendable {
    let store: any HubStore
    let auth: Authenticator
    let rollout: Wakeup

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.get("worksets") { request, _ in
            _ = try await auth.requireAdmin(request, write: false)
            return try Response.json(ItemList(items: try await store.workSets()))
        }
        group.get("worksets/:name") { request, context in
            _ = try await auth.requireAdmin(request, write: false)
            let name = try request.pathParameter("name", context: context)
            guard let workSet = try await store.workSet(named: name) else { throw CairnError(.notFound, "workset \(name) not found", field: "name") }
            return try Response.json(workSet)
        }
        group.put("worksets/:name") { request, context in
            _ = try await auth.requireAdmin(request, write: true)
            let name = try request.pathParameter("name", context: context)
            let workSet = try await request.decode(WorkSet.self, context: context, what: "WorkSet")
            guard workSet.name == name else {
                throw CairnError(.invalid, "metadata.name '\(workSet.name)' does not match the path's '\(name)'", field: "metadata.name")
            }
            try workSet.validate()
            let stored = try await store.applyWorkSet(workSet, now: Date())
            await rollout.fire()
            return try Response.json(stored, status: stored.status == nil ? .created : .ok)
        }
        group.delete("worksets/:name") { request, context in
            _ = try await auth.requireAdmin(request, write: true)
            let name = try request.pathParameter("name", context: context)
            guard try await store.workSet(named: name) != nil else { throw CairnError(.notFound, "workset \(name) not found", field: "name") }
            // Its works leave every cluster (through the agents, so objects are removed or orphaned as they say).
            for cluster in try await store.works(ofWorkSet: name).keys.sorted() {
                _ = try await store.deleteWork(cluster: cluster, name: name, now: Date())
            }
            try await store.deleteWorkSet(named: name)
            return Response(status: .noContent)
        }
    }
}
