import RegTokenLoadTest
@testable import RegTokenAccess
import Testing

/// The request target parse on the target's bytes against the one written on a `String` per
/// segment (``ReferenceRegistryRequest``), on targets made of the pieces each rule looks at.
@Suite("Request targets")
struct RegistryRequestTests {
    static let digest = "sha256:" + String(repeating: "ab", count: 32)

    /// Path segments and queries as clients, and attackers, write them.
    static let segments = [
        "v2", "V2", "%76%32", "v3", "", ".", "..", "%2E", "%2e%2e", "%2F", "%2f", "%5C", "%00", "%", "%4", "%zz", "%41", "%61cme",
        "acme", "acme-ci", "Acme", "a__b", "a___b", "a--b", "-a", "a.", "app", "team", "x", String(repeating: "n", count: 200),
        "manifests", "%6Danifests", "blobs", "uploads", "tags", "list", "referrers", "_catalog", "v1", "latest", "-v1", "v%31",
        digest, "sha256:", "notadigest", "3f1c-aa_b=", "u%2Dd", "é",
        // Every word the parse looks for, escaped (upper and lower case hex).
        "%62lobs", "upload%73", "_c%61talog", "t%61gs", "l%69st", "referr%65rs", "%6danifests", "%5Fcatalog", "%2d",
        // Names at the 255-byte limit and past it, raw and once escapes are decoded.
        String(repeating: "a", count: 250), String(repeating: "a", count: 251), String(repeating: "a", count: 255),
        String(repeating: "a", count: 256), String(repeating: "%61", count: 85), String(repeating: "%61", count: 86),
    ]
    static let queries = [
        "", "?", "?n=10&last=v1", "?mount=\(digest)&from=acme%2Fbase", "?mount=\(digest)&from=acme/base", "?mount=\(digest)",
        "?mount=bad&from=acme", "?mount=\(digest)&from=Globex", "?a=1&a=2", "?a=1;b=2", "?a=%zz", "?a=%00", "?from=x&mount=\(digest)",
        "?x=%2B+y", "#frag", "?a=b#c",
    ]

    static func same(_ a: Result<RegistryRequest, RequestError>, _ b: Result<RegistryRequest, RequestError>) -> Bool {
        switch (a, b) {
        case (.success(let x), .success(let y)): x == y
        case (.failure(let x), .failure(let y)): x.code == y.code && x.reason == y.reason
        default: false
        }
    }

    @Test("the same request or the same refusal (code and reason) as the parse on Strings, on 60,000 targets built from the rules' pieces")
    func agreesWithReference() {
        var rng = SplitMix(seed: 0x7A26E7)
        var targets = ["/v2/", "/v2", "/", "", "v2", "/v2/acme/app/manifests/v1", "/v2/_catalog", "/v2/_catalog/",
                       "/v2/acme/app/blobs/uploads/", "/v2/acme/app/blobs/uploads", "/v2/%61cme/%61pp/manifests/v1",
                       "/v2/acme/team/app/tags/list?n=1", "/v2/acme/app/referrers/\(Self.digest)", "/v2/acme//app/manifests/v1",
                       "/v2/acme/app/manifests/v1/", "/%76%32/acme/app/manifests/v1", "/v2/a/b/c/d/e/f/g/h/i/j/manifests/v1",
                       "/v2/" + String(repeating: "a/", count: 130) + "manifests/v1", "/" + String(repeating: "x", count: 8200)]
        let names = ["acme", "acme-ci", "%61cme", "app", "team", "a__b", "x", "Acme", "a.", "%2E", "%6d",
                     String(repeating: "b", count: 120), String(repeating: "%62", count: 60)]
        let shortNames = ["acme", "app", "x", "a__b", "%61cme", "team", "Acme"]
        let endpoints = [["manifests", "v1"], ["manifests", Self.digest], ["manifests", "-v1"], ["blobs", Self.digest], ["blobs", "x"],
                         ["blobs", "uploads", ""], ["blobs", "uploads"], ["blobs", "uploads", "3f1c-aa_b="], ["tags", "list"],
                         ["referrers", Self.digest], ["_catalog"], ["%6Danifests", "v%31"], ["blobs", "uploads", "u%2Dd"],
                         ["%62lobs", "upload%73", ""], ["t%61gs", "l%69st"], ["referr%65rs", Self.digest], ["_c%61talog"]]
        for _ in 0..<60_000 {
            var path: [String]
            if Bool.random(using: &rng) {
                // A target of the API's shape, one piece of it sometimes replaced.
                // (Sometimes a name of many parts: past the 8 segments the parse holds in place.)
                let long = Int.random(in: 0..<8, using: &rng) == 0
                let parts = long ? Int.random(in: 12...22, using: &rng) : Int.random(in: 0...3, using: &rng)
                path = ["", "v2"] + (0..<parts).map { _ in (long ? shortNames : names).randomElement(using: &rng)! }
                    + endpoints.randomElement(using: &rng)!
                if Int.random(in: 0..<4, using: &rng) == 0 { path[Int.random(in: path.indices, using: &rng)] = Self.segments.randomElement(using: &rng)! }
            } else {
                path = [Bool.random(using: &rng) ? "/v2" : ["", "/", "//v2", "/V2", "/v2/"].randomElement(using: &rng)!]
                for _ in 0..<Int.random(in: 0...(Bool.random(using: &rng) ? 7 : 20), using: &rng) { path.append(Self.segments.randomElement(using: &rng)!) }
                if Int.random(in: 0..<6, using: &rng) == 0 { path.append("") }
            }
            var target = path.joined(separator: "/")
            if Int.random(in: 0..<3, using: &rng) == 0 { target += Self.queries.randomElement(using: &rng)! }
            targets.append(target)
        }
        var outcomes: [String: Int] = [:]
        for target in targets {
            let ours = RegistryRequest.parse(target: target)
            let reference = ReferenceRegistryRequest.parse(target: target)
            #expect(Self.same(ours, reference), "\(target): \(ours) against \(reference)")
            switch ours {
            case .success(let r):
                outcomes["\(r.endpoint)".prefix { $0 != "(" }.description, default: 0] += 1
                if target.split(separator: "/", omittingEmptySubsequences: false).count > 19 { outcomes["long", default: 0] += 1 }
            case .failure(let e): outcomes[e.code.description, default: 0] += 1
            }
        }
        // Every endpoint and every refusal was reached, in numbers.
        for outcome in ["base", "catalog", "tags", "manifest", "blob", "uploadStart", "upload", "referrers", "ambiguous", "invalid_name", "not_registry_path", "long"] {
            #expect(outcomes[outcome, default: 0] >= 20, "\(outcome): \(outcomes)")
        }
    }
}
