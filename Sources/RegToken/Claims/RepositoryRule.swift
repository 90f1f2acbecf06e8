/// One rule of a fine-grained token: a repository pattern and the actions the token has on the
/// repositories it matches (`acme/ci-*:pull,push`, `acme/base/**:pull`).
///
/// A token with rules may act on a repository only as the rules that match it allow (the union
/// of their actions), and never beyond its scope: a pull-only token's rule cannot grant push.
/// A request on no repository (`GET /v2/`) is not restricted by rules.
///
/// **Patterns** are matched on the repository name exactly as the registry sees it, byte for
/// byte (no case folding, no percent-decoding, no normalisation), segment by segment (`/`):
/// - a literal segment matches itself;
/// - `*` inside a segment matches any run of characters within one segment (`ci-*`, `*-cache`, `*`);
/// - `**` as a whole segment matches one or more whole segments (`acme/base/**` matches
///   `acme/base/x` and `acme/base/x/y`, not `acme/base`).
///
/// The first segment must be a namespace, literally (no wildcard), so that the token's issuer can
/// check that the account owns it. Segments are repository name components with `*` allowed;
/// a pattern is at most 255 bytes.
public struct RepositoryRule: Sendable, Hashable, CustomStringConvertible {
    /// The pattern, such as `acme/ci-*`.
    public var pattern: String
    /// What the rule allows on matching repositories: a non-empty subset of pull, push, delete.
    public var actions: Actions

    /// A set of actions, as a rule lists them.
    public struct Actions: OptionSet, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let pull = Actions(rawValue: 1)
        public static let push = Actions(rawValue: 2)
        public static let delete = Actions(rawValue: 4)

        /// The actions a scope grants.
        public init(_ scope: Scope) {
            switch scope {
            case .pull: self = [.pull]
            case .pushPull: self = [.pull, .push]
            case .pushPullDelete: self = [.pull, .push, .delete]
            }
        }

        /// The one action `access` needs.
        public init(_ access: Access) {
            switch access {
            case .pull: self = .pull
            case .push: self = .push
            case .delete: self = .delete
            }
        }

