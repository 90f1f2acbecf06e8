import Foundation
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
// ES256 call is a cache hit); the issuer's header (recognised without parsing) and the same
// header spelled otherwise (parsed) give the same answer; an accepted token satisfies what was
// asked, and Foundation's JSON parser reads the same claims from it (namespaces and nbf included);
// an accepted HS256 token's signature is what OpenSSL's one-shot HMAC gives (the verifier resumes
// from per-key pad and prefix states).

private let verifier = Fuzz.verifier()
private let requests = [
    AccessRequest(region: Fuzz.region, access: .pull),
    AccessRequest(region: Fuzz.region, access: .push, namespace: "acme", namespaceOwner: "acme"),
    AccessRequest(region: Fuzz.region, access: .delete, namespace: "globex", namespaceOwner: "globex"),
]
private let hsHeader = Array(#"{"alg":"HS256","kid":"hs-fuzz","typ":"JWT"}"#.utf8)
private let esHeader = Array(#"{"alg":"ES256","kid":"es-fuzz","typ":"JWT"}"#.utf8)
// The same headers spelled otherwise: never the issuer's bytes, so always the strict parser.
private let hsHeaderParsed = Array(#"{"typ":"JWT","kid":"hs-fuzz","alg":"HS256"}"#.utf8)
private let esHeaderParsed = Array(#"{ "alg":"ES256","kid":"es-fuzz","typ":"JWT"}"#.utf8)

private enum Outcome: Equatable {
    case accepted(VerifiedToken)
    case rejected(TokenError.ErrorCode)
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
    // For modes 2 and 3, the same claims under a header the verifier must parse rather than
    // recognise: the shortcut and the parser must give the same answer.
    var twin: [UInt8]? = nil
    switch mode % 4 {
    case 0: token = Array(rest)
    case 1:
        let (header, claims) = Fuzz.split(rest, at: 0xFF)
        token = Array(Fuzz.sign(header: header, payload: claims, with: Fuzz.hsKey).utf8)
    case 2:
        token = Array(Fuzz.sign(header: hsHeader, payload: rest, with: Fuzz.hsKey).utf8)
        twin = Array(Fuzz.sign(header: hsHeaderParsed, payload: rest, with: Fuzz.hsKey).utf8)
    default:
        token = Array(Fuzz.sign(header: esHeader, payload: rest, with: Fuzz.esKey).utf8)
        twin = Array(Fuzz.sign(header: esHeaderParsed, payload: rest, with: Fuzz.esKey).utf8)
    }
    for request in requests {
        let first = outcome(token, request)
        let second = outcome(token, request)
        Fuzz.check(first == second, "the same token gave \(first) then \(second)")
        if let twin {
            let parsed = outcome(twin, request)
            Fuzz.check(parsed == first, "the issuer's header gave \(first), the same header spelled otherwise \(parsed)")
        }
        guard case .accepted(let t) = first else { continue }
        if t.algorithm == .hs256 {
            Fuzz.check(Fuzz.independentHMACMatches(token, secret: Fuzz.hsKey.hmacSecretBytes ?? []),
                       "accepted an HS256 token whose signature OpenSSL's one-shot HMAC does not give")
        }
        Fuzz.check(t.region.description == request.region, "accepted a token for region \(t.region)")
        Fuzz.check(t.scope.allows(request.access), "accepted scope \(t.scope) for \(request.access)")
        Fuzz.check(t.issuedAt <= Fuzz.now + 60, "accepted a token issued in the future")
        Fuzz.check(t.expiresAt.map { Fuzz.now < $0 + 60 } ?? true, "accepted an expired token")
        if let owner = request.namespaceOwner {
            Fuzz.check(t.account.description == owner, "accepted account \(t.account) in \(owner)'s namespace")
        }
        // What was accepted, read again by an independent parser (Foundation's JSONSerialization):
        // it must parse, and agree on every claim the decision rests on.
        guard let claims = Fuzz.independentClaims(token) else {
            Fuzz.check(false, "accepted claims that JSONSerialization cannot read")
            continue
        }
        Fuzz.check(claims["sub"] as? String == t.account.description, "sub differs: \(claims["sub"] ?? "none") against \(t.account)")
        Fuzz.check(claims["region"] as? String == t.region.description, "region differs")
        Fuzz.check((claims["jti"] as? String)?.lowercased() == t.id.description.lowercased(), "jti differs")
        Fuzz.check((claims["iat"] as? NSNumber)?.int64Value == t.issuedAt, "iat differs")
        Fuzz.check((claims["exp"] as? NSNumber)?.int64Value == t.expiresAt, "exp differs")
        if let nbf = claims["nbf"] as? NSNumber { Fuzz.check(nbf.int64Value - 60 <= Fuzz.now, "accepted a token before its nbf") }
        let namespaces = claims["namespaces"] as? [String]
        Fuzz.check((namespaces != nil) == t.isNamespaceRestricted, "namespace restriction differs")
        if let namespaces, let wanted = request.namespace {
            Fuzz.check(namespaces.contains(wanted), "accepted namespace \(wanted) outside \(namespaces)")
        }
    }
    return 0
}
