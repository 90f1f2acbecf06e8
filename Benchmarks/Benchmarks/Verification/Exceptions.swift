// "C only where it pays" (BENCHMARKS.md): every C or unsafe exception of regtoken's verification
// path measured with and without it, in the same run as the HS256 and ES256 verify rows that
// are their paths. An exception stays when what it saves is at least 5 % of its path's row.
//
// "With" calls regtoken's own C through `@_spi(Benchmarks)` (FastPathProbe), its public API, or a
// copy of it in CBenchOpenSSL (the MAC functions, which the library keeps internal); "without" is
// a plain Swift or standard-primitive alternative kept here, in the Benchmarks package only.
// One removed exception is kept here too, as it was, for its row: the hazard-record snapshot
// reads (CBenchOpenSSL).
import Benchmark
import CBenchOpenSSL
import Foundation
import Synchronization
@_spi(Benchmarks) import RegToken

#if canImport(Glibc)
import Glibc
#endif

/// What the rows read through a snapshot: one field of an immutable object.
final class Snapshot: Sendable {
    let value: Int
    init(_ value: Int) { self.value = value }
}

/// regtoken's SnapshotCell read path before (hazard records, the C copy in CBenchOpenSSL), reader
/// side only: no writer runs in these rows.
final class HazardCell<Value: AnyObject & Sendable>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<UInt>

    init(_ value: Value) {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: UInt(bitPattern: Unmanaged.passRetained(value).toOpaque()))
    }

    @inline(__always)
    func read<R>(_ body: (Value) -> R) -> R {
        var hazard: UnsafeMutablePointer<UInt>? = nil
        let bits = CBench_reader_enter(pointer, &hazard)
        precondition(bits != 0, "no reader record")
        defer { if let hazard { CBench_reader_exit(hazard) } }
        return Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: bits).unsafelyUnwrapped)._withUnsafeGuaranteedRef { body($0) }
    }
}

/// A snapshot behind a `Mutex`: a reader copies the reference (a retain) under the lock.
final class MutexCell<Value: AnyObject & Sendable>: Sendable {
    let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }

    @inline(__always)
    func read<R>(_ body: (Value) -> R) -> R {
        let value = mutex.withLock { $0 }
        return body(value)
    }
}

/// A strict base64url decoder in plain Swift (one table, four characters at a time): what
/// regtoken's base64url.c would be without C.
struct PlainBase64URL {
    /// The 6-bit value of each byte, 0xFF for bytes outside the alphabet.
    let table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    /// The decoded length, or -1 when `text` is not canonical base64url or `out` too small.
    func decode(_ text: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) -> Int {
        let n = text.count
        let rem = n % 4
        if rem == 1 { return -1 }
        let need = n / 4 * 3 + (rem == 0 ? 0 : rem - 1)
        guard need <= out.count else { return -1 }
        return table.withUnsafeBufferPointer { t in
            var bad: UInt8 = 0
            var o = 0
            var i = 0
            let full = n - rem
            while i < full {
                let a = t[Int(text[i])], b = t[Int(text[i + 1])], c = t[Int(text[i + 2])], d = t[Int(text[i + 3])]
                bad |= a | b | c | d
                let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                out[o] = UInt8(truncatingIfNeeded: v >> 16)
                out[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
                out[o + 2] = UInt8(truncatingIfNeeded: v)
                i += 4
                o += 3
            }
            if rem >= 2 {
                let a = t[Int(text[full])], b = t[Int(text[full + 1])]
                bad |= a | b
                out[o] = a << 2 | b >> 4
                o += 1
                if rem == 2 {
                    if b & 0x0F != 0 { return -1 }
                } else {
                    let c = t[Int(text[full + 2])]
                    bad |= c
                    if c & 0x03 != 0 { return -1 }
                    out[o] = b << 4 | c >> 2
                    o += 1
                }
            }
            return bad & 0xC0 != 0 ? -1 : o
        }
    }
}

/// The ES256 verified-signature cache as plain Swift would have it: a `Mutex` around a
/// dictionary keyed by a hash of the token bytes and the key, the bytes compared on a hit.
final class MutexSignatureCache: Sendable {
    struct Entry: Sendable {
        let keyUID: UInt64
        let bytes: [UInt8]
    }

    let slots = Mutex<[Int: Entry]>([:])
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func key(_ token: UnsafeRawBufferPointer, _ keyUID: UInt64) -> Int {
        var hasher = Hasher()
        hasher.combine(bytes: token)
        hasher.combine(keyUID)
        return hasher.finalize()
    }

    func contains(_ token: UnsafeRawBufferPointer, keyUID: UInt64) -> Bool {
        let k = key(token, keyUID)
        return slots.withLock { slots in
            guard let entry = slots[k], entry.keyUID == keyUID, entry.bytes.count == token.count else { return false }
            return entry.bytes.withUnsafeBytes { memcmp($0.baseAddress!, token.baseAddress!, token.count) == 0 }
        }
    }

