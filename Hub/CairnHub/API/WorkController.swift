import CairnCommon
import Foundation
import Hummingbird

/// Administrators' view of works: apply (create or update), read, list, delete.
struct WorkController: Sendable {
    let store: any HubStore
    let auth: Authenticator
    let limits: WorkLimits

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.get("works") { request, _ in
            _ = try await auth.requireAdmin(request, write: false)
            let cluster = request.uri.queryParameters["cluster"].map(String.init)
            return try Response.json(ItemList(items: try await store.works(cluster: cluster)))
        }
        group.get("clusters/:name/works") { request, context in
            _ = try await auth.requireAdmin(request, write: false)
            let cluster = try request.pathParameter("name", context: context)
            return try Response.json(ItemList(items: try await store.works(cluster: cluster)))
        }
        group.get("clusters/:name/works/:work") { request, context in
            _ = try await auth.requireAdmin(request, write: false)
            let cluster = try request.pathParameter("name", context: context)
            let name = try request.pathParameter("work", context: context)
            guard let work = try await store.work(cluster: cluster, name: name) else {
                throw CairnError(.notFound, "work \(name) not found in cluster \(cluster)", field: "name")
            }
            return try Response.json(work)
        }
        group.put("clusters/:name/works/:work") { request, context in
            _ = try await auth.requireAdmin(request, write: true)
            let cluster = try request.pathParameter("name", context: context)
            let name = try request.pathParameter("work", context: context)
            try Names.validateLabel(cluster, field: "cluster")
            var work = try await request.decode(ManifestWork.self, context: context, what: "ManifestWork")
            guard work.metadata.name == name else {
                throw CairnError(.invalid, "metadata.name '\(work.metadata.name)' does not match the path's '\(name)'", field: "metadata.name")
            }
            try work.validate(cluster: cluster, limits: limits)
            work.metadata.namespace = cluster
            let stored = try await store.applyWork(work, cluster: cluster, now: Date())
            return try Response.json(stored, status: stored.generation == 1 ? .created : .ok)
        }
        group.delete("clusters/:name/works/:work") { request, context in
            _ = try await auth.requireAdmin(request, write: true)
            let cluster = try request.pathParameter("name", context: context)
            let name = try request.pathParameter("work", context: context)
            return try Response.json(try await store.deleteWork(cluster: cluster, name: name, now: Date()), status: .accepted)
        }
    }
}
