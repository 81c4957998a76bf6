// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "cairn",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "cairn-hub", targets: ["cairn-hub"]),
        .executable(name: "cairnctl", targets: ["cairnctl"]),
        .executable(name: "cairn-agent", targets: ["cairn-agent"]),
        .executable(name: "cairn-bench", targets: ["cairn-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        // The vocabulary both sides speak: resource types, validation, selectors, bundle codec, wire messages.
        .target(
            name: "CairnCommon",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Common"
        ),
        // The hub: store, API server, enrolment, lease monitor, bundle builder.
        .target(
            name: "CairnHub",
            dependencies: [
                "CairnCommon",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Hub/CairnHub"
        ),
        // The admin CLI's logic: an HTTP client for the hub API and its output formats.
        .target(
            name: "CairnCtlKit",
            dependencies: [
                "CairnCommon",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Hub/CairnCtlKit"
        ),
        // The agent: cache, puller, reconciler, status reporter, heartbeat, adapters. Never links the hub.
        // How the agent's process uses malloc, set before main (see Agent/CairnMalloc/CairnMalloc.c).
        .target(name: "CairnMalloc", path: "Agent/CairnMalloc"),
        // malloc_trim, which Swift's Glibc module does not declare: the agent returns what each pass freed.
        .target(name: "CairnMemory", path: "Agent/CairnMemory"),
        .target(
            name: "CairnAgent",
            dependencies: [
                "CairnCommon", "CairnMemory",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Agent/CairnAgent"
        ),
        .executableTarget(
            name: "cairn-hub",
            dependencies: ["CairnHub", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Hub/cairn-hub"
        ),
        .executableTarget(name: "cairnctl", dependencies: ["CairnCtlKit"], path: "Hub/cairnctl"),
        .executableTarget(name: "cairn-agent", dependencies: ["CairnAgent", "CairnMalloc"], path: "Agent/cairn-agent"),
        // The benchmark: runs cairn-hub as a child process and simulated sites (the agent's own client code) in itself.
        .target(
            name: "CairnBenchKit",
            dependencies: [
                "CairnCommon", "CairnAgent", "CairnCtlKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Hub/CairnBenchKit"
        ),
        .executableTarget(name: "cairn-bench", dependencies: ["CairnBenchKit"], path: "Hub/cairn-bench"),

        .target(
            name: "CairnTestSupport",
            dependencies: [
                "CairnCommon", "CairnHub", "CairnAgent", "CairnCtlKit",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/CairnTestSupport"
        ),
        .testTarget(
            name: "CairnCommonTests",
            dependencies: ["CairnCommon", "CairnTestSupport", .product(name: "CompressNIO", package: "compress-nio")],
            resources: [.copy("FuzzCorpus")]
        ),
        .testTarget(
            name: "CairnHubTests",
            dependencies: [
                "CairnHub", "CairnTestSupport",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(name: "CairnAgentTests", dependencies: ["CairnAgent", "CairnHub", "CairnTestSupport"]),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "CairnTestSupport", "CairnAgent", "CairnHub",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
