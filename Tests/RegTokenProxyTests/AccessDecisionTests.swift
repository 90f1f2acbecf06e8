import Foundation
import RegToken
import RegTokenAccess
import RegTokenProxy
import RegTokenProxyCore
import Testing

/// The access decision as a pure function: method, path, query and credentials against the
/// expected decision, for every rule of the proxy.
@Suite("The proxy's access decision")
struct AccessDecisionTests {
    static let now: Int64 = 1_800_000_000
    static let key = try! SigningKey.generate(.es256, id: "es-1")
    static let verifier: TokenVerifier = {
        let v = TokenVerifier(keys: try! KeyRing(keys: [try! key.publicKey()!]))
        try! v.install(RevocationList(version: 1, issuedAt: now, entries: [.init(id: revokedID, expiresAt: nil)]))
        return v
    }()
    static let revokedID = UUIDBytes.random()

    static func token(account: String = "acme", region: String = "eu-west-1", scope: Scope = .pull, expiresAt: Int64? = now + 3600,
                      namespaces: [String]? = nil, id: UUIDBytes = .random(), issuedAt: Int64 = now) -> String {
        try! TokenIssuer(key: key).issue(TokenClaims(id: id, account: account, region: region, scope: scope, issuedAt: issuedAt,
                                                     expiresAt: expiresAt, namespaces: namespaces))
    }

    static func basic(_ token: String, user: String = "token") -> String {
        "Basic " + Data("\(user):\(token)".utf8).base64EncodedString()
    }

    static let ro = token()
    static let rw = token(scope: .pushPull)
    static let rwd = token(scope: .pushPullDelete)
    static let globex = token(account: "globex", scope: .pushPull)
    static let limited = token(scope: .pushPull, namespaces: ["acme-ci"])
    static let forever = token(scope: .pushPull, expiresAt: nil)

    static let policy = AccessPolicy(region: "eu-west-1", namespaces: try! NamespaceMap.parse("""
        # namespace account
        acme acme
        acme-ci acme
        globex globex
        """))

    struct Case: CustomTestStringConvertible, Sendable {
        let method: String
        let target: String
        let auth: [String]
        /// nil: allowed; else (status, Docker code, reason).
        let expected: (Int, String, DenyReason)?
        var access: Access? = nil
        var policy: AccessPolicy = AccessDecisionTests.policy
        var testDescription: String { "\(method) \(target) \(auth.first.map { String($0.prefix(12)) } ?? "-")" }
    }

    static let d = "sha256:" + String(repeating: "a", count: 64)

