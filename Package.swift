// swift-tools-version:6.1
import PackageDescription

// One module per concern (see README "Layout"):
// - CRegTokenOpenSSL: the system libcrypto (OpenSSL 3), API pinned to 3.0 with deprecated calls compiled out.
// - CRegTokenFastPath: the two measured exceptions in C (HMAC-SHA256 pad states, per-thread ECDSA contexts).
// - RegToken: claims, keys, issuer, verifier, revocation list. Pure: no networking, no database.
let package = Package(
    name: "regtoken",
    products: [
        .library(name: "RegToken", targets: ["RegToken"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CRegTokenOpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "CRegTokenFastPath",
            dependencies: ["CRegTokenOpenSSL"],
            cSettings: [.unsafeFlags(["-O2"])]
        ),
        .target(
            name: "RegToken",
            dependencies: [
                "CRegTokenOpenSSL",
                "CRegTokenFastPath",
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        // Test support: counts the calling thread's heap allocations (interposes malloc in the
        // test executable only).
        .target(name: "CRegTokenMallocCounter", path: "Tests/CRegTokenMallocCounter"),
        .testTarget(
            name: "RegTokenTests",
            dependencies: ["RegToken", "CRegTokenMallocCounter"],
            resources: [.copy("Vectors"), .copy("Interop")]
        ),
    ]
)
