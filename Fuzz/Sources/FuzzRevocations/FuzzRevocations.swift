import FuzzSupport
import RegToken

// The revocation list loader. The first byte picks what the rest is:
//   0: a signed list file, loaded as it came;
//   1: the list's JSON content, signed with the HS256 key under the list's header (the content
//      parser behind a valid signature).
// Invariants: no crash; a list that loads, signed again and reloaded, is the same list, and it
// installs into a verifier whose lookups then agree with it.

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
    for entry in list.entries.prefix(64) {
        Fuzz.check(list.contains(entry.id), "the list does not contain its own entry \(entry.id)")
    }
    return 0
}
