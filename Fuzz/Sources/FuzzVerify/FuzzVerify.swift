import FuzzSupport
import RegToken

// Token verification. The first byte picks what the rest is:
//   0: a token, verified as it came (the parsers before the signature check, the MAC and the
//      ECDSA path with garbage);
//   1: header JSON, 0xFF, claims JSON, signed with the HS256 key (the JSON parsers and every
//      claim check behind a valid MAC);
//   2: claims JSON under the standard HS256 header, signed;
//   3: claims JSON under the standard ES256 header, signed (the verified-signature cache).
// Invariants: no crash, no memory error; the same bytes give the same answer twice (the second
// ES256 call is a cache hit); an accepted token satisfies what was asked.

private let verifier = Fuzz.verifier()
private let requests = [
    AccessRequest(region: Fuzz.region, access: .pull),
    AccessRequest(region: Fuzz.region, access: .push, namespace: "acme", namespaceOwner: "acme"),
    AccessRequest(region: Fuzz.region, access: .delete, namespace: "globex", namespaceOwner: "globex"),
]
private let hsHeader = Array(#"{"alg":"HS256","kid":"hs-fuzz","typ":"JWT"}"#.utf8)
private let esHeader = Array(#"{"alg":"ES256","kid":"es-fuzz","typ":"JWT"}"#.utf8)

private enum Outcome: Equatable {
    case accepted(VerifiedToken)
    case rejected(TokenError.Code)
}

private func outcome(_ token: [UInt8], _ request: AccessRequest) -> Outcome {
    token.withUnsafeBytes { raw in
        do throws(TokenError) { return .accepted(try verifier.verify(bytes: raw, at: Fuzz.now, for: request)) } catch {
            return .rejected(error.code)
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVerify(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Fuzz.bytes(data, size)
    guard let mode = input.first else { return 0 }
    let rest = input.dropFirst()
    let token: [UInt8]
    switch mode % 4 {
    case 0: token = Array(rest)
    case 1:
        let (header, claims) = Fuzz.split(rest, at: 0xFF)
        token = Array(Fuzz.sign(header: header, payload: claims, with: Fuzz.hsKey).utf8)
    case 2: token = Array(Fuzz.sign(header: hsHeader, payload: rest, with: Fuzz.hsKey).utf8)
    default: token = Array(Fuzz.sign(header: esHeader, payload: rest, with: Fuzz.esKey).utf8)
    }
    for request in requests {
        let first = outcome(token, request)
        let second = outcome(token, request)
        Fuzz.check(first == second, "the same token gave \(first) then \(second)")
        guard case .accepted(let t) = first else { continue }
        Fuzz.check(t.region.description == request.region, "accepted a token for region \(t.region)")
        Fuzz.check(t.scope.allows(request.access), "accepted scope \(t.scope) for \(request.access)")
        Fuzz.check(t.issuedAt <= Fuzz.now + 60, "accepted a token issued in the future")
        Fuzz.check(t.expiresAt.map { Fuzz.now < $0 + 60 } ?? true, "accepted an expired token")
        if let owner = request.namespaceOwner {
            Fuzz.check(t.account.description == owner, "accepted account \(t.account) in \(owner)'s namespace")
        }
    }
    return 0
}