    static let cases: [Case] = [
        // Pull rights: /v2/, manifests, blobs, tags, referrers.
        Case(method: "GET", target: "/v2/", auth: [basic(ro)], expected: nil, access: .pull),
        Case(method: "GET", target: "/v2", auth: [basic(ro)], expected: nil, access: .pull),
        Case(method: "HEAD", target: "/v2/acme/app/manifests/v1", auth: [basic(ro)], expected: nil, access: .pull),
        Case(method: "GET", target: "/v2/acme/app/manifests/\(d)", auth: ["Bearer \(ro)"], expected: nil, access: .pull),
        Case(method: "GET", target: "/v2/acme/team/app/blobs/\(d)", auth: [basic(ro)], expected: nil, access: .pull),
        Case(method: "HEAD", target: "/v2/acme/app/blobs/\(d)", auth: [basic(ro)], expected: nil, access: .pull),
        Case(method: "GET", target: "/v2/acme/app/tags/list?n=10&last=v1", auth: [basic(ro)], expected: nil, access: .pull),
        Case(method: "GET", target: "/v2/acme/app/referrers/\(d)", auth: [basic(ro)], expected: nil, access: .pull),
        // Push rights: uploads and manifests.
        Case(method: "POST", target: "/v2/acme/app/blobs/uploads/", auth: [basic(ro)], expected: (403, "DENIED", .pullOnly)),
        Case(method: "POST", target: "/v2/acme/app/blobs/uploads/", auth: [basic(rw)], expected: nil, access: .push),
        Case(method: "PATCH", target: "/v2/acme/app/blobs/uploads/3f1c-aa_b=?_state=xyz", auth: [basic(rw)], expected: nil, access: .push),
        Case(method: "PUT", target: "/v2/acme/app/blobs/uploads/3f1c?_state=xyz&digest=\(d)", auth: [basic(rw)], expected: nil, access: .push),
        Case(method: "GET", target: "/v2/acme/app/blobs/uploads/3f1c", auth: [basic(rw)], expected: nil, access: .push),
        Case(method: "DELETE", target: "/v2/acme/app/blobs/uploads/3f1c", auth: [basic(rw)], expected: nil, access: .push),
        Case(method: "PUT", target: "/v2/acme/app/manifests/v1", auth: [basic(rw)], expected: nil, access: .push),
        Case(method: "PUT", target: "/v2/acme/app/manifests/v1", auth: [basic(ro)], expected: (403, "DENIED", .pullOnly)),
        Case(method: "PATCH", target: "/v2/acme/app/blobs/uploads/3f1c", auth: [basic(ro)], expected: (403, "DENIED", .pullOnly)),
        // Deleting manifests and blobs is a right of its own.
        Case(method: "DELETE", target: "/v2/acme/app/manifests/\(d)", auth: [basic(rw)], expected: (403, "DENIED", .deleteNotAllowed)),
        Case(method: "DELETE", target: "/v2/acme/app/manifests/\(d)", auth: [basic(rwd)], expected: nil, access: .delete),
        Case(method: "DELETE", target: "/v2/acme/app/blobs/\(d)", auth: [basic(rw)], expected: (403, "DENIED", .deleteNotAllowed)),
        // Cross-repository mount: pull on the source too.
        Case(method: "POST", target: "/v2/acme/app/blobs/uploads/?mount=\(d)&from=acme%2Fbase", auth: [basic(rw)], expected: nil, access: .push),
        Case(method: "POST", target: "/v2/acme/app/blobs/uploads/?mount=\(d)&from=globex%2Fsecret", auth: [basic(rw)], expected: (403, "DENIED", .namespaceNotOwned)),
        Case(method: "POST", target: "/v2/acme-ci/app/blobs/uploads/?mount=\(d)&from=acme%2Fbase", auth: [basic(limited)], expected: (403, "DENIED", .namespaceNotAllowed)),
        Case(method: "POST", target: "/v2/acme/app/blobs/uploads/?mount=\(d)&from=nowhere%2Fx", auth: [basic(rw)], expected: (403, "DENIED", .namespaceUnknown)),
        // Namespaces: owned by another account, unknown, outside the token's list.
        Case(method: "GET", target: "/v2/globex/app/manifests/v1", auth: [basic(ro)], expected: (403, "DENIED", .namespaceNotOwned)),
        Case(method: "GET", target: "/v2/globex/app/manifests/v1", auth: [basic(globex)], expected: nil, access: .pull),
        Case(method: "GET", target: "/v2/initech/app/manifests/v1", auth: [basic(ro)], expected: (403, "DENIED", .namespaceUnknown)),
        Case(method: "GET", target: "/v2/acme-ci/app/manifests/v1", auth: [basic(limited)], expected: nil, access: .pull),
        Case(method: "GET", target: "/v2/acme/app/manifests/v1", auth: [basic(limited)], expected: (403, "DENIED", .namespaceNotAllowed)),
        Case(method: "GET", target: "/v2/acme/app/manifests/v1", auth: [basic(ro)], expected: nil, access: .pull,
             policy: AccessPolicy(region: "eu-west-1")),  // default map: each account owns its own name
        Case(method: "GET", target: "/v2/acmeco/app/manifests/v1", auth: [basic(ro)], expected: (403, "DENIED", .namespaceNotOwned),
             policy: AccessPolicy(region: "eu-west-1")),
        // The catalog would list other accounts' repositories.
        Case(method: "GET", target: "/v2/_catalog", auth: [basic(ro)], expected: (403, "DENIED", .catalog)),
        Case(method: "GET", target: "/v2/_catalog?n=100", auth: [basic(rw)], expected: (403, "DENIED", .catalog)),
        Case(method: "GET", target: "/v2/_catalog", auth: [], expected: (401, "UNAUTHORIZED", .missingCredentials)),
        // Credentials.
        Case(method: "GET", target: "/v2/", auth: [], expected: (401, "UNAUTHORIZED", .missingCredentials)),
        Case(method: "GET", target: "/v2/", auth: ["Basic Og=="], expected: (401, "UNAUTHORIZED", .missingCredentials)),
        Case(method: "GET", target: "/v2/", auth: [basic(ro, user: "admin")], expected: (401, "UNAUTHORIZED", .badCredentials)),
        Case(method: "GET", target: "/v2/", auth: [basic("", user: "token")], expected: (401, "UNAUTHORIZED", .badCredentials)),
        Case(method: "GET", target: "/v2/", auth: ["Basic !!!"], expected: (401, "UNAUTHORIZED", .badCredentials)),
        Case(method: "GET", target: "/v2/", auth: ["Digest abc"], expected: (401, "UNAUTHORIZED", .badCredentials)),
        Case(method: "GET", target: "/v2/", auth: [basic(ro), basic(rw)], expected: (401, "UNAUTHORIZED", .badCredentials)),
        Case(method: "GET", target: "/v2/", auth: ["bearer \(ro)"], expected: nil, access: .pull),
        Case(method: "GET", target: "/v2/", auth: [basic("garbage")], expected: (401, "UNAUTHORIZED", .malformed)),
        Case(method: "GET", target: "/v2/", auth: [basic(token(expiresAt: now - 3600, issuedAt: now - 7200))], expected: (401, "UNAUTHORIZED", .expired)),
        Case(method: "GET", target: "/v2/", auth: [basic(token(id: revokedID))], expected: (401, "UNAUTHORIZED", .revoked)),
        Case(method: "GET", target: "/v2/", auth: [basic(token(region: "us-east-1"))], expected: (403, "DENIED", .wrongRegion)),
        Case(method: "GET", target: "/v2/", auth: [basic(try! TokenIssuer(key: SigningKey.generate(.es256, id: "es-2")).issue(TokenClaims(account: "acme", region: "eu-west-1", scope: .pull, issuedAt: now, expiresAt: nil)))],
             expected: (401, "UNAUTHORIZED", .unknownKey)),
        // Stale revocation list: non-expiring tokens fail closed, expiring ones still work.
        Case(method: "GET", target: "/v2/", auth: [basic(forever)], expected: (401, "UNAUTHORIZED", .staleRevocations),
             policy: AccessPolicy(region: "eu-west-1", revocationsStale: true)),
        Case(method: "GET", target: "/v2/", auth: [basic(rw)], expected: nil, access: .pull, policy: AccessPolicy(region: "eu-west-1", revocationsStale: true)),
        Case(method: "GET", target: "/v2/", auth: [basic(forever)], expected: nil, access: .pull),
        // Paths that could mean two things: 400, before credentials are even looked at.
        Case(method: "GET", target: "/v2/acme/../globex/app/manifests/v1", auth: [basic(ro)], expected: (400, "UNSUPPORTED", .ambiguousPath)),
        Case(method: "GET", target: "/v2/acme/./app/manifests/v1", auth: [], expected: (400, "UNSUPPORTED", .ambiguousPath)),
        Case(method: "GET", target: "/v2/acme//app/manifests/v1", auth: [basic(ro)], expected: (400, "UNSUPPORTED", .ambiguousPath)),
        Case(method: "GET", target: "/v2/acme%2Fapp/manifests/v1", auth: [basic(ro)], expected: (400, "UNSUPPORTED", .ambiguousPath)),
        Case(method: "GET", target: "/v2/acme%2fapp/manifests/v1", auth: [basic(ro)], expected: (400, "UNSUPPORTED", .ambiguousPath)),
        Case(method: "GET", target: "/v2/acme/%2E%2E/globex/manifests/v1", auth: [basic(ro)], expected: (400, "UNSUPPORTED", .ambiguousPath)),
        Case(method: "GET", target: "/v2/acme/%2e/app/manifests/v1", auth: [basic(ro)], expected: (400, "UNSUPPORTED", .ambiguousPath)),
        Case(method: "GET", target: "/v2/acme/app%5C..%5Cx/manifests/v1", auth: [basic(ro)], expected: (400, "UNSUPPORTED", .ambiguousPath)),
        Case(method: "GET", target: "/v2/acme/app/manifests/v1#x", auth: [basic(ro)], expected: (400, "UNSUPPORTED", .ambiguousPath)),
        Case(method: "GET", target: "/v2/acme/app/manifests/v1/", auth: [basic(ro)], expected: (400, "UNSUPPORTED", .ambiguousPath)),
        Case(method: "GET", target: "/v2/acme/app/manifests/%76%31", auth: [basic(ro)], expected: nil, access: .pull),
        Case(method: "POST", target: "/v2/acme/app/blobs/uploads/?mount=\(d)&from=acme%2Fbase&from=globex%2Fx", auth: [basic(rw)], expected: (400, "UNSUPPORTED", .ambiguousPath)),
        Case(method: "GET", target: "/v2/acme/app/manifests/v1%00", auth: [basic(ro)], expected: (400, "UNSUPPORTED", .ambiguousPath)),
        // Names outside the grammar, paths outside the API, methods outside the rights.
        Case(method: "GET", target: "/v2/Acme/app/manifests/v1", auth: [basic(ro)], expected: (400, "NAME_INVALID", .invalidName)),
        Case(method: "GET", target: "/v2/acme/app/manifests/-v1", auth: [basic(ro)], expected: (400, "NAME_INVALID", .invalidName)),
        Case(method: "GET", target: "/v2/acme/app/blobs/notadigest", auth: [basic(ro)], expected: (400, "NAME_INVALID", .invalidName)),
        Case(method: "GET", target: "/v1/acme/app", auth: [basic(ro)], expected: (404, "UNSUPPORTED", .notFound)),
        Case(method: "GET", target: "/", auth: [basic(ro)], expected: (404, "UNSUPPORTED", .notFound)),
        Case(method: "GET", target: "/v2/acme/app/other/thing", auth: [basic(ro)], expected: (404, "UNSUPPORTED", .notFound)),
        Case(method: "POST", target: "/v2/acme/app/manifests/v1", auth: [basic(rw)], expected: (405, "UNSUPPORTED", .methodNotAllowed)),
        Case(method: "PUT", target: "/v2/", auth: [basic(rw)], expected: (405, "UNSUPPORTED", .methodNotAllowed)),
        Case(method: "TRACE", target: "/v2/acme/app/tags/list", auth: [basic(rw)], expected: (405, "UNSUPPORTED", .methodNotAllowed)),
    ]