        /// `pull,push,delete` order, comma-separated.
        public var description: String {
            var parts: [String] = []
            if contains(.pull) { parts.append("pull") }
            if contains(.push) { parts.append("push") }
            if contains(.delete) { parts.append("delete") }
            return parts.joined(separator: ",")
        }
    }

    /// The most rules a token may carry.
    public static let maximumCount = 32
    /// The longest pattern, in bytes.
    public static let maximumPatternBytes = 255

    public init(pattern: String, actions: Actions) {
        self.pattern = pattern
        self.actions = actions
    }

    /// `pattern:actions`, as the token's `repositories` claim lists it.
    public var description: String { "\(pattern):\(actions)" }

    /// A rule from its ``description`` (`pattern:actions`, as the claim holds it); nil when the
    /// text is not a valid rule.
    public init?(claim text: String) {
        let bytes = Array(text.utf8)
        guard let (pattern, actions) = bytes.withUnsafeBufferPointer({ b in
            Self.split(b).map { (String(decoding: $0.pattern, as: UTF8.self), $0.actions) }
        }) else { return nil }
        self.init(pattern: pattern, actions: actions)
    }

    /// Parses `PATTERN[:ACTIONS]` as `token-add --repository` takes it; without actions, the
    /// rule gets `defaultActions` (the token's scope).
    /// - Throws: ``IssueError/ErrorCode/invalidClaims`` naming what is wrong.
    public static func parse(_ text: String, defaultActions: Actions) throws(IssueError) -> RepositoryRule {
        let shown = String(text.prefix(80))
        let pattern: Substring, actions: Actions
        if let colon = text.lastIndex(of: ":") {
            pattern = text[..<colon]
            let list = text[text.index(after: colon)...]
            guard let parsed = Array(list.utf8).withUnsafeBufferPointer({ parseActions($0) }) else {
                throw IssueError(.invalidClaims, "repository rule '\(shown)': actions must be pull, push or delete, comma-separated, each once")
            }
            actions = parsed
        } else {
            pattern = text[...]
            actions = defaultActions
        }
        let rule = RepositoryRule(pattern: String(pattern), actions: actions)
        try rule.validate()
        return rule
    }

    /// `rules` with those of the same pattern merged into one (their actions joined), in the
    /// order each pattern first appears: two rules on one pattern mean their union anyway.
    public static func merged(_ rules: [RepositoryRule]) -> [RepositoryRule] {
        var out: [RepositoryRule] = []
        for rule in rules {
            if let i = out.firstIndex(where: { $0.pattern == rule.pattern }) {
                out[i].actions.formUnion(rule.actions)
            } else {
                out.append(rule)
            }
        }
        return out
    }

    /// Checks the pattern's grammar and the actions (non-empty).
    public func validate() throws(IssueError) {
        let shown = String(pattern.prefix(80))
        guard !actions.isEmpty, actions.rawValue & ~7 == 0 else {
            throw IssueError(.invalidClaims, "repository rule '\(shown)': give at least one of pull, push, delete")
        }
        if let problem = Self.patternProblem(Array(pattern.utf8)) {
            throw IssueError(.invalidClaims, "repository pattern '\(shown)' \(problem)")
        }
    }

    /// The namespace the pattern is in (its first segment).
    public var namespace: String { String(pattern.prefix { $0 != "/" }) }

    /// True when this rule matches `repository` (see the type's description).
    public func matches(_ repository: String) -> Bool {
        Array(pattern.utf8).withUnsafeBufferPointer { p in
            Array(repository.utf8).withUnsafeBufferPointer { n in Self.matches(pattern: p, name: n) }
        }
    }

    // MARK: Byte-level parts, shared with the verifier (no allocation)

    /// What is wrong with a pattern, or nil when it is one: 1 to 255 bytes; segments separated by
    /// `/`, none empty; the first a literal namespace (a name component); the others `**` or
    /// characters `a-z 0-9 . _ - *` (a `**` only as a whole segment).
    static func patternProblem(_ p: UnsafeBufferPointer<UInt8>) -> String? {
        guard !p.isEmpty, p.count <= maximumPatternBytes else { return "must be 1 to 255 bytes" }
        var start = 0
        var first = true
        while start <= p.count {
            var end = start
            while end < p.count && p[end] != UInt8(ascii: "/") { end += 1 }
            let segment = UnsafeBufferPointer(rebasing: p[start..<end])
            if segment.isEmpty { return "has an empty segment (a leading, trailing or doubled '/')" }
            if first {
                if !TokenClaims.isNameComponent(bytes: segment) || segment.count > ShortString.capacity {
                    return "must start with a namespace, literally (no wildcard): lowercase letters and digits separated by '.', '_' or '-'"
                }
            } else if !(segment.count == 2 && segment[0] == UInt8(ascii: "*") && segment[1] == UInt8(ascii: "*")) {
                var stars = 0
                for c in segment {
                    let ok = (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7A) || c == UInt8(ascii: ".") || c == UInt8(ascii: "_")
                        || c == UInt8(ascii: "-") || c == UInt8(ascii: "*")
                    guard ok else { return "has a character outside a-z 0-9 . _ - * /" }
                    stars = c == UInt8(ascii: "*") ? stars + 1 : 0
                    if stars == 2 { return "has '**' inside a segment: '**' stands alone between slashes" }
                }
            }
            first = false
            start = end + 1
        }
        return nil
    }

    static func patternProblem(_ p: [UInt8]) -> String? {
        p.withUnsafeBufferPointer { patternProblem($0) }
    }

    /// Parses `pull`, `push`, `delete`, comma-separated, each once, in any order; nil otherwise.
    /// Byte compares, no allocation (the verifier calls it for every rule of a token).
    static func parseActions(_ list: UnsafeBufferPointer<UInt8>) -> Actions? {
        @inline(__always) func word(_ start: Int, _ end: Int, _ text: StaticString) -> Bool {
            guard end - start == text.utf8CodeUnitCount else { return false }
            for k in 0..<(end - start) where list[start + k] != text.utf8Start[k] { return false }
            return true
        }
        var actions: Actions = []
        var start = 0
        var i = 0
        while i <= list.count {
            if i == list.count || list[i] == UInt8(ascii: ",") {
                let action: Actions
                if word(start, i, "pull") { action = .pull }
                else if word(start, i, "push") { action = .push }
                else if word(start, i, "delete") { action = .delete }
                else { return nil }
                if actions.contains(action) { return nil }
                actions.insert(action)
                start = i + 1
            }
            i += 1
        }
        return actions
    }

    /// A rule as the claim holds it (`pattern:actions`): its pattern and actions, or nil when the
    /// text is not a well-formed rule.
    static func split(_ rule: UnsafeBufferPointer<UInt8>) -> (pattern: UnsafeBufferPointer<UInt8>, actions: Actions)? {
        var colon = rule.count - 1
        while colon >= 0 && rule[colon] != UInt8(ascii: ":") { colon -= 1 }
        guard colon > 0 else { return nil }
        let pattern = UnsafeBufferPointer(rebasing: rule[0..<colon])
        guard let actions = parseActions(UnsafeBufferPointer(rebasing: rule[(colon + 1)...])), patternProblem(pattern) == nil else { return nil }
        return (pattern, actions)
    }

    /// True when `name` matches `pattern` (a valid pattern), segment by segment, with no
    /// allocation and in time linear in the lengths for each backtrack of the last `**`
    /// (the classic wildcard algorithm, on segments, and again on bytes inside a segment).
    static func matches(pattern p: UnsafeBufferPointer<UInt8>, name n: UnsafeBufferPointer<UInt8>) -> Bool {
        let slash = UInt8(ascii: "/")
        @inline(__always) func end(_ b: UnsafeBufferPointer<UInt8>, _ from: Int) -> Int {
            var i = from
            while i < b.count && b[i] != slash { i += 1 }
            return i
        }
        // Segment starts; a start past the count means every segment is consumed.
        var ps = 0, ns = 0
        // After the last `**`: where the pattern resumes, and the name segment it would take next.
        var resumeP = -1, resumeN = 0
        while true {
            if ps > p.count {
                if ns > n.count { return true }
            } else {
                let pe = end(p, ps)
                if pe - ps == 2 && p[ps] == UInt8(ascii: "*") && p[ps + 1] == UInt8(ascii: "*") {
                    // `**`: one segment at least, then as many as the rest needs.
                    if ns <= n.count {
                        ns = end(n, ns) + 1
                        ps = pe + 1
                        resumeP = ps
                        resumeN = ns
                        continue
                    }
                } else if ns <= n.count {
                    let ne = end(n, ns)
                    if segmentMatches(UnsafeBufferPointer(rebasing: p[ps..<pe]), UnsafeBufferPointer(rebasing: n[ns..<ne])) {
                        ps = pe + 1
                        ns = ne + 1
                        continue
                    }
                }
            }
            // Mismatch: the last `**` takes one more segment, or there is no match.
            guard resumeP >= 0, resumeN <= n.count else { return false }
            resumeN = end(n, resumeN) + 1
            ps = resumeP
            ns = resumeN
        }
    }

    /// One segment against a segment pattern in which `*` matches any run of bytes.
    static func segmentMatches(_ p: UnsafeBufferPointer<UInt8>, _ s: UnsafeBufferPointer<UInt8>) -> Bool {
        let star = UInt8(ascii: "*")
        var i = 0, j = 0, lastStar = -1, mark = 0
        while j < s.count {
            if i < p.count && p[i] != star && p[i] == s[j] {
                i += 1
                j += 1
            } else if i < p.count && p[i] == star {
                lastStar = i
                mark = j
                i += 1
            } else if lastStar >= 0 {
                i = lastStar + 1
                mark += 1
                j = mark
            } else {
                return false
            }
        }
        while i < p.count && p[i] == star { i += 1 }
        return i == p.count
    }
}
