import Histogram

/// What a load test measured.
public struct Report: Sendable, Codable {
    public var mode: String
    public var threads: Int
    public var connections: Int?
    public var algorithm: String?
    public var cache: Bool?
    public var mix: String
    public var durationSeconds: Double
    public var operations: Int
    public var throughputPerSecond: Double
    /// Latency percentiles in microseconds.
    public var latencyMicroseconds: [String: Double]
    public var outcomes: [String: Int]
    /// Decisions that were not the expected one: must be 0.
    public var wrongDecisions: Int

    static func percentiles(_ h: Histogram<UInt64>) -> [String: Double] {
        func us(_ ns: UInt64) -> Double { (Double(ns) / 1000 * 100).rounded() / 100 }
        return ["p50": us(h.valueAtPercentile(50)), "p90": us(h.valueAtPercentile(90)), "p99": us(h.valueAtPercentile(99)),
                "p99.9": us(h.valueAtPercentile(99.9)), "max": us(h.max)]
    }

    /// The human form.
    public var text: String {
        var lines: [String] = []
        let rate = throughputPerSecond >= 1000 ? "\((throughputPerSecond / 1000 * 10).rounded() / 10) k/s" : "\(Int(throughputPerSecond)) /s"
        lines.append("mode           \(mode)\(algorithm.map { ", \($0)" } ?? "")\(cache == true ? ", cache on" : "")")
        lines.append("threads        \(threads)\(connections.map { ", \($0) connections" } ?? "")")
        lines.append("duration       \((durationSeconds * 100).rounded() / 100) s")
        lines.append("operations     \(operations)")
        lines.append("throughput     \(rate)")
        let order = ["p50", "p90", "p99", "p99.9", "max"]
        lines.append("latency (µs)   " + order.map { "\($0) \(latencyMicroseconds[$0] ?? 0)" }.joined(separator: "  "))
        lines.append("outcomes       " + Outcome.allCases.compactMap { o in outcomes[o.rawValue].map { "\(o.rawValue) \($0)" } }.joined(separator: "  "))
        lines.append("wrong          \(wrongDecisions)")
        return lines.joined(separator: "\n")
    }
}
