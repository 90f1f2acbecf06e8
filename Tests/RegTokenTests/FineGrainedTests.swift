import Foundation
import Testing
@testable import RegToken

/// Fine-grained tokens: repository rules and address ranges, their grammar, their matcher
/// against a plain reference, and the verifier's decisions with them.
@Suite("Fine-grained tokens: repository rules and address ranges")
struct FineGrainedTests {
    // MARK: The matcher

    @Test("patterns against repository names: segments, *, **, dots, dashes, case, percent signs, empty segments, long names", arguments: [
        ("acme/app", "acme/app", true),
        ("acme/app", "acme/app2", false),
        ("acme/app", "acme/App", false),  // no case folding
        ("acme/ci-*", "acme/ci-build", true),
        ("acme/ci-*", "acme/ci-", true),
        ("acme/ci-*", "acme/ci", false),
        ("acme/ci-*", "acme/ci-build/x", false),  // * stays within one segment
        ("acme/*", "acme/app", true),
        ("acme/*", "acme", false),
        ("acme/*", "acme/a/b", false),
        ("acme/*/app", "acme/x/app", true),
        ("acme/*/app", "acme/app", false),
        ("acme/base/**", "acme/base/x", true),
        ("acme/base/**", "acme/base/x/y/z", true),
        ("acme/base/**", "acme/base", false),  // ** is one or more segments
        ("acme/base/**", "acme/based/x", false),
        ("acme/**/app", "acme/x/app", true),
        ("acme/**/app", "acme/x/y/app", true),
        ("acme/**/app", "acme/app", false),
        ("acme/**/app", "acme/x/app/y", false),
        ("acme/**/*-cache", "acme/a/b/build-cache", true),
        ("acme/**/*-cache", "acme/a/b/build-cache/x", false),
        ("acme/**/**", "acme/a/b", true),
        ("acme/**/**", "acme/a", false),
        ("acme/a.b_c-d", "acme/a.b_c-d", true),
        ("acme/a.b", "acme/aXb", false),  // a dot is a dot
        ("acme/*", "acme/%61pp", true),  // percent signs are bytes like any other: no decoding
        ("acme/app", "acme/%61pp", false),
        ("acme/*", "acme/", true),  // an empty segment is one segment (the proxy refuses such names before)
        ("acme/**", "acme//x", true),
        ("acme/x", "acme//x", false),
        ("acme/*-*-*", "acme/a-b-c", true),
        ("acme/*-*-*", "acme/a-b", false),
        ("acme/**", "acme/" + String(repeating: "a/", count: 120) + "z", true),
        ("acme/**/z", "acme/" + String(repeating: "a/", count: 120) + "z", true),
        ("acme/**/y", "acme/" + String(repeating: "a/", count: 120) + "z", false),
    ])
    func table(_ pattern: String, _ name: String, _ expected: Bool) {
        #expect(RepositoryRule.patternProblem(Array(pattern.utf8)) == nil, "\(pattern)")
        #expect(RepositoryRule(pattern: pattern, actions: .pull).matches(name) == expected, "\(pattern) vs \(name)")
        #expect(reference(pattern, name) == expected, "the reference disagrees with the table: \(pattern) vs \(name)")
    }

    /// The plain reference: the pattern as a regular expression (`*` = `[^/]*`, `**` as a
    /// segment = one or more segments), matched by Foundation's engine.
    func reference(_ pattern: String, _ name: String) -> Bool {
        let segments = pattern.split(separator: "/", omittingEmptySubsequences: false).map { segment -> String in
            if segment == "**" { return "[^/]*(?:/[^/]*)*" }
            return segment.split(separator: "*", omittingEmptySubsequences: false)
                .map { NSRegularExpression.escapedPattern(for: String($0)) }.joined(separator: "[^/]*")
        }
        let regex = try! NSRegularExpression(pattern: "^" + segments.joined(separator: "/") + "$")
        let range = NSRange(name.startIndex..., in: name)
        return regex.firstMatch(in: name, range: range) != nil
    }

    @Test("the matcher agrees with the reference on random patterns and names")
    func random() {
        var rng = SystemRandomNumberGenerator()
        let nameAlphabet: [Character] = ["a", "b", "-", ".", "_", "/", "A", "%", "1"]
        let patternPieces = ["a", "b", "ab", "*", "-", ".", "a*", "*b", "a*b", "**"]
        var checked = 0
        for _ in 0..<20_000 {
            let segments = (0..<Int.random(in: 1...4, using: &rng)).map { _ -> String in
                let piece = patternPieces.randomElement(using: &rng)!
                if piece == "**" { return "**" }
                return (0..<Int.random(in: 1...3, using: &rng)).map { _ in patternPieces.dropLast().randomElement(using: &rng)! }.joined()
                    .replacingOccurrences(of: "**", with: "*")
            }
            let pattern = "acme/" + segments.joined(separator: "/")
            guard RepositoryRule.patternProblem(Array(pattern.utf8)) == nil else { continue }
            let name = "acme/" + String((0..<Int.random(in: 0...12, using: &rng)).map { _ in nameAlphabet.randomElement(using: &rng)! })
            let ours = RepositoryRule(pattern: pattern, actions: .pull).matches(name)
            let theirs = reference(pattern, name)
            #expect(ours == theirs, "\(pattern) vs \(name): ours \(ours), reference \(theirs)")
            if ours != theirs { return }
            checked += 1
        }
        #expect(checked > 5_000)
    }

