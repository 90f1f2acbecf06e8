import Logging
import NIOPosix
import RegToken
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The proxy's access log: one line per exchange, buffered and written off the event loops, as
/// nginx's `access_log … buffer= flush=`. An event loop only appends the exchange's fields to a
/// queue (no formatting, no system call); a thread of its own formats the queued entries and writes
/// them with one `write` every ``flushInterval`` (100 ms by default), and sooner when
/// ``highWater`` entries wait (then the recording thread writes them, which slows a flood rather
/// than growing memory without bound). ``close()`` writes what is left: a proxy told to stop loses
/// no line; a proxy killed loses at most the last interval's.
///
/// Lines have the shape of swift-log's `StreamLogHandler` (timestamp, level, label, the fields as
/// sorted `key=value` pairs, `[RegTokenProxyCore] access`), so that readers of the unbuffered log
/// keep working. Fields from the client are escaped (``LogText``).
package final class AccessLog: Sendable {
    /// One exchange, as the handler knows it when it ends.
    package struct Entry: Sendable {
        package var time: Int64
        package var method: String
        package var path: String
        package var status: Int
        package var decision: String
        package var reason: String
        package var latencyMilliseconds: Double
        package var client: String?
        package var tokenID: UUIDBytes?
        package var account: String?
        package var message: String?

        package init(time: Int64, method: String, path: String, status: Int, decision: String, reason: String, latencyMilliseconds: Double,
                     client: String?, tokenID: UUIDBytes?, account: String?, message: String?) {
            self.time = time
            self.method = method
            self.path = path
            self.status = status
            self.decision = decision
            self.reason = reason
            self.latencyMilliseconds = latencyMilliseconds
            self.client = client
            self.tokenID = tokenID
            self.account = account
            self.message = message
        }

        /// The fields in the order of their keys (the order `StreamLogHandler` sorts metadata
        /// in): the one list of an access line's fields, for this log and for a `Logger`. The
        /// method, path and message come from the client: every control byte is escaped, so no
        /// client can forge or break a log line.
        package func forEachField(_ body: (_ key: String, _ value: String) -> Void) {
            if let account { body("account", account) }
            if let client { body("client", client) }
            body("decision", decision)
            body("latency_ms", "\((latencyMilliseconds * 1000).rounded() / 1000)")  // to the microsecond
            if let message { body("message", LogText.escape(message)) }
            body("method", LogText.escape(method))
            body("path", LogText.escape(path))
            body("reason", reason)
            body("status", String(status))
            if let tokenID { body("token_id", tokenID.description) }
        }

        /// The fields as log metadata, for the unbuffered log.
        package var metadata: Logger.Metadata {
            var m: Logger.Metadata = [:]
            forEachField { key, value in m[key] = .string(value) }
            return m
        }
    }

    private let descriptor: Int32
    private let label: String
    package let flushInterval: Duration
    package let highWater: Int
    private let pending = Mutex<[Entry]>([])
    /// Held while a batch is taken, formatted and written: batches reach the file in order.
    private let writing = Mutex<Void>(())
    private let closed = Atomic<Bool>(false)
    /// The writer's own thread: never an event loop, and not Swift concurrency's shared pool,
    /// where a blocked `write` (a slow log reader) would hold a thread others need.
    private let writer = NIOThreadPool(numberOfThreads: 1)
    private let started = Atomic<Bool>(false)

    /// - Parameters:
    ///   - descriptor: where lines go (standard error by default); not closed by this log.
    ///   - label: the logger label the lines carry (`regtoken.proxy`).
    package init(descriptor: Int32 = 2, label: String, flushInterval: Duration = .milliseconds(100), highWater: Int = 8192) {
        self.descriptor = descriptor
        self.label = label
        self.flushInterval = flushInterval
        self.highWater = highWater
    }

    /// Starts the background writer; it runs until ``close()``.
    package func start() {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        writer.start()
        let pause = flushInterval.components
        let micros = UInt32(clamping: pause.seconds * 1_000_000 + pause.attoseconds / 1_000_000_000_000)
        writer.submit { [self] _ in
            while !closed.load(ordering: .acquiring) {
                usleep(max(micros, 1_000))
                flush()
            }
        }
    }

    /// Queues one exchange's line.
    package func record(_ entry: Entry) {
        let full = pending.withLock { queue -> Bool in
            queue.append(entry)
            return queue.count >= highWater
        }
        if full { flush() }
    }

    /// Writes every queued line now.
    package func flush() {
        writing.withLock { _ in
            var batch: [Entry] = []
            pending.withLock { queue in swap(&queue, &batch) }
            guard !batch.isEmpty else { return }
            var text: [UInt8] = []
            text.reserveCapacity(batch.count * 240)
            var stamp = (second: Int64.min, text: "")
            for entry in batch {
                if entry.time != stamp.second { stamp = (entry.time, Self.timestamp(entry.time)) }
                Self.format(entry, timestamp: stamp.text, label: label, into: &text)
            }
            Self.writeAll(descriptor, text)
        }
    }

    /// Stops the background writer and writes what is left.
    package func close() {
        closed.store(true, ordering: .releasing)
        if started.load(ordering: .acquiring) { try? writer.syncShutdownGracefully() }
        flush()
    }

    /// One line as swift-log's StreamLogHandler writes it: the fields sorted by key.
    static func format(_ e: Entry, timestamp: String, label: String, into out: inout [UInt8]) {
        out.append(contentsOf: timestamp.utf8)
        out.append(contentsOf: " info ".utf8)
        out.append(contentsOf: label.utf8)
        out.append(UInt8(ascii: ":"))
        e.forEachField { key, value in
            out.append(UInt8(ascii: " "))
            out.append(contentsOf: key.utf8)
            out.append(UInt8(ascii: "="))
            out.append(contentsOf: value.utf8)
        }
        out.append(contentsOf: " [RegTokenProxyCore] access\n".utf8)
    }

    /// `2026-12-03T11:19:05+0000`, local time, as StreamLogHandler writes it.
    static func timestamp(_ seconds: Int64) -> String {
        var t = time_t(seconds)
        var local = tm()
        guard localtime_r(&t, &local) != nil else { return "\(seconds)" }
        var buffer = [Int8](repeating: 0, count: 64)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &local)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Writes all of `bytes`, retrying short writes and interruptions; a log that cannot be
    /// written (a closed descriptor, a full disk) drops the batch rather than stopping the proxy.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }
}