    @Test("decision table", arguments: cases)
    func table(_ c: Case) {
        let decision = c.policy.decide(method: c.method, target: c.target, authorization: c.auth, verifier: Self.verifier, now: Self.now)
        switch (decision, c.expected) {
        case (.allow(let a), nil):
            #expect(a.access == c.access)
        case (.deny(let d), let e?):
            #expect(d.status == e.0)
            #expect(d.code == e.1)
            #expect(d.reason == e.2)
            #expect(!d.message.isEmpty)
        case (.allow, let e?):
            Issue.record("allowed, expected \(e.0) \(e.2)")
        case (.deny(let d), nil):
            Issue.record("denied \(d.status) \(d.reason): \(d.message)")
        }
    }

    @Test("messages name the reason; no message contains a token")
    func messages() {
        func message(_ target: String, _ auth: [String], method: String = "GET") -> String {
            guard case .deny(let d) = Self.policy.decide(method: method, target: target, authorization: auth, verifier: Self.verifier, now: Self.now) else { return "" }
            return d.message
        }
        #expect(message("/v2/acme/app/manifests/v1", [Self.basic(Self.ro)], method: "PUT") == "token is pull-only for acme/app")
        #expect(message("/v2/", [Self.basic(Self.token(expiresAt: Self.now - 100, issuedAt: Self.now - 200))]) == "token expired")
        #expect(message("/v2/", [Self.basic(Self.token(id: Self.revokedID))]) == "token revoked")
        #expect(message("/v2/globex/x/manifests/v1", [Self.basic(Self.ro)]).contains("not owned by the token's account"))
        #expect(message("/v2/", [Self.basic(Self.token(region: "us-east-1"))]).contains("another region"))
        #expect(message("/v2/", [Self.basic("x.y.z")]) == "malformed token")
        for c in Self.cases {
            if case .deny(let d) = c.policy.decide(method: c.method, target: c.target, authorization: c.auth, verifier: Self.verifier, now: Self.now) {
                for t in [Self.ro, Self.rw, Self.rwd, Self.globex, Self.limited, Self.forever] { #expect(!d.message.contains(t)) }
            }
        }
    }

    @Test("the namespaces file: pairs, comments; duplicates and bad names refused")
    func namespacesFile() throws {
        let map = try NamespaceMap.parse("acme acme # comment\n\n  tools   acme\n")
        #expect(map.owner(of: "tools") == "acme")
        #expect(map.owner(of: "other") == nil)
        #expect(throws: NamespaceMapError.self) { try NamespaceMap.parse("acme acme\nacme globex\n") }
        #expect(throws: NamespaceMapError.self) { try NamespaceMap.parse("Acme acme\n") }
        #expect(throws: NamespaceMapError.self) { try NamespaceMap.parse("acme\n") }
        #expect(throws: NamespaceMapError.self) { try NamespaceMap.parse("acme acme extra\n") }
        #expect(NamespaceMap.accountNamed.owner(of: "x") == "x")
    }
}