    @Test("rules parse as PATTERN[:ACTIONS]; bad patterns and actions are named", arguments: [
        ("acme/ci-*:pull,push", "acme/ci-*:pull,push"),
        ("acme/base/**:pull", "acme/base/**:pull"),
        ("acme/x", "acme/x:pull,push"),  // the default: the token's scope
        ("acme/x:push,pull", "acme/x:pull,push"),
        ("acme/x:delete", "acme/x:delete"),
    ])
    func parses(_ text: String, _ shown: String) throws {
        #expect(try RepositoryRule.parse(text, defaultActions: [.pull, .push]).description == shown)
        #expect(RepositoryRule(claim: shown)?.description == shown)
    }

    @Test("malformed rules are refused with the reason", arguments: [
        ("", "1 to 255"), ("acme/x:", "actions"), ("acme/x:pull,pull", "actions"), ("acme/x:write", "actions"),
        ("*/x", "namespace"), ("ACME/x", "namespace"), ("acme//x", "empty segment"), ("acme/x/", "empty segment"),
        ("/acme", "empty segment"), ("acme/a**", "'**'"), ("acme/**b", "'**'"), ("acme/A", "outside"), ("acme/a%20b", "outside"),
        ("acme/" + String(repeating: "a", count: 300), "1 to 255"), ("acme/a b", "outside"),
    ])
    func refused(_ text: String, _ why: String) {
        do {
            _ = try RepositoryRule.parse(text, defaultActions: .pull)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.reason.contains(why), "\(error.reason)")
        }
    }

    // MARK: Address ranges

    @Test("address ranges: IPv4, IPv6, IPv4-mapped clients, prefixes, one address", arguments: [
        ("10.0.0.0/8", "10.1.2.3", true), ("10.0.0.0/8", "11.0.0.1", false), ("10.0.0.0/8", "::ffff:10.1.2.3", true),
        ("192.0.2.7", "192.0.2.7", true), ("192.0.2.7", "192.0.2.8", false), ("0.0.0.0/0", "203.0.113.9", true),
        ("0.0.0.0/0", "2001:db8::1", false), ("2001:db8::/32", "2001:db8:1::5", true), ("2001:db8::/32", "2001:db9::5", false),
        ("::/0", "10.0.0.1", true), ("::1", "::1", true), ("::1", "127.0.0.1", false), ("::ffff:10.0.0.0/104", "10.9.9.9", true),
        ("2001:db8::/32", "[2001:db8::1]", true),
    ])
    func ranges(_ range: String, _ address: String, _ inside: Bool) throws {
        let r = try #require(AddressRange(range), "\(range)")
        let a = try #require(IPAddress(address), "\(address)")
        #expect(r.contains(a) == inside)
        #expect(AddressRange(r.description) == r)
    }

    @Test("bad ranges and addresses are refused, host bits named", arguments: [
        ("10.1.2.3/8", "did you mean 10.0.0.0/8"), ("10.0.0.0/33", "prefix"), ("10.0.0.0/08", "prefix"), ("10.0.0/8", "address"),
        ("2001:db8::1/32", "did you mean 2001:db8::/32"), ("::/129", "prefix"), ("example.com", "address"), ("", "address"),
        ("10.0.0.0/", "prefix"), ("1.2.3.4\u{0}", "address"),
    ])
    func badRanges(_ text: String, _ why: String) {
        #expect(AddressRange(text) == nil)
        #expect(AddressRange.problem(text)?.contains(why) == true, "\(AddressRange.problem(text) ?? "nil")")
    }

    // MARK: The verifier

    static let rules = [RepositoryRule(pattern: "acme/ci-*", actions: [.pull, .push]), RepositoryRule(pattern: "acme/base/**", actions: .pull)]

    func request(_ access: Access, _ repository: String?, from: String? = nil) -> AccessRequest {
        AccessRequest(region: Fixture.region, access: access, namespace: repository.map { String($0.prefix { $0 != "/" }) },
                      repository: repository, clientAddress: from.flatMap(IPAddress.init))
    }

    @Test("a token with rules acts only where a matching rule allows; requests on no repository are not restricted", arguments: [
        (Access.push, "acme/ci-build", nil as TokenError.ErrorCode?),
        (.pull, "acme/ci-build", nil),
        (.pull, "acme/base/alpine", nil),
        (.push, "acme/base/alpine", .repositoryNotAllowed),
        (.pull, "acme/app", .repositoryNotAllowed),
        (.delete, "acme/ci-build", .insufficientScope),
    ])
    func rulesDecide(_ access: Access, _ repository: String, _ expected: TokenError.ErrorCode?) throws {
        let claims = TokenClaims(account: "acme", region: Fixture.region, scope: .pushPull, issuedAt: Fixture.now, expiresAt: Fixture.now + 3600,
                                 repositories: Self.rules)
        for key in [Fixture.hsKey, Fixture.esKey] {
            let token = try Fixture.issue(claims, with: key)
            let verifier = try Fixture.verifier()
            do {
                let v = try verifier.verify(token, at: Fixture.now, for: request(access, repository))
                #expect(expected == nil && v.isRepositoryRestricted)
            } catch {
                #expect(error.code == expected)
            }
            #expect(try verifier.verify(token, at: Fixture.now, for: request(.pull, nil)).isRepositoryRestricted)
        }
    }

    @Test("a token limited to addresses: allowed from inside, refused from outside and when the address is unknown")
    func addresses() throws {
        let claims = TokenClaims(account: "acme", region: Fixture.region, scope: .pull, issuedAt: Fixture.now, expiresAt: Fixture.now + 3600,
                                 allowFrom: [AddressRange("10.0.0.0/8")!, AddressRange("2001:db8::/32")!])
        let token = try Fixture.issue(claims)
        let verifier = try Fixture.verifier()
        for ok in ["10.2.3.4", "::ffff:10.2.3.4", "2001:db8::9"] {
            #expect(try verifier.verify(token, at: Fixture.now, for: request(.pull, "acme/app", from: ok)).isAddressRestricted)
        }
        for refused in ["192.168.0.1", "2001:db9::1", nil] {
            #expect(throws: TokenError(.addressNotAllowed, "")) { try verifier.verify(token, at: Fixture.now, for: request(.pull, "acme/app", from: refused)) }
        }
        // Claims read back whole, for display.
        let parsed = try TokenClaims(json: Array(claims.json.utf8))
        #expect(parsed == claims)
    }

    @Test("malformed list claims are refused as malformed", arguments: [
        #","repositories":[]"#, #","repositories":["acme/x"]"#, #","repositories":["acme/x:write"]"#, #","repositories":["*/x:pull"]"#,
        #","repositories":"acme/x:pull""#, #","repositories":["acme/a**:pull"]"#, #","allow_from":[]"#, #","allow_from":["10.1.2.3/8"]"#,
        #","allow_from":["nope"]"#, #","allow_from":[10]"#,
        #","repositories":[\#((0..<33).map { "\"acme/r\($0):pull\"" }.joined(separator: ","))]"#,
    ])
    func malformed(_ extra: String) throws {
        let token = try Fixture.forge(header: Fixture.header(), claims: Fixture.claimsJSON(extra: extra))
        #expect(throws: TokenError(.malformed, "")) { try Fixture.verifier().verify(token, at: Fixture.now, for: Fixture.pull) }
    }

    @Test("issuing refuses rules beyond the scope, outside the token's namespaces, or repeated")
    func issuing() {
        func claims(_ scope: Scope, _ rules: [RepositoryRule], namespaces: [String]? = nil) -> TokenClaims {
            TokenClaims(account: "acme", region: Fixture.region, scope: scope, issuedAt: Fixture.now, expiresAt: nil, namespaces: namespaces, repositories: rules)
        }
        #expect(throws: IssueError(.invalidClaims, "")) { try claims(.pull, [RepositoryRule(pattern: "acme/x", actions: [.push])]).validate() }
        #expect(throws: IssueError(.invalidClaims, "")) { try claims(.pushPull, [RepositoryRule(pattern: "acme/x", actions: [.delete])]).validate() }
        #expect(throws: IssueError(.invalidClaims, "")) { try claims(.pull, [RepositoryRule(pattern: "acme/x", actions: .pull)], namespaces: ["acme-ci"]).validate() }
        #expect(throws: IssueError(.invalidClaims, "")) {
            try claims(.pull, [RepositoryRule(pattern: "acme/x", actions: .pull), RepositoryRule(pattern: "acme/x", actions: .pull)]).validate()
        }
        #expect(throws: Never.self) { try claims(.pushPullDelete, [RepositoryRule(pattern: "acme/x", actions: [.delete])]).validate() }
    }
}
