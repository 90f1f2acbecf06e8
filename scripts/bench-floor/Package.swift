// swift-tools-version:6.0
import PackageDescription

// The floor under `scripts/bench-proxy.sh --floor`: a TCP forwarder on SwiftNIO that copies
// bytes both ways and reads nothing of them. Not part of regtoken; built only by that script.
let package = Package(
    name: "bench-floor",
    dependencies: [.package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2")],
    targets: [
        .executableTarget(name: "bench-floor", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
    ]
)
