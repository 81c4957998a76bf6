import AsyncHTTPClient
import CairnCommon
import Foundation
import Logging
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The agent: enrols once, then pulls bundles, reconciles, reports status and heartbeats — each its own loop.
/// With an accepted identity in its cache it starts enforcing at once, hub or no hub.
public final class AgentDaemon: Service, @unchecked Sendable {
    public let configuration: AgentConfiguration
    public let cache: AgentCache
    public let adapter: any ClusterAdapter
    let logger: Logger
    /// The HTTP client calls to the hub go through (`HubConnections`: a new one after a large bundle).
    let connections: HubConnections
    let codec: BundleCodec
    let reconciler: Reconciler
    private let reconcileWakeup = Wakeup()
    let statusWakeup = Wakeup()
    private let pendingLock = NSLock()
    private var pendingApply = Set<String>()
    /// Set when the cache failed verification at start; nothing is applied until a verified full bundle arrives.
    let cacheUntrusted = Mutex<String?>(nil)
    /// Conditions this site reports about itself with every heartbeat.
    let siteConditions = Mutex<[Condition]>([])
    /// Which heartbeats may be left out while polls renew the lease, and what wakes the heartbeat loop early.
    let heartbeats = HeartbeatPacer()
    /// Bundles committed since start, and when the last one was (or the start): what `CodePages` waits out.
    let activity = Mutex<(bundles: Int, at: ContinuousClock.Instant)>((0, .now))

    /// Sets a site condition; true when its status changed (callers log transitions, not repeats).
    @discardableResult
    func report(_ type: String, _ status: String, _ reason: String, _ message: String) -> Bool {
        siteConditions.withLock { conditions in
            let changed = conditions[type: type]?.status != status
            conditions.set(Condition(type: type, status: status, reason: reason, message: message))
            return changed
        }
    }

    /// A client for the hub at `identity`'s URL, its calls bounded by the configured request timeout.
    func hubClient(_ identity: AgentIdentity, tls: TLSConfiguration) -> HubClient {
        HubClient(connections: connections, baseURL: identity.hubURL, tls: tls, timeout: .milliseconds(Int64(configuration.requestTimeout * 1000)))
    }

    /// The client every loop uses and when its certificate expires; replaced when the certificate is renewed.
    let hub = Mutex<(client: HubClient, expiresAt: Date?)?>(nil)
    let renewed = Wakeup()

    /// The hub client, as long as its certificate is valid: a lapsed certificate is never offered (the TLS
    /// handshake would only fail, slowly, inside the HTTP client's connection retries).
    var currentHub: HubClient {
        get throws {
            guard let hub = hub.withLock({ $0 }) else { throw CairnError(.unavailable, "no hub client yet") }
            if let expiresAt = hub.expiresAt, Date() >= expiresAt {
                throw CertificateExpired()
            }
            return hub.client
        }
    }

    struct CertificateExpired: Error, CustomStringConvertible {
        var description: String { "the client certificate has expired; waiting for cairnctl cluster approve --renew" }
    }

    func useClient(for identity: AgentIdentity, key: AgentKey) throws {
        let client = hubClient(identity, tls: try identity.tls(key: key))
        hub.withLock { $0 = (client, identity.certificateWindow?.expiresAt) }
    }

    public init(configuration: AgentConfiguration, adapter: (any ClusterAdapter)? = nil, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        cache = try AgentCache(path: configuration.cachePath)
        if let adapter {
            self.adapter = adapter
        } else {
            self.adapter = try Self.makeAdapter(configuration)
        }
        connections = HubConnections()
        codec = BundleCodec(limits: configuration.bundleLimits)
        reconciler = Reconciler(cache: cache, adapter: self.adapter, logger: logger)
    }

