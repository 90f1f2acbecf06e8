// Verification throughput: regtoken beside jwt-kit 5 and the raw OpenSSL primitives, on the same
// token bytes, in one run. See BENCHMARKS.md for the results and how to read the ratios.
import Benchmark
import CBenchOpenSSL
import Foundation
import JWTKit
import RegToken

// REGTOKEN_BENCH_QUICK=1: a smoke run (CI), a fraction of a second per benchmark.
let quick = ProcessInfo.processInfo.environment["REGTOKEN_BENCH_QUICK"] != nil

func config(_ scale: BenchmarkScalingFactor = .kilo) -> Benchmark.Configuration {
    .init(metrics: [.throughput, .wallClock, .mallocCountTotal, .instructions],
          warmupIterations: quick ? 1 : 3, scalingFactor: scale,
          maxDuration: quick ? .milliseconds(200) : .seconds(3), maxIterations: quick ? 5 : 1_000_000)
}

func base64url(_ s: Substring) -> [UInt8] {
    var t = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while t.count % 4 != 0 { t += "=" }
    return Array(Data(base64Encoded: t) ?? Data())
}

struct RegistryClaims: JWTPayload {
    var jti: IDClaim
    var sub: SubjectClaim
    var region: String
    var scope: String
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }
}

/// The raw primitive beside a verification row: HMAC-SHA256 of `input` from precomputed pad
/// states (OpenSSL, the fixture's 32-byte secret).
func rawHMAC(_ name: String, _ input: [UInt8]) {
    Benchmark(name, configuration: config()) { benchmark in
        var pads = CBench_HMACPads()
        _ = CBench_hmac_init(&pads, [UInt8](repeating: 0x42, count: 32), 32)
        var out = [UInt8](repeating: 0, count: 32)
        for _ in benchmark.scaledIterations {
            CBench_hmac(&pads, input, input.count, &out)
            blackHole(out[0])
        }
    }
}

/// The signing input of a compact JWS (`header.payload`): its bytes before the last '.'.
func signingInput(_ token: String) -> [UInt8] {
    let bytes = Array(token.utf8)
    return Array(bytes[..<(bytes.lastIndex(of: UInt8(ascii: ".")) ?? bytes.endIndex)])
}

/// Runs async set-up to completion before the benchmarks are registered.
func blocking(_ body: @escaping @Sendable () async -> Void) {
    let done = DispatchSemaphore(value: 0)
    Task {
        await body()
        done.signal()
    }
    done.wait()
}

/// The fixture every benchmark shares: keys, tokens, verifiers.
struct Fixture: @unchecked Sendable {
    let now: Int64
    let hsKey: SigningKey
    let esKey: SigningKey
    let hsToken: String
    let esToken: String
    let verifier: TokenVerifier          // revocation list of 0 entries
    let cachedVerifier: TokenVerifier    // ES256 cache on
    let bigListVerifier: TokenVerifier   // revocation list of 100,000 entries
    let request = AccessRequest(region: "eu-west-1", access: .pull)
    /// A token with 8 repository rules, and a request that only the last one allows (every rule tried).
    let rulesToken: String
    let rulesRequest = AccessRequest(region: "eu-west-1", access: .push, namespace: "acme", repository: "acme/services/payments/api")
    /// The same repository asked of the token without rules: the cost of the request's new field alone.
    let repositoryRequest = AccessRequest(region: "eu-west-1", access: .push, namespace: "acme", repository: "acme/services/payments/api")
    let malformed = "eyJhbGciOiJIUzI1NiJ9.not-json.x"
    let badSignature: String
    let expired: String
    let revoked: String

