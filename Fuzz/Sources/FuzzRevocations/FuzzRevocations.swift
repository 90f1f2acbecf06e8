import FuzzSupport
import RegToken

// The revocation list loader. The first byte picks what the rest is:
//   0: a signed list file, loaded as it came;
//   1: the list's JSON content, signed with the HS256 key under the list's header (the content
//      parser behind a valid signature).
// Invariants: no crash; a list that loads, signed again and reloaded, is the same list; it
// installs into a verifier, which then refuses tokens with its ids as revoked and accepts others.

private let header = Array(#"{"alg":"HS256","kid":"hs-fuzz","typ":"regtoken-revocations+jwt"}"#.utf8)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRevocations(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Fuzz.bytes(data, size)
    guard let mode = input.first else { return 0 }
    let rest = input.dropFirst()
    let file: [UInt8] = mode % 2 == 0 ? Array(rest) : Array(Fuzz.sign(header: header, payload: rest, with: Fuzz.hsKey).utf8)
    guard let list = try? RevocationList(signed: file, keys: Fuzz.ring) else { return 0 }
    let again = Fuzz.must { try RevocationList(signed: try list.signed(with: Fuzz.hsKey), keys: Fuzz.ring) }
    Fuzz.check(again.version == list.version && again.entries == list.entries, "a list changed when signed again")
    let verifier = Fuzz.verifier()
    Fuzz.check((try? verifier.install(list)) != nil, "a loaded list does not install")
    // The verifier now refuses tokens with the listed ids, and only those.
    let issuer = Fuzz.must { try TokenIssuer(key: Fuzz.hsKey) }
    func verdict(_ id: UUIDBytes) -> TokenError.ErrorCode? {
        let token = Fuzz.must { try issuer.issue(TokenClaims(id: id, account: "acme", region: Fuzz.region, scope: .pull,
                                                              issuedAt: Fuzz.now, expiresAt: Fuzz.now + 3600)) }
        do throws(TokenError) { _ = try verifier.verify(token, at: Fuzz.now, for: AccessRequest(region: Fuzz.region, access: .pull)); return nil } catch {
            return error.code
        }
    }
    for entry in list.entries.prefix(8) {
        Fuzz.check(list.contains(entry.id), "the list does not contain its own entry \(entry.id)")
        Fuzz.check(verdict(entry.id) == .revoked, "a listed token id \(entry.id) is not refused as revoked")
    }
    let other = UUIDBytes.random()
    Fuzz.check(list.contains(other) || verdict(other) == nil, "an unlisted token id is refused")
    return 0
}
