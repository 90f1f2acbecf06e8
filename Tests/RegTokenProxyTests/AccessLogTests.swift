import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix
import RegToken
import RegTokenLoadTest
@testable import RegTokenProxyCore
import Testing

/// The buffered access log: the lines it writes, when it writes them, and that none is lost.
@Suite("The proxy's buffered access log", .serialized)
struct AccessLogTests {
    /// A log writing into a temporary file, and a reader of that file.
    final class Capture {
        let path: String
        let fd: Int32
        init() {
            path = NSTemporaryDirectory() + "/access-\(UUID().uuidString).log"
            fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        }
        var text: String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        deinit {
            close(fd)
            unlink(path)
        }
    }

    func entry(_ i: Int, path: String = "/v2/acme/app/manifests/v1", message: String? = nil) -> AccessLog.Entry {
        AccessLog.Entry(time: 1_800_000_000, method: "GET", path: path, status: 200, decision: "allow", reason: "ok",
                        latencyMicroseconds: 250, client: "127.0.0.1", tokenID: UUIDBytes("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"),
                        account: "acme", message: message ?? "n\(i)")
    }

    @Test("a line has the fields sorted as StreamLogHandler writes metadata; client text is escaped")
    func format() {
        var out: [UInt8] = []
        AccessLog.format(entry(1, path: "/v2/a\u{1B}[31m\nb"), timestamp: "2027-01-15T08:00:00+0000", label: "regtoken.proxy", into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "2027-01-15T08:00:00+0000 info regtoken.proxy: account=acme client=127.0.0.1 decision=allow latency_ms=0.25 message=n1 method=GET path=/v2/a\\x1b[31m\\x0ab reason=ok status=200 token_id=0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d [RegTokenProxyCore] access\n")
        // The fields are listed by hand in key order: a field added out of order fails here.
        var keys: [String] = []
        entry(1).forEachField { key, _ in keys.append("\(key)") }
        #expect(keys == keys.sorted() && keys.count == 10)
    }

    @Test("latency_ms is written as the Double of the milliseconds, rounded to the microsecond, prints")
    func latency() {
        var rng = SplitMix(seed: 0x1A7E)
        var values: [Int64] = [0, 1, 9, 10, 99, 100, 250, 999, 1000, 1001, 1010, 1100, 12_345, 100_000, 999_999, 1_000_000, 86_400_000_000]
        for _ in 0..<20_000 { values.append(Int64.random(in: 0...(Int64(1) << Int64.random(in: 1...40, using: &rng)), using: &rng)) }
        for microseconds in values {
            let written = AccessLog.Entry.Value.milliseconds(microseconds: microseconds).string
            // What the log wrote before, from the milliseconds as a Double.
            #expect(written == "\(Double(microseconds) / 1000)", "\(microseconds)")
        }
    }

    @Test("nothing is written before a flush; every line, in order, after close")
    func flushOnClose() {
        let capture = Capture()
        let log = AccessLog(descriptor: capture.fd, label: "regtoken.proxy", flushInterval: .seconds(3600))
        for i in 0..<500 { log.record(entry(i)) }
        #expect(capture.text.isEmpty)
        log.close()
        let lines = capture.text.split(separator: "\n")
        #expect(lines.count == 500)
        #expect(lines.enumerated().allSatisfy { $0.element.contains("message=n\($0.offset) ") })
    }

    @Test("the background writer writes within its interval; a full queue is written at once")
    func background() async throws {
        let capture = Capture()
        let log = AccessLog(descriptor: capture.fd, label: "regtoken.proxy", flushInterval: .milliseconds(50), highWater: 100)
        log.start()
        log.record(entry(0))
        let deadline = ContinuousClock.now + .seconds(5)
        while capture.text.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(capture.text.split(separator: "\n").count == 1)
        log.close()

        let quiet = Capture()
        let full = AccessLog(descriptor: quiet.fd, label: "regtoken.proxy", flushInterval: .seconds(3600), highWater: 100)
        for i in 0..<99 { full.record(entry(i)) }
        #expect(quiet.text.isEmpty)
        full.record(entry(99))  // the 100th: written by this call
        #expect(quiet.text.split(separator: "\n").count == 100)
        full.close()
    }

    @Test("each event loop records into a queue of its own: every line written, each loop's in the order recorded, a full queue written at once")
    func loopQueues() async throws {
        let capture = Capture()
        let log = AccessLog(descriptor: capture.fd, label: "regtoken.proxy", flushInterval: .milliseconds(5), highWater: 50)
        log.start()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = [group.next(), group.next()]
        let queues = loops.map { log.queue(on: $0) }
        #expect(queues[0] !== queues[1] && log.queue(on: loops[0]) === queues[0])
        // Both loops at once, 3,000 lines each; the shared queue too.
        let done = loops.indices.map { l in
            loops[l].submit { for i in 0..<3000 { log.record(entry(l * 10_000 + i), in: queues[l]) } }
        }
        for i in 0..<100 { log.record(entry(20_000 + i)) }
        for future in done { try await future.get() }
        try await group.shutdownGracefully()
        log.close()
        let numbers = capture.text.split(separator: "\n").compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("message=n") }.flatMap { Int($0.dropFirst(9)) }
        }
        #expect(numbers.count == 6100 && Set(numbers).count == 6100)
        for base in [0, 10_000, 20_000] {
            let mine = numbers.filter { $0 >= base && $0 < base + 10_000 }
            #expect(mine == mine.sorted(), "queue \(base): out of order")
        }

        // A loop's queue that reaches the high-water mark is written by the call that filled it.
        let quiet = Capture()
        let full = AccessLog(descriptor: quiet.fd, label: "regtoken.proxy", flushInterval: .seconds(3600), highWater: 10)
        let loop = EmbeddedEventLoop()
        let queue = full.queue(on: loop)
        for i in 0..<9 { full.record(entry(i), in: queue) }
        #expect(quiet.text.isEmpty)
        full.record(entry(9), in: queue)
        #expect(quiet.text.split(separator: "\n").count == 10)
        full.close()
    }

    @Test("lines recorded from many threads are all written, whole")
    func concurrent() async {
        let capture = Capture()
        let log = AccessLog(descriptor: capture.fd, label: "regtoken.proxy", flushInterval: .milliseconds(5), highWater: 64)
        log.start()
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask { for i in 0..<1000 { log.record(entry(t * 1000 + i)) } }
            }
        }
        log.close()
        let lines = capture.text.split(separator: "\n")
        #expect(lines.count == 8000)
        #expect(lines.allSatisfy { $0.hasSuffix("[RegTokenProxyCore] access") })
        #expect(Set(lines.compactMap { $0.split(separator: " ").first { $0.hasPrefix("message=") } }).count == 8000)
    }
}
