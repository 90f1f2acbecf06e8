import Histogram
import RegToken
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Verification under load in this process: `threads` threads verify a mix of tokens for
/// `duration` seconds against one shared ``TokenVerifier``, timing each verification into an HDR
/// histogram and checking each decision against the expected one.
public struct InProcessLoadTest: Sendable {
    public var threads: Int
    public var duration: Double
    public var algorithm: Algorithm
    public var cache: Bool
    public var mix: Mix
    /// Called about once a second with (elapsed seconds, operations so far).
    public var progress: (@Sendable (Double, Int) -> Void)?

    public init(threads: Int, duration: Double, algorithm: Algorithm, cache: Bool, mix: Mix, progress: (@Sendable (Double, Int) -> Void)? = nil) {
        self.threads = threads
        self.duration = duration
        self.algorithm = algorithm
        self.cache = cache
        self.mix = mix
        self.progress = progress
    }

    struct Corpus: Sendable {
        var tokens: [Outcome: [[UInt8]]]
        var verifier: TokenVerifier
        var now: Int64
        let region = "eu-west-1"
    }

    /// Keys, a revocation list and tokens for every outcome.
    func makeCorpus() throws -> Corpus {
        let now = Int64(LoadClock.wallSeconds())
        let key = try SigningKey.generate(algorithm, id: "loadtest")
        let issuer = try TokenIssuer(key: key)
        let ring = try KeyRing(keys: [algorithm == .es256 ? (try key.publicKey() ?? key) : key])
        let verifier = TokenVerifier(keys: ring, configuration: VerifierConfiguration(signatureCacheCapacity: cache ? 4096 : 0))
        func issue(_ scope: Scope, _ iat: Int64, _ exp: Int64?, id: UUIDBytes = .random()) throws -> [UInt8] {
            Array(try issuer.issue(TokenClaims(id: id, account: "acme", region: "eu-west-1", scope: scope, issuedAt: iat, expiresAt: exp)).utf8)
        }
        var tokens: [Outcome: [[UInt8]]] = [:]
        tokens[.valid] = try (0..<64).map { _ in try issue(.pushPull, now, now + 86_400) }
        tokens[.expired] = try (0..<16).map { _ in try issue(.pushPull, now - 7200, now - 3600) }
        tokens[.wrongscope] = try (0..<16).map { _ in try issue(.pull, now, now + 86_400) }
        let revokedIDs = (0..<16).map { _ in UUIDBytes.random() }
        tokens[.revoked] = try revokedIDs.map { try issue(.pushPull, now, now + 86_400, id: $0) }
        // A list of 10,000 entries, as a busy issuer would publish.
        let filler = (0..<10_000).map { _ in RevocationList.Entry(id: .random(), expiresAt: now + 86_400) }
        try verifier.install(RevocationList(version: 1, issuedAt: now, entries: revokedIDs.map { .init(id: $0, expiresAt: now + 86_400) } + filler))
        let valid = tokens[.valid]!.first!
        tokens[.malformed] = [Array("not.a.token".utf8), Array(valid.dropLast(3)) + Array("!!!".utf8), Array(repeating: 0x41, count: 300),
                              Array(valid.prefix(valid.count / 2))]
        return Corpus(tokens: tokens, verifier: verifier, now: now)
    }