    func insert(_ token: UnsafeRawBufferPointer, keyUID: UInt64) {
        let k = key(token, keyUID)
        let entry = Entry(keyUID: keyUID, bytes: Array(token))
        slots.withLock { slots in
            if slots.count >= capacity { slots.removeAll(keepingCapacity: true) }
            slots[k] = entry
        }
    }
}

func registerExceptionBenchmarks(_ f: Fixture) {
    let tokenParts = f.hsToken.split(separator: ".").map { Array($0.utf8) }
    let signingInput = Array(f.hsToken.utf8.prefix(tokenParts[0].count + 1 + tokenParts[1].count))
    let tag = base64url(Substring(String(decoding: tokenParts[2], as: UTF8.self)))
    let secret = [UInt8](repeating: 0x42, count: 32)
    // The verifier vouches for the header it compared: the prefix check covers the rest.
    let known = tokenParts[0].count

    // ---- HMAC: low-level SHA-256 pad states, the prefix state, the finish ----
    var pads = CBench_HMACPads()
    _ = CBench_hmac_init(&pads, secret, secret.count)
    var prefix = CBench_HMACPrefix()
    _ = CBench_hmac_prefix_init(&prefix, &pads, signingInput)
    let evpMAC = CBench_evp_mac_new(secret, secret.count)
    let evpPads = CBench_evp_md_pads_new(secret, secret.count)
    precondition(CBench_hmac_verify_standard(&pads, &prefix, known, signingInput, signingInput.count, tag) == 1
        && CBench_hmac_verify_by_hand(&pads, &prefix, known, signingInput, signingInput.count, tag) == 1
        && CBench_hmac_verify_by_hand(&pads, nil, 0, signingInput, signingInput.count, tag) == 1
        && CBench_evp_mac_verify(evpMAC, signingInput, signingInput.count, tag) == 1
        && CBench_evp_md_pads_verify(evpPads, signingInput, signingInput.count, tag) == 1, "every MAC must verify the same token")
    Benchmark("C or not: MAC, pad + prefix states, standard finish (SHA256_Final)", configuration: config()) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(CBench_hmac_verify_standard(&pads, &prefix, known, signingInput, signingInput.count, tag)) }
    }
    Benchmark("C or not: MAC, pad + prefix states, finished by hand (regtoken)", configuration: config()) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(CBench_hmac_verify_by_hand(&pads, &prefix, known, signingInput, signingInput.count, tag)) }
    }
    Benchmark("C or not: MAC, pad states, finished by hand, no prefix state", configuration: config()) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(CBench_hmac_verify_by_hand(&pads, nil, 0, signingInput, signingInput.count, tag)) }
    }
    Benchmark("C or not: MAC, EVP_MAC reused context (no low-level SHA-256)", configuration: config()) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(CBench_evp_mac_verify(evpMAC, signingInput, signingInput.count, tag)) }
    }
    Benchmark("C or not: MAC, EVP_MD_CTX_copy_ex pad states (no low-level SHA-256)", configuration: config()) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(CBench_evp_md_pads_verify(evpPads, signingInput, signingInput.count, tag)) }
    }
    // The prefix state on the whole path: a key id of three characters makes a header too short
    // for the 64 bytes, so that key has no prefix state (the token is 5 bytes shorter).
    let shortKey = try! SigningKey(id: "hsb", hmacSecret: secret)
    let shortVerifier = TokenVerifier(keys: try! KeyRing(keys: [shortKey]))
    let shortToken = Array(try! TokenIssuer(key: shortKey).issue(TokenClaims(account: "acme", region: "eu-west-1", scope: .pushPull,
                                                                             issuedAt: f.now, expiresAt: f.now + 86_400)).utf8)
    Benchmark("C or not: HS256 verify, key id of 3 characters (no prefix state)", configuration: config()) { benchmark in
        shortToken.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations { blackHole((try? shortVerifier.verify(bytes: bytes, at: f.now, for: f.request))?.id) }
        }
    }

    // ---- base64url: what a verification decodes (claims and signature) ----
    let plain = PlainBase64URL()
    var decoded = [UInt8](repeating: 0, count: 1024)
    let claimsText = tokenParts[1], signatureText = tokenParts[2]
    claimsText.withUnsafeBytes { c in
        decoded.withUnsafeMutableBytes { out in
            let n = FastPathProbe.base64urlDecode(c, into: out)
            let reference = Array(out.prefix(n))
            precondition(n > 0 && plain.decode(c, into: out) == n && Array(out.prefix(n)) == reference, "both decoders must agree")
        }
    }
    Benchmark("C or not: base64url claims + signature, C tables + AVX2 (regtoken)", configuration: config()) { benchmark in
        claimsText.withUnsafeBytes { c in
            signatureText.withUnsafeBytes { s in
                decoded.withUnsafeMutableBytes { out in
                    for _ in benchmark.scaledIterations {
                        blackHole(FastPathProbe.base64urlDecode(c, into: out) &+ FastPathProbe.base64urlDecode(s, into: out))
                    }
                }
            }
        }
    }
    Benchmark("C or not: base64url claims + signature, plain Swift", configuration: config()) { benchmark in
        claimsText.withUnsafeBytes { c in
            signatureText.withUnsafeBytes { s in
                decoded.withUnsafeMutableBytes { out in
                    for _ in benchmark.scaledIterations { blackHole(plain.decode(c, into: out) &+ plain.decode(s, into: out)) }
                }
            }
        }
    }

    // ---- Snapshot reads: the verifier reads one per verification ----
    let cell = FastPathProbe.SnapshotReads(1)
    let hazardCell = HazardCell(Snapshot(1))
    let mutexCell = MutexCell(Snapshot(1))
    Benchmark("C or not: snapshot read, SnapshotCell (regtoken, Atomic)", configuration: config()) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(cell.read()) }
    }
    Benchmark("C or not: snapshot read, hazard record + membarrier (removed)", configuration: config()) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(hazardCell.read { $0.value }) }
    }
    Benchmark("C or not: snapshot read, Mutex holding a reference", configuration: config()) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(mutexCell.read { $0.value }) }
    }
    // Two threads reading at once, 1,000,000 reads each: what sharing costs.
    let twoThreadRows: [(String, @Sendable () -> Int)] = [
        ("SnapshotCell (regtoken, Atomic)", { @Sendable in cell.read() }),
        ("hazard record + membarrier (removed)", { @Sendable in hazardCell.read { $0.value } }),
        ("Mutex holding a reference", { @Sendable in mutexCell.read { $0.value } }),
    ]
    for (name, read) in twoThreadRows {
        Benchmark("C or not: snapshot read x1M on 2 threads, \(name)", configuration: .init(
            metrics: [.wallClock, .throughput], warmupIterations: 1, scalingFactor: .one,
            maxDuration: quick ? .milliseconds(200) : .seconds(3), maxIterations: quick ? 2 : 40)) { benchmark in
            for _ in benchmark.scaledIterations {
                DispatchQueue.concurrentPerform(iterations: 2) { _ in
                    var sum = 0
                    for _ in 0..<1_000_000 { sum &+= read() }
                    blackHole(sum)
                }
            }
        }
    }

    // ---- ES256: per-thread verification contexts ----
    let parts = f.esToken.split(separator: ".")
    let esInput = Array("\(parts[0]).\(parts[1])".utf8)
    let rawSig = base64url(parts[2])
    let jwk = try! f.esKey.publicJWK()!
    let point = [UInt8(4)] + base64url(Substring(jwk.x!)) + base64url(Substring(jwk.y!))
    let p256 = CBench_p256_context(point)
    var digest = [UInt8](repeating: 0, count: 32)
    CBench_sha256(esInput, esInput.count, &digest)
    var der = [UInt8](repeating: 0, count: 72)
    let derLength = CBench_raw_to_der(rawSig, &der)
    precondition(CBench_p256_verify_fresh_context(p256, digest, der, derLength) == 1, "the fresh context must verify")
    // With: the yardstick row "P-256 verify of the same digest (OpenSSL, reused context)", what
    // regtoken's per-thread contexts (es256.c) do. Without: a context made per call.
    Benchmark("C or not: P-256 verify of the same digest, context made per call (OpenSSL)", configuration: config(.one)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(CBench_p256_verify_fresh_context(p256, digest, der, derLength)) }
    }

    // ---- ES256 verified-signature cache: a hit ----
    let esBytes = Array(f.esToken.utf8)
    let cCache = FastPathProbe.Cache(capacity: 4096, maxTokenBytes: 1024)
    let swiftCache = MutexSignatureCache(capacity: 4096)
    esBytes.withUnsafeBytes { t in
        cCache.insert(t, keyUID: 7)
        swiftCache.insert(t, keyUID: 7)
        precondition(cCache.contains(t, keyUID: 7) && swiftCache.contains(t, keyUID: 7), "both caches must hit")
    }
    Benchmark("C or not: ES256 cache hit, C sequence counters (regtoken)", configuration: config()) { benchmark in
        esBytes.withUnsafeBytes { t in
            for _ in benchmark.scaledIterations { blackHole(cCache.contains(t, keyUID: 7)) }
        }
    }
    Benchmark("C or not: ES256 cache hit, Mutex + Dictionary (Swift)", configuration: config()) { benchmark in
        esBytes.withUnsafeBytes { t in
            for _ in benchmark.scaledIterations { blackHole(swiftCache.contains(t, keyUID: 7)) }
        }
    }
}