    init() throws {
        let now = Int64(Date().timeIntervalSince1970)
        self.now = now
        hsKey = try SigningKey(id: "hs-bench", hmacSecret: Array(repeating: 0x42, count: 32))
        esKey = try SigningKey.generate(.es256, id: "es-bench")
        let ring = try KeyRing(keys: [hsKey, try esKey.publicKey()!])
        func claims(_ id: UUIDBytes = .random(), iat: Int64? = nil, exp: Int64? = nil) -> TokenClaims {
            TokenClaims(id: id, account: "acme", region: "eu-west-1", scope: .pushPull, issuedAt: iat ?? now,
                        expiresAt: exp ?? now + 86_400, namespaces: nil)
        }
        hsToken = try TokenIssuer(key: hsKey).issue(claims())
        var ruled = claims()
        ruled.repositories = ["acme/ci-*:pull,push", "acme/base/**:pull", "acme/tools/*:pull", "acme/web-*-cache:pull,push",
                              "acme/mirror/**/alpine:pull", "acme/docs:pull", "acme/qa-*/**:pull,push", "acme/services/**/api:pull,push"]
            .map { RepositoryRule(claim: $0)! }
        rulesToken = try TokenIssuer(key: hsKey).issue(ruled)
        esToken = try TokenIssuer(key: esKey).issue(claims())
        badSignature = String(hsToken.dropLast(4)) + (hsToken.hasSuffix("AAAA") ? "BBBA" : "AAAA")
        expired = try TokenIssuer(key: hsKey).issue(claims(iat: now - 7200, exp: now - 3600))
        let revokedID = UUIDBytes.random()
        revoked = try TokenIssuer(key: hsKey).issue(claims(revokedID))
        verifier = TokenVerifier(keys: ring)
        try verifier.install(RevocationList(version: 1, issuedAt: now, entries: [.init(id: revokedID, expiresAt: nil)]))
        cachedVerifier = TokenVerifier(keys: ring, configuration: VerifierConfiguration(signatureCacheCapacity: 4096))
        bigListVerifier = TokenVerifier(keys: ring)
        let entries = (0..<100_000).map { _ in RevocationList.Entry(id: .random(), expiresAt: now + 86_400) }
        try bigListVerifier.install(RevocationList(version: 1, issuedAt: now, entries: entries + [.init(id: revokedID, expiresAt: nil)]))
    }
}

