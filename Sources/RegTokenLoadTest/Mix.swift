/// The outcomes a load test sends, and in what proportion.
public enum Outcome: String, Sendable, CaseIterable, Codable {
    case valid, expired, revoked, wrongscope, malformed
}

/// `valid=90,expired=3,revoked=2,wrongscope=2,malformed=3`: weights, not necessarily summing to 100.
public struct Mix: Sendable, Equatable, CustomStringConvertible {
    public var weights: [Outcome: Int]

    public static let standard = Mix(weights: [.valid: 90, .expired: 3, .revoked: 2, .wrongscope: 2, .malformed: 3])

    public init(weights: [Outcome: Int]) { self.weights = weights }

    public init(parsing text: String) throws(LoadTestError) {
        var w: [Outcome: Int] = [:]
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", omittingEmptySubsequences: false)
            guard kv.count == 2, let outcome = Outcome(rawValue: kv[0].trimmingSpacesAndTabs), let n = Int(kv[1].trimmingSpacesAndTabs), n >= 0 else {
                throw LoadTestError(.invalidMix, "invalid --mix '\(text.prefix(80))': use outcome=weight pairs, outcomes valid, expired, revoked, wrongscope, malformed")
            }
            guard w.updateValue(n, forKey: outcome) == nil else { throw LoadTestError(.invalidMix, "--mix names \(outcome.rawValue) twice") }
        }
        guard w.values.reduce(0, +) > 0 else { throw LoadTestError(.invalidMix, "--mix weights must not all be zero") }
        weights = w
    }

    /// A table of 100 outcomes in proportion, for picking with a random index.
    func table() -> [Outcome] {
        let total = weights.values.reduce(0, +)
        var out: [Outcome] = []
        for o in Outcome.allCases {
            let n = Int((Double(weights[o] ?? 0) / Double(total) * 1000).rounded())
            out += Array(repeating: o, count: n)
        }
        return out.isEmpty ? [.valid] : out
    }

    public var description: String {
        Outcome.allCases.compactMap { o in weights[o].map { "\(o.rawValue)=\($0)" } }.joined(separator: ",")
    }
}

