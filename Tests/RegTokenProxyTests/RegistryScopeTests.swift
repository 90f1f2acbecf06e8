import Foundation
import RegToken
import RegTokenAccess
import Testing

/// The token server's scope grammar and grants (distribution's token authentication), as pure
/// functions: what `GET /token` will sign into the registry JWT's `access` claim.
@Suite("Token server scopes: parsing and grants")
struct RegistryScopeTests {
    typealias T = AccessDecisionTests

    @Test("scopes parse as type:name:actions, several to a parameter, names with a port's colon")
    func parsing() throws {
        let scopes = try RegistryScope.parse("repository:acme/app:pull,push registry:catalog:* repository:localhost:5000/acme/x:pull,pull")
        #expect(scopes == [RegistryScope(type: "repository", name: "acme/app", actions: ["pull", "push"]),
                           RegistryScope(type: "registry", name: "catalog", actions: ["*"]),
                           RegistryScope(type: "repository", name: "localhost:5000/acme/x", actions: ["pull"])])
        #expect(scopes[0].description == "repository:acme/app:pull,push")
        #expect(try RegistryScope.parse("  ").isEmpty)
    }

    @Test("malformed scopes are refused with a clear error", arguments: [
        "repository", "repository:acme/app", ":acme/app:pull", "repository::pull", "repository:acme/app:", "repository:acme/app:pull,,push",
        "repository:acme/\u{7F}app:pull", "repository:acmé/app:pull", String(repeating: "a", count: 1100) + ":b:pull",
    ])
    func malformed(_ text: String) {
        #expect(throws: RequestError(.invalidScope, "")) { try RegistryScope.parse(text) }
    }

    func granted(_ token: String, _ scopes: String, policy: AccessPolicy = T.policy) throws -> [String] {
        switch policy.grant(token: Array(token.utf8), scopes: try RegistryScope.parse(scopes), verifier: T.verifier, now: T.now) {
        case .granted(let account, _, let g):
            #expect(account == "acme")
            return g.map(\.description)
        case .refused(let d): Issue.record("refused: \(d.reason) \(d.message)"); return []
        }
    }

    @Test("granted = asked ∩ allowed: the token's rights, its account's namespaces, its own list; the rest left out, not refused")
    func grants() throws {
        // Read-only: pull only.
        #expect(try granted(T.ro, "repository:acme/app:pull,push,delete") == ["repository:acme/app:pull"])
        // Read-write: pull and push, not delete; delete needs its own right.
        #expect(try granted(T.rw, "repository:acme/app:push,pull,delete") == ["repository:acme/app:push,pull"])
        #expect(try granted(T.rwd, "repository:acme/app:delete") == ["repository:acme/app:delete"])
        // Another account's namespace, an unknown one, a bad name: nothing.
        #expect(try granted(T.rw, "repository:globex/app:pull repository:nobody/app:pull repository:Acme/app:pull").isEmpty)
        // A namespace the map gives the account (acme-ci), and the token's own namespace list.
        #expect(try granted(T.rw, "repository:acme-ci/tools:pull") == ["repository:acme-ci/tools:pull"])
        #expect(try granted(T.limited, "repository:acme/app:pull repository:acme-ci/x:pull,push") == ["repository:acme-ci/x:pull,push"])
        // The catalog, unknown types and actions: never granted.
        #expect(try granted(T.rwd, "registry:catalog:* repository:acme/app:*,tag artifact:acme/app:pull").isEmpty)
        // Two scopes on one repository merge.
        #expect(try granted(T.rw, "repository:acme/app:pull repository:acme/app:push,pull") == ["repository:acme/app:pull,push"])
        // No scope at all (docker login): a good token gets an empty grant.
        #expect(try granted(T.ro, "").isEmpty)
    }

    @Test("a bad token is refused whatever it asks: expired, revoked, another region, garbage", arguments: [
        (AccessDecisionTests.token(expiresAt: AccessDecisionTests.now - 3600, issuedAt: AccessDecisionTests.now - 7200), DenyReason.expired),
        (AccessDecisionTests.token(scope: .pushPull, id: AccessDecisionTests.revokedID), DenyReason.revoked),
        (AccessDecisionTests.token(region: "us-east-1"), DenyReason.wrongRegion),
        ("not.a.token", DenyReason.malformed),
    ])
    func refused(_ token: String, _ reason: DenyReason) throws {
        let answer = T.policy.grant(token: Array(token.utf8), scopes: try RegistryScope.parse("repository:acme/app:pull"), verifier: T.verifier, now: T.now)
        guard case .refused(let denied) = answer else { Issue.record("granted: \(answer)"); return }
        #expect(denied.reason == reason)
        #expect(!denied.message.contains(token))
    }

    @Test("a refresh token verifies for its own service and key only, is no token, and no token is one")
    func refreshTokens() throws {
        let ring = try KeyRing(keys: [T.key])
        let id = UUIDBytes.random()
        let refresh = try RegistryRefreshToken(tokenID: id, account: "acme", service: "registry.test", issuedAt: T.now).signed(with: T.key)
        #expect(RegistryRefreshToken.verify(Array(refresh.utf8), keys: ring, service: "registry.test")
                == .valid(RegistryRefreshToken(tokenID: id, account: "acme", service: "registry.test", issuedAt: T.now)))
        func invalid(_ value: String, service: String = "registry.test", keys: KeyRing = ring) -> Bool {
            if case .invalid(let why) = RegistryRefreshToken.verify(Array(value.utf8), keys: keys, service: service) { return !why.contains(value) }
            return false
        }
        #expect(invalid(refresh, service: "elsewhere"))
        #expect(invalid(refresh, keys: try KeyRing(keys: [try SigningKey.generate(.es256, id: "es-1")])))
        #expect(invalid(T.rw))
        #expect(invalid(String(refresh.dropLast(2)) + (refresh.hasSuffix("AA") ? "BA" : "AA")))
        #expect(invalid("garbage"))
        // The proxy's decision refuses a refresh token presented as a token.
        guard case .deny(let denied) = T.policy.decide(token: Array(refresh.utf8), access: .pull, namespace: "acme", verifier: T.verifier, now: T.now) else {
            Issue.record("a refresh token passed as a token"); return
        }
        #expect(denied.reason == .malformed)
    }
}
