import Hummingbird

/// The request context of every hub route. Bodies are capped deliberately: a work's manifests may reach 8 MiB
/// of JSON; anything larger is refused before it is read.
public struct HubRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }
    public var maxUploadSize: Int { 16 * 1024 * 1024 }
}
