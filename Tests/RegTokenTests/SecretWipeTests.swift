import CRegTokenFastPath
import CRegTokenMallocCounter
import Foundation
import Testing
@testable import RegToken

/// HMAC secrets, their pad states and the verifier's prefix states are wiped before their memory
/// is released: checked at the moment `free` receives the block (the test executable interposes
/// `free`, see CRegTokenMallocCounter), not by reading freed memory.
@Suite("Secrets are wiped on release", .serialized)
struct SecretWipeTests {
    /// Watches the `count` bytes at `address`, runs `release`, and returns what `free` saw: 1 all
    /// zero, 0 not, -1 not freed.
    func seenByFree(_ address: UnsafeRawPointer, _ count: Int, _ release: () -> Void) -> Int32 {
        CRegTokenMallocCounter_watchFree(address, count)
        release()
        return CRegTokenMallocCounter_watchedWasZero()
    }

    /// Holds the only reference to a key or a verifier until told to let go.
    final class Holder<T> {
        var value: T?
        init(_ value: T) { self.value = value }
    }

    static let secret = (0..<32).map { UInt8($0) ^ 0xA5 }

    enum Part { case secret, pads }

    /// Where `part` of an HS256 key lies (read without keeping a reference to it), checked to
    /// hold something other than zeros while the key lives, so that zeros at release mean a wipe.
    static func block(of key: SigningKey, _ part: Part) -> (UnsafeRawPointer, Int)? {
        guard case .hmac(let material) = key.material else { return nil }
        let block = part == .secret
            ? (UnsafeRawPointer(material.secret.baseAddress!), material.secret.count)
            : (UnsafeRawPointer(material.pads), MemoryLayout<CRegTokenFastPath_HMACSHA256Pads>.size)
        guard UnsafeRawBufferPointer(start: block.0, count: block.1).contains(where: { $0 != 0 }) else { return nil }
        return block
    }

    @Test("an HS256 key's secret bytes and pad states are zero when their memory is freed", arguments: [Part.secret, .pads])
    func hmacSecret(_ part: Part) throws {
        let holder = Holder(try SigningKey(id: "hs-wipe", hmacSecret: Self.secret))
        #expect(holder.value?.hmacSecretBytes == Self.secret)
        let (address, count) = try #require(Self.block(of: holder.value!, part))
        #expect(seenByFree(address, count) { holder.value = nil } == 1)
    }

    @Test("a verifier's HMAC prefix state is zero when its memory is freed (key ring replaced, verifier released)")
    func prefixState() throws {
        let key = try SigningKey(id: "hs-wipe-prefix", hmacSecret: Self.secret)
        let size = MemoryLayout<CRegTokenFastPath_HMACSHA256Prefix>.size
        /// The prefix state of the verifier's first key, non-zero while it lives.
        func prefix(_ verifier: TokenVerifier) throws -> UnsafeRawPointer {
            let pointer = try #require(verifier.cell.load().keys[0].hmacPrefix)
            #expect(UnsafeRawBufferPointer(start: pointer, count: size).contains { $0 != 0 })
            return UnsafeRawPointer(pointer)
        }
        let ring = try KeyRing(keys: [key])
        let holder = Holder(TokenVerifier(keys: ring))
        // Replacing the keys releases the old snapshot, and its prefix state with it.
        let first = try prefix(holder.value!)
        #expect(seenByFree(first, size) { holder.value!.replaceKeys(ring) } == 1)
        // Releasing the verifier releases the snapshot in force.
        let second = try prefix(holder.value!)
        #expect(seenByFree(second, size) { holder.value = nil } == 1)
    }
}
