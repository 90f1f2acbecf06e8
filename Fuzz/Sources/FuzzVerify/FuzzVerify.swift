import Foundation
import FuzzSupport
import RegToken

// Token verification. The first byte picks what the rest is:
//   0: a token, verified as it came (the parsers before the signature check, the MAC and the
//      ECDSA path with garbage);
//   1: header JSON, 0xFF, claims JSON, signed with the HS256 key (the JSON parsers and every
//      claim check behind a valid MAC);
//   2: claims JSON under the standard HS256 header, signed;
//   3: claims JSON under the standard ES256 header, signed (the verified-signature cache);
//   4: a repository pattern, 0xFF, a repository name: the rule matcher against a plain
//      recursive reference (Fuzz.referenceMatch).
// Invariants: no crash, no memory error; the same bytes give the same answer twice (the second
// ES256 call is a cache hit); the issuer's header (recognised without parsing) and the same
// header spelled otherwise (parsed) give the same answer; an accepted token satisfies what was
// asked, and Foundation's JSON parser reads the same claims from it (namespaces, nbf, repository
// rules and address ranges included: an accepted token with rules has one matching the asked
// repository with the asked action, one with ranges has one holding the client);
// an accepted HS256 token's signature is what OpenSSL's one-shot HMAC gives (the verifier resumes
// from per-key pad and prefix states).

private let verifier = Fuzz.verifier()
private let requests = [
    AccessRequest(region: Fuzz.region, access: .pull),
    AccessRequest(region: Fuzz.region, access: .push, namespace: "acme", namespaceOwner: "acme"),
    AccessRequest(region: Fuzz.region, access: .delete, namespace: "globex", namespaceOwner: "globex"),
    AccessRequest(region: Fuzz.region, access: .push, namespace: "acme", namespaceOwner: "acme", repository: "acme/ci-build",
                  clientAddress: IPAddress("10.1.2.3")),
    AccessRequest(region: Fuzz.region, access: .pull, namespace: "acme", repository: "acme/base/x/y", clientAddress: IPAddress("2001:db8::1")),
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
    if mode % 5 == 4 {
        matcher(rest)
        return 0
    }
    switch mode % 5 {
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
        let rules = claims["repositories"] as? [String]
        Fuzz.check((rules != nil) == t.isRepositoryRestricted, "repository restriction differs")
        if let rules, let repository = request.repository {
            let allowing = rules.contains { text in
                guard let colon = text.lastIndex(of: ":") else { return false }
                let actions = text[text.index(after: colon)...].split(separator: ",")
                return actions.contains(Substring(request.access.rawValue))
                    && Fuzz.referenceMatch(String(text[..<colon]), repository)
            }
            Fuzz.check(allowing, "accepted \(request.access) on \(repository) with no rule allowing it: \(rules)")
        }
        let ranges = claims["allow_from"] as? [String]
        Fuzz.check((ranges != nil) == t.isAddressRestricted, "address restriction differs")
        if let ranges {
            let client = request.clientAddress
            Fuzz.check(client != nil && ranges.contains { AddressRange($0).map { $0.contains(client!) } ?? false },
                       "accepted a client outside \(ranges)")
        }
    }
    return 0
}

/// Mode 4: the rule matcher against the reference, for a valid pattern and any name.
private func matcher(_ rest: ArraySlice<UInt8>) {
    let (patternBytes, nameBytes) = Fuzz.split(rest, at: 0xFF)
    guard patternBytes.count <= 48, nameBytes.count <= 48 else { return }
    let pattern = String(decoding: patternBytes, as: UTF8.self)
    let name = String(decoding: nameBytes, as: UTF8.self)
    guard let rule = try? RepositoryRule.parse(pattern + ":pull", defaultActions: .pull) else { return }
    let ours = rule.matches(name)
    Fuzz.check(ours == Fuzz.referenceMatch(pattern, name), "\(pattern) against \(name): the matcher says \(ours), the reference \(!ours)")
}