    public func run() throws -> Report {
        let corpus = try makeCorpus()
        let table = mix.table()
        let shared = Shared()
        final class Result: @unchecked Sendable {
            // Each thread writes only its own element, then the main thread reads after join.
            var histograms: [Histogram<UInt64>]
            var counts: [[Outcome: Int]]
            var wrong: [Int]
            init(_ n: Int) {
                histograms = Array(repeating: Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three), count: n)
                counts = Array(repeating: [:], count: n)
                wrong = Array(repeating: 0, count: n)
            }
        }
        let result = Result(threads)
        var handles: [pthread_t] = []
        let start = LoadClock.nanoseconds()
        for t in 0..<threads {
            let worker = Worker(index: t, corpus: corpus, table: table, shared: shared, result: { h, c, w in
                result.histograms[t] = h
                result.counts[t] = c
                result.wrong[t] = w
            })
            handles.append(try LoadThread.start(worker.run))
        }
        let deadline = start + UInt64(duration * 1e9)
        var lastProgress = start
        while LoadClock.nanoseconds() < deadline {
            usleep(50_000)
            let now = LoadClock.nanoseconds()
            if now - lastProgress >= 1_000_000_000 {
                lastProgress = now
                progress?(Double(now - start) / 1e9, shared.total.load(ordering: .relaxed))
            }
        }
        shared.stop.store(true, ordering: .relaxed)
        for h in handles { pthread_join(h, nil) }
        let elapsed = Double(LoadClock.nanoseconds() - start) / 1e9
        var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        var counts: [String: Int] = [:]
        for i in 0..<threads {
            merged.add(result.histograms[i])
            for (o, n) in result.counts[i] { counts[o.rawValue, default: 0] += n }
        }
        let ops = Int(merged.totalCount)
        return Report(mode: "in-process", threads: threads, connections: nil, algorithm: algorithm.rawValue, cache: cache,
                      mix: mix.description, durationSeconds: elapsed, operations: ops, throughputPerSecond: Double(ops) / elapsed,
                      latencyMicroseconds: Report.percentiles(merged), outcomes: counts, wrongDecisions: result.wrong.reduce(0, +))
    }

    final class Shared: Sendable {
        let stop = Atomic<Bool>(false)
        let total = Atomic<Int>(0)
    }

    struct Worker: Sendable {
        let index: Int
        let corpus: Corpus
        let table: [Outcome]
        let shared: Shared
        let result: @Sendable (Histogram<UInt64>, [Outcome: Int], Int) -> Void

        func run() {
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            var counts: [Outcome: Int] = [:]
            var wrong = 0
            var rng = SplitMix(seed: UInt64(index) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
            let pull = AccessRequest(region: corpus.region, access: .pull)
            let push = AccessRequest(region: corpus.region, access: .push)
            var n = 0
            while true {
                if n & 255 == 0 {
                    if shared.stop.load(ordering: .relaxed) { break }
                    if n > 0 { shared.total.add(256, ordering: .relaxed) }
                }
                n += 1
                let outcome = table[Int(rng.next() % UInt64(table.count))]
                let pool = corpus.tokens[outcome]!
                let token = pool[Int(rng.next() % UInt64(pool.count))]
                let request = outcome == .wrongscope ? push : (rng.next() & 1 == 0 ? pull : push)
                let t0 = LoadClock.nanoseconds()
                let code: TokenError.ErrorCode? = token.withUnsafeBytes { bytes -> TokenError.ErrorCode? in
                    do {
                        _ = try corpus.verifier.verify(bytes: bytes, at: corpus.now, for: request)
                        return nil
                    } catch let error as TokenError {
                        return error.code
                    } catch {
                        return .malformed
                    }
                }
                let t1 = LoadClock.nanoseconds()
                _ = histogram.record(t1 - t0)
                counts[outcome, default: 0] += 1
                if !Self.expected(outcome, code) { wrong += 1 }
            }
            result(histogram, counts, wrong)
        }

        static func expected(_ outcome: Outcome, _ code: TokenError.ErrorCode?) -> Bool {
            switch outcome {
            case .valid: return code == nil
            case .expired: return code == .expired
            case .revoked: return code == .revoked
            case .wrongscope: return code == .insufficientScope
            case .malformed: return code == .malformed || code == .badSignature
            }
        }
    }
}

/// A small, fast, deterministic random generator (SplitMix64) for picking tokens, and for the
/// tests' mutations (the same on every run).
package struct SplitMix {
    var state: UInt64
    package init(seed: UInt64) { state = seed }
    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum LoadClock {
    static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func wallSeconds() -> Int { Int(WallClock.now()) }
}

/// A plain pthread for a worker (not a Swift concurrency task: workers spin on the CPU).
enum LoadThread {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    static func start(_ body: @escaping @Sendable () -> Void) throws -> pthread_t {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw LoadTestError(.system, "cannot start a thread: \(rc)")
        }
        return thread
    }
}

/// Why a load test could not be set up or run.
///
/// Equality is on ``code`` only.
public struct LoadTestError: CodedError {
    /// The class of failure, stable across releases (new codes may be added).
    public struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// A `--mix` that is not outcome=weight pairs with at least one weight above zero.
        public static let invalidMix = ErrorCode(name: "invalid_mix")
        /// The target (a proxy) could not be connected to.
        public static let unreachable = ErrorCode(name: "unreachable")
        /// The system refused a resource (a thread, a socket).
        public static let system = ErrorCode(name: "system")
        public var description: String { name }
    }

    public let code: ErrorCode
    public let reason: String

    public init(_ code: ErrorCode, _ reason: String) {
        self.code = code
        self.reason = reason
    }

}
