import FuzzSupport
import RegToken
import RegTokenAccess

// The proxy's access decision. The input is the request: a method line, a request-target line,
// then the Authorization header values, one per line. The policy serves eu-west-1 with a
// namespaces file (acme and acme-ci owned by acme, globex by globex).
// Invariants: no crash; a denial has a client-error status (400-405); an allowed request names
// a repository in a namespace the token's account owns (or no repository at all, /v2/), and a
// mount's source namespace is owned by the same account; a denial never quotes the token.

private let verifier = Fuzz.verifier()
private let policy = AccessPolicy(region: Fuzz.region, namespaces: NamespaceMap(owners: ["acme": "acme", "acme-ci": "acme", "globex": "globex"]))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecision(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Fuzz.bytes(data, size)
    let lines = input.split(separator: 0x0A, maxSplits: 2, omittingEmptySubsequences: false)
    guard lines.count >= 2 else { return 0 }
    let method = String(decoding: lines[0], as: UTF8.self)
    let target = String(decoding: lines[1], as: UTF8.self)
    let authorization = lines.count > 2
        ? lines[2].split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        : []
    let decision = policy.decide(method: method, target: target, authorization: authorization, verifier: verifier, now: Fuzz.now)
    switch decision {
    case .deny(let d):
        Fuzz.check((400...405).contains(d.status), "denied with status \(d.status)")
        // The message goes to the client and the access log: never the token.
        // (Unless the method or target, which a message may quote, contain the same text.)
        if case .token(let t) = Credentials.parse(authorization), t.count >= 16 {
            let token = Array(String(decoding: t, as: UTF8.self).utf8)
            if !Fuzz.contains(Array(method.utf8), token) && !Fuzz.contains(Array(target.utf8), token) {
                Fuzz.check(!Fuzz.contains(Array(d.message.utf8), token), "the token in a denial message")
            }
        }
    case .allow(let a):
        if let ns = a.request.namespace {
            Fuzz.check(policy.namespaces.owner(of: ns) == a.account, "allowed \(a.account) into namespace \(ns)")
        } else {
            Fuzz.check(a.request.repository == nil, "a repository without a namespace")
        }
        if let from = a.request.mountFromNamespace {
            Fuzz.check(policy.namespaces.owner(of: from) == a.account, "allowed \(a.account) to mount from \(from)")
        }
    }
    return 0
}