    static func makeAdapter(_ configuration: AgentConfiguration) throws -> any ClusterAdapter {
        switch configuration.adapter {
        case "simulated": return try SimulatedCluster(path: configuration.simulatedClusterPath, configuration: configuration.simulated)
        case "kubernetes":
            let connection = try configuration.kubeconfig.map { try KubeConnection.kubeconfig(path: $0, context: configuration.kubeContext) }
                ?? KubeConnection.inCluster()
            return KubernetesAdapter(connection: connection)
        default: throw CairnError(.invalid, "adapter '\(configuration.adapter)' is not known; use 'simulated' or 'kubernetes'", field: "adapter")
        }
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                let key = try AgentKey.loadOrCreate(path: self.configuration.keyPath)
                let identity = try await self.enrolled(key: key)
                if let problem = try self.cache.verifyState(signingKey: identity.signingKey, cluster: identity.clusterName) {
                    // Never apply what cannot be verified: hold everything and ask the hub for a full bundle.
                    self.logger.error("cache failed verification; waiting for a full bundle", metadata: ["error.message": .string(problem)])
                    self.cacheUntrusted.withLock { $0 = problem }
                    self.report(ConditionType.cacheVerified, Condition.false, "CacheFailedVerification", problem)
                    try self.cache.forgetRevision()
                } else {
                    self.report(ConditionType.cacheVerified, Condition.true, "CacheVerified", "the cache matches the last signed state")
                }
                try self.reportDeletionHold()
                try self.useClient(for: identity, key: key)
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask { try await self.reconcileLoop() }
                    group.addTask { try await self.pullLoop(identity: identity) }
                    group.addTask { try await self.statusLoop(identity: identity) }
                    group.addTask { try await self.heartbeatLoop(identity: identity, key: key) }
                    if let quiet = self.configuration.releaseCodeAfter, quiet > 0 {
                        group.addTask { try await self.codePagesLoop(quiet: quiet) }
                    }
                }
            }
        } catch is CancellationError {
            logger.info("agent stopped")
        } catch {
            await adapter.shutdown()
            await connections.shutdown()
            throw error
        }
        await adapter.shutdown()
        await connections.shutdown()
    }

    // MARK: Loops

    func pullLoop(identity: AgentIdentity) async throws {
        var backoff = Backoff(initial: configuration.backoffInitial, maximum: configuration.backoffMax)
        // Set when a delta did not lead to the signed state (the hub's history is not ours): ask for everything.
        var wantFull = false
        while true {
            do {
                let cached = try cache.revision()
                let since = wantFull ? nil : cached
                let hub = try currentHub
                heartbeats.polling()
                let answer = try await hub.bundle(since: since, wait: configuration.pollWait, identity: identity, maxBytes: configuration.bundleLimits.maxCompressedBytes)
                try cache.recordContact()
                await heartbeats.pollAnswered(heartbeatWanted: answer.heartbeatWanted)
                if case .bundle(let bytes, let digest, let stateDigest, let signature) = answer.bundle {
                    let (bundle, statement) = try BundleVerifier(codec: codec, identity: identity).verify(
                        bytes: bytes, digest: digest, stateDigest: stateDigest, signature: signature, since: since)
                    let wentBack = BundleVerifier.wentBack(bundle, cached: cached)
                    if wentBack {
                        logger.warning(
                            "the hub went back in time; resynchronising fully, its deletions held",
                            metadata: ["bundle.revision": .stringConvertible(bundle.revision), "cache.revision": .stringConvertible(cached ?? 0)])
                    }
                    let changed: Set<String>
                    do {
                        changed = try cache.commit(bundle, statement: statement, signature: signature, brake: configuration.deletionBrake, regressed: wentBack)
                    } catch let error as CairnError where error.code == .bundleRejected && !bundle.isFull {
                        wantFull = true
                        throw error
                    }
                    wantFull = false
                    noteCacheWrite(failure: nil)
                    report(ConditionType.bundleVerified, Condition.true, "BundleVerified", "revision \(bundle.revision) verified and committed")
                    if bundle.isFull, let problem = cacheUntrusted.withLock({ value in defer { value = nil }; return value }) {
                        report(ConditionType.cacheVerified, Condition.true, "RestoredFromHub", "replaced by a verified full bundle after: \(problem)")
                    }
                    try reportDeletionHold()
                    logger.debug("bundle committed", metadata: ["bundle.revision": .stringConvertible(bundle.revision), "bundle.works": .stringConvertible(changed.count)])
                    pendingLock.withLock { pendingApply.formUnion(changed) }
                    activity.withLock { $0 = ($0.bundles + 1, .now) }
                    if configuration.freshConnectionAfter > 0, bytes.count >= configuration.freshConnectionAfter { connections.renew() }
                    FreedMemory.release()
                    await reconcileWakeup.fire()
                    // A deletion of a work this site never had is reported by the commit itself (`AgentCache.commit`).
                    if !bundle.tombstones.isEmpty { await statusWakeup.fire() }
                }
                backoff.reset()
            } catch is CancellationError {
                throw CancellationError()
            } catch is CertificateExpired {
                heartbeats.pollFailed()
                await renewed.wait(timeout: .seconds(5))
            } catch let error as CairnError where error.code == .bundleRejected {
                // Keep running what was last verified; say so to the hub and try again.
                logger.error("bundle rejected", metadata: ["error.message": .string(error.message)])
                report(ConditionType.bundleVerified, Condition.false, "BundleRejected", error.message)
                try await Task.sleep(for: backoff.next())
            } catch {
                noteCacheWrite(failure: error)
                heartbeats.pollFailed()
                logger.warning("bundle pull failed", metadata: ["error.message": .string("\(error)")])
                try await Task.sleep(for: backoff.next(after: error))
            }
        }
    }

    /// Hands back the code pages that starting and each burst of bundles touched, once no bundle came for `quiet`
    /// seconds (see `CodePages`).
    func codePagesLoop(quiet: Double) async throws {
        var pages = CodePages(quiet: quiet)
        while true {
            let (bundles, at) = activity.withLock { $0 }
            let (release, wait) = pages.decide(bundles: bundles, quietFor: (ContinuousClock.now - at).inSeconds)
            if release {
                FreedMemory.release()
                let released = CodePages.release()
                logger.debug("code pages released", metadata: ["mappings": .string(released.map(String.init) ?? "not supported here")])
            }
            try await Task.sleep(for: .seconds(wait))
        }
    }

    /// CacheWritable: False with the first write a full disk refuses, True again with the first that succeeds.
    func noteCacheWrite(failure error: (any Error)?) {
        if let error, AgentCache.isFull(error) {
            if report(ConditionType.cacheWritable, Condition.false, "DiskFull", "the cache cannot be written (database or disk is full); the site runs what it holds, takes no new bundles and queues no statuses until space returns") {
                logger.error("the cache cannot be written: the disk is full; running what it holds", metadata: ["error.message": .string("\(error)")])
            }
        } else if error == nil {
            report(ConditionType.cacheWritable, Condition.true, "CacheWritable", "the cache takes writes")
        }
    }

    /// The DeletionHeld condition, from the cache.
    func reportDeletionHold() throws {
        if let hold = try cache.deletionHold() {
            if report(ConditionType.deletionHeld, Condition.true, hold.reason.rawValue, hold.message) {
                logger.error("deletions held", metadata: ["hold.reason": .string(hold.reason.rawValue), "hold.message": .string(hold.message)])
            }
        } else {
            report(ConditionType.deletionHeld, Condition.false, "NoDeletionHeld", "no deletions held")
        }
    }

    func reconcileLoop() async throws {
        var lastResync = Date.distantPast
        var recheck = 0.05
        var siteBackoff = Backoff(initial: configuration.backoffInitial, maximum: configuration.backoffMax)
        var retryBackoff = Backoff(initial: 1, maximum: max(1, configuration.backoffMax))
        while true {
            try Task.checkCancellation()
            let now = Date()
            let resync = now.timeIntervalSince(lastResync) >= configuration.resyncInterval
            let apply: Set<String>? = resync ? nil : pendingLock.withLock { defer { pendingApply.removeAll() } ; return pendingApply }
            if resync { pendingLock.withLock { pendingApply.removeAll() } }
            var wait = configuration.statusInterval
            if cacheUntrusted.withLock({ $0 }) != nil {
                await reconcileWakeup.wait(timeout: .seconds(1))
                continue
            }
            do {
                let outcome = try await reconciler.reconcile(apply: apply)
                FreedMemory.release()
                if resync { lastResync = now }
                report(ConditionType.siteAPIAvailable, Condition.true, "SiteAPIAnswered", "the site's API answered the last pass")
                siteBackoff.reset()
                if outcome.failing {
                    wait = min(wait, retryBackoff.next().inSeconds)
                } else {
                    retryBackoff.reset()
                }
                if outcome.queuedStatus { await statusWakeup.fire() }
                // Where the adapter watches every object, changes wake this loop and polling stops until resync.
                let wakeup = reconcileWakeup
                let watched = await adapter.watch(outcome.tracked) { Task { await wakeup.fire() } }
                if watched && !outcome.failing {
                    wait = configuration.resyncInterval
                } else if outcome.progressing {
                    wait = min(wait, recheck)
                    recheck = min(recheck * 2, 1)
                } else {
                    recheck = 0.05
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch let error as AdapterError where error.isSiteWide {
                // Keep the desired state in the cache and the last statuses at the hub; say why, and retry.
                if report(ConditionType.siteAPIAvailable, Condition.false, error.reason, error.message) {
                    logger.error("the site's API is not available", metadata: ["error.message": .string(error.message)])
                }
                if let apply { pendingLock.withLock { pendingApply.formUnion(apply) } }
                await reconcileWakeup.wait(timeout: siteBackoff.next())
                continue
            } catch {
                noteCacheWrite(failure: error)
                logger.error("reconcile failed", metadata: ["error.message": .string("\(error)")])
                await reconcileWakeup.wait(timeout: .seconds(1))
                continue
            }
            wait = min(wait, max(0.01, configuration.resyncInterval - Date().timeIntervalSince(lastResync)))
            await reconcileWakeup.wait(timeout: .seconds(wait))
        }
    }

    func statusLoop(identity: AgentIdentity) async throws {
        var backoff = Backoff(initial: configuration.backoffInitial, maximum: configuration.backoffMax)
        while true {
            try Task.checkCancellation()
            var wait = Duration.seconds(30)
            do {
                let batch = try cache.unsent(limit: 100)
                let journal = try cache.journal(limit: 500)
                if !batch.isEmpty || !journal.transitions.isEmpty || journal.dropped > 0 {
                    let report = StatusReport(
                        works: batch.map(\.update), transitions: journal.transitions.isEmpty ? nil : journal.transitions,
                        droppedTransitions: journal.dropped > 0 ? journal.dropped : nil)
                    try await currentHub.report(report, identity: identity)
                    try cache.markSent(batch)
                    try cache.acknowledgeJournal(through: journal.transitions.last?.sequence, dropped: journal.dropped)
                    backoff.reset()
                    // More may be waiting: go again at once.
                    if batch.count == 100 || journal.transitions.count == 500 { continue }
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                noteCacheWrite(failure: error)
                logger.warning("status report failed", metadata: ["error.message": .string("\(error)")])
                wait = backoff.next(after: error)
            }
            await statusWakeup.wait(timeout: wait)
        }
    }

    func heartbeatLoop(identity: AgentIdentity, key: AgentKey) async throws {
        var identity = identity
        var interval = configuration.heartbeatInterval
        var waiting = Backoff(initial: configuration.backoffInitial, maximum: configuration.backoffMax)
        var lastClaims = SiteClaims(claims: [], allocatable: [:])
        while true {
            do {
                try await renewIfDue(&identity, key: key)
                // A full disk is probed for space every heartbeat until it has some again.
                if siteConditions.withLock({ $0[type: ConditionType.cacheWritable]?.status == Condition.false }) {
                    do {
                        try cache.probeSpace()
                        noteCacheWrite(failure: nil)
                    } catch {
                        noteCacheWrite(failure: error)
                    }
                }
                // A site whose API is down is still alive: the heartbeat goes on with the claims last read.
                let claims: SiteClaims
                do {
                    claims = try await adapter.claims()
                    lastClaims = claims
                } catch let error as AdapterError {
                    logger.warning("site claims unavailable", metadata: ["error.message": .string(error.message)])
                    claims = lastClaims
                }
                var all = claims.claims
                all.append(ClusterClaim(name: "agent.version", value: CairnVersion.current))
                let heartbeat = Heartbeat(claims: all, allocatable: claims.allocatable, conditions: siteConditions.withLock { $0 })
                if heartbeats.shouldSend(heartbeat, interval: interval) {
                    let answer = try await currentHub.heartbeat(heartbeat, identity: identity)
                    interval = max(0.1, answer.intervalSeconds)
                    heartbeats.sent(heartbeat, answer: answer)
                }
                waiting.reset()
            } catch is CancellationError {
                throw CancellationError()
            } catch is CertificateExpired {
                // Waiting for an administrator's --renew: ask again on the backoff, not the heartbeat interval.
                try await Task.sleep(for: waiting.next())
                continue
            } catch {
                // A lease is worth renewing soon after a failure, not a whole interval later.
                heartbeats.heartbeatFailed()
                logger.warning("heartbeat failed", metadata: ["error.message": .string("\(error)")])
                let retry = (error as? HubError)?.retryAfter != nil ? waiting.next(after: error) : min(.seconds(interval), waiting.next())
                try await Task.sleep(for: retry)
                continue
            }
            await heartbeats.waitForNext(interval: interval)
            try Task.checkCancellation()
        }
    }
}

public enum CairnVersion {
    public static let current = "0.1.0"
}