let benchmarks: @Sendable () -> Void = {
    let f = try! Fixture()

    // ---- HS256 ----
    var hsBytes = Array(f.hsToken.utf8)
    Benchmark("HS256 verify (regtoken)", configuration: config()) { benchmark in
        hsBytes.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations { blackHole((try? f.verifier.verify(bytes: bytes, at: f.now, for: f.request))?.id) }
        }
    }
    rawHMAC("HMAC-SHA256 precomputed pads (OpenSSL, same signing input)", signingInput(f.hsToken))
    // Repository rules: a token with 8 (the request allowed by the last), beside the raw HMAC of
    // its own signing input; and the rule-less token asked with a repository.
    var rulesBytes = Array(f.rulesToken.utf8)
    Benchmark("HS256 verify, 8 repository rules (regtoken)", configuration: config()) { benchmark in
        rulesBytes.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations { blackHole((try? f.verifier.verify(bytes: bytes, at: f.now, for: f.rulesRequest))?.id) }
        }
    }
    rawHMAC("HMAC-SHA256 precomputed pads (OpenSSL, signing input of the 8-rule token)", signingInput(f.rulesToken))
    Benchmark("HS256 verify, no rules, repository in the request (regtoken)", configuration: config()) { benchmark in
        hsBytes.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations { blackHole((try? f.verifier.verify(bytes: bytes, at: f.now, for: f.repositoryRequest))?.id) }
        }
    }
    // Set up once, outside the measured closures (a closure runs once per measured iteration when
    // the scaling factor is one).
    let hsKeys = JWTKeyCollection()
    let esKeys = JWTKeyCollection()
    blocking {
        await hsKeys.add(hmac: HMACKey(from: [UInt8](repeating: 0x42, count: 32)), digestAlgorithm: .sha256, kid: "hs-bench")
        await esKeys.add(ecdsa: try! ES256PublicKey(pem: try! f.esKey.publicKeyPEM()), kid: "es-bench")
    }
    Benchmark("HS256 verify (jwt-kit 5)", configuration: config(.one)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? await hsKeys.verify(f.hsToken, as: RegistryClaims.self)) }
    }

    // ---- Rejections (HS256) ----
    for (name, token) in [("malformed", f.malformed), ("bad signature", f.badSignature), ("expired", f.expired), ("revoked", f.revoked)] {
        var bytes = Array(token.utf8)
        Benchmark("HS256 reject \(name) (regtoken)", configuration: config()) { benchmark in
            bytes.withUnsafeBytes { b in
                for _ in benchmark.scaledIterations { blackHole((try? f.verifier.verify(bytes: b, at: f.now, for: f.request))?.id) }
            }
        }
        bytes[0] = bytes[0]
    }

    // ---- Revocation list size ----
    Benchmark("HS256 verify, revocation list of 100,000 (regtoken)", configuration: config()) { benchmark in
        hsBytes.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations { blackHole((try? f.bigListVerifier.verify(bytes: bytes, at: f.now, for: f.request))?.id) }
        }
    }

    // ---- Two threads ----
    // Each iteration verifies 200,000 tokens: on one thread, or 100,000 on each of two.
    for threads in [1, 2] {
        Benchmark("HS256 verify x200k on \(threads) thread(s) (regtoken)", configuration: .init(
            metrics: [.wallClock, .throughput], warmupIterations: 1, scalingFactor: .one,
            maxDuration: quick ? .milliseconds(200) : .seconds(5), maxIterations: quick ? 2 : 40)) { benchmark in
            for _ in benchmark.scaledIterations {
                let per = 200_000 / threads
                DispatchQueue.concurrentPerform(iterations: threads) { _ in
                    var local = Array(f.hsToken.utf8)
                    local.withUnsafeBytes { bytes in
                        for _ in 0..<per { blackHole((try? f.verifier.verify(bytes: bytes, at: f.now, for: f.request))?.id) }
                    }
                    local[0] = local[0]
                }
            }
        }
    }

    // ---- ES256 ----
    let esBytes = Array(f.esToken.utf8)
    Benchmark("ES256 verify, no cache (regtoken)", configuration: config(.one)) { benchmark in
        esBytes.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations { blackHole((try? f.verifier.verify(bytes: bytes, at: f.now, for: f.request))?.id) }
        }
    }
    Benchmark("ES256 verify, cache hit (regtoken)", configuration: config()) { benchmark in
        esBytes.withUnsafeBytes { bytes in
            _ = try? f.cachedVerifier.verify(bytes: bytes, at: f.now, for: f.request)
            for _ in benchmark.scaledIterations { blackHole((try? f.cachedVerifier.verify(bytes: bytes, at: f.now, for: f.request))?.id) }
        }
    }
    let parts = f.esToken.split(separator: ".")
    let esInput = Array("\(parts[0]).\(parts[1])".utf8)
    let rawSig = base64url(parts[2])
    let jwk = try! f.esKey.publicJWK()!
    let point = [UInt8(4)] + base64url(Substring(jwk.x!)) + base64url(Substring(jwk.y!))
    let p256 = CBench_p256_context(point)   // lives as long as the process
    var digest = [UInt8](repeating: 0, count: 32)
    CBench_sha256(esInput, esInput.count, &digest)
    var der = [UInt8](repeating: 0, count: 72)
    let derLength = CBench_raw_to_der(rawSig, &der)
    precondition(p256 != nil && CBench_p256_verify(p256, digest, der, derLength) == 1, "the yardstick must verify the same token")
    Benchmark("P-256 verify of the same digest (OpenSSL, reused context)", configuration: config(.one)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(CBench_p256_verify(p256, digest, der, derLength)) }
    }
    Benchmark("ES256 verify (jwt-kit 5)", configuration: config(.one)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try? await esKeys.verify(f.esToken, as: RegistryClaims.self)) }
    }

    // ---- Issuing ----
    for key in [f.hsKey, f.esKey] {
        let issuer = try! TokenIssuer(key: key)
        Benchmark("issue \(key.algorithm.rawValue) (regtoken)", configuration: config(key.algorithm == .hs256 ? .kilo : .one)) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try? issuer.issue(TokenClaims(account: "acme", region: "eu-west-1", scope: .pull, issuedAt: f.now, expiresAt: f.now + 86_400)))
            }
        }
    }
    hsBytes[0] = hsBytes[0]

    // ---- Each C exception with and without it (Exceptions.swift) ----
    registerExceptionBenchmarks(f)
}
