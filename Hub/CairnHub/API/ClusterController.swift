import CairnCommon
import Foundation
import Hummingbird

/// Administrators' view of clusters: list, inspect, approve, deny, label, release held deletions, remove.
struct ClusterController: Sendable {
    let store: any HubStore
    let auth: Authenticator
    let rescheduled: Wakeup

    func addRoutes(to group: RouterGroup<HubRequestContext>) {
        group.get("clusters") { request, _ in
            _ = try await auth.requireAdmin(request, write: false)
            return try Response.json(ItemList(items: try await store.clusters()))
        }
        group.get("clusters/:name") { request, context in
            _ = try await auth.requireAdmin(request, write: false)
            let name = try request.pathParameter("name", context: context)
            guard let cluster = try await store.cluster(named: name) else {
                throw CairnError(.notFound, "cluster \(name) not found", field: "name")
            }
            return try Response.json(cluster)
        }
        group.post("clusters/:name/approve") { request, context in
            _ = try await auth.requireAdmin(request, write: true)
            let name = try request.pathParameter("name", context: context)
            // --renew: a site whose certificate lapsed gets a new one at its next enrolment poll — never silently.
            if request.uri.queryParameters["renew"] == "true" { try await store.allowReissue(cluster: name) }
            let cluster = try await store.setEnrolment(cluster: name, state: .accepted, now: Date())
            await rescheduled.fire()
            return try Response.json(cluster)
        }
        group.post("clusters/:name/deny") { request, context in
            _ = try await auth.requireAdmin(request, write: true)
            let name = try request.pathParameter("name", context: context)
            let cluster = try await store.setEnrolment(cluster: name, state: .denied, now: Date())
            await rescheduled.fire()
            return try Response.json(cluster)
        }
        group.patch("clusters/:name/labels") { request, context in
            _ = try await auth.requireAdmin(request, write: true)
            let name = try request.pathParameter("name", context: context)
            let patch = try await request.decode(LabelPatch.self, context: context, what: "label patch")
            try Names.validateLabels(patch.set, field: "set")
            for (index, key) in (patch.remove ?? []).enumerated() {
                try Names.validateLabelKey(key, field: "remove[\(index)]")
            }
            let cluster = try await store.updateLabels(cluster: name, patch: patch)
            await rescheduled.fire()
            return try Response.json(cluster)
        }
        group.post("clusters/:name/release-deletions") { request, context in
            _ = try await auth.requireAdmin(request, write: true)
            let name = try request.pathParameter("name", context: context)
            _ = try await store.releaseDeletions(cluster: name)
            guard let cluster = try await store.cluster(named: name) else {
                throw CairnError(.notFound, "cluster \(name) not found", field: "name")
            }
            return try Response.json(cluster)
        }
        group.delete("clusters/:name") { request, context in
            _ = try await auth.requireAdmin(request, write: true)
            let name = try request.pathParameter("name", context: context)
            try await store.removeCluster(named: name)
            await rescheduled.fire()
            return Response(status: .noContent)
        }
    }
}
