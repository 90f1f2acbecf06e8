import Logging
import NIOCore
import NIOPosix
import RegToken
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The proxy's access log: one line per exchange, buffered and written off the event loops, as
/// nginx's `access_log … buffer= flush=`. An event loop only appends the exchange's fields to its
/// own queue (``Queue``: no formatting, no system call, and no lock another loop takes: sharing
/// one, the loops would pass its cache lines back and forth on every request); a thread of its
/// own formats the queued entries and writes
/// them with one `write` every ``flushInterval`` (100 ms by default), and sooner when
/// ``highWater`` entries wait in one event loop's queue (then the recording thread writes them, which slows a flood rather
/// than growing memory without bound). ``close()`` writes what is left: a proxy told to stop loses
/// no line; a proxy killed loses at most the last interval's. Each queue's lines are written in
/// the order they were recorded (a connection's, in its order); within one flush, the lines of one
/// event loop's queue come before the next one's, as an nginx with several workers writes each
/// worker's buffer in turn (each line has its time).
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
        /// From the request's head to the end of its answer, to the nearest microsecond (a half
        /// rounds up).
        package var latencyMicroseconds: Int64
        package var client: String?
        package var tokenID: UUIDBytes?
        package var account: String?
        package var message: String?

        package init(time: Int64, method: String, path: String, status: Int, decision: String, reason: String, latencyMicroseconds: Int64,
                     client: String?, tokenID: UUIDBytes?, account: String?, message: String?) {
            self.time = time
            self.method = method
            self.path = path
            self.status = status
            self.decision = decision
            self.reason = reason
            self.latencyMicroseconds = latencyMicroseconds
            self.client = client
            self.tokenID = tokenID
            self.account = account
            self.message = message
        }

        /// A field's value, written as text by ``AccessLog/format(_:timestamp:label:into:)``
        /// straight into the line, or made a `String` (``string``) for a `Logger`'s metadata.
        package enum Value {
            /// The proxy's own text, as it is.
            case text(String)
            /// Text from the client: every control byte and backslash escaped (``LogText``), so
            /// that no client can forge or break a log line.
            case clientText(String)
            /// A number of milliseconds given in microseconds: `0.25`, `12.0` (as a `Double`
            /// rounded to the microsecond prints).
            case milliseconds(microseconds: Int64)
            case integer(Int)
            case uuid(UUIDBytes)

            /// The value as text.
            package var string: String {
                var bytes: [UInt8] = []
                write(into: &bytes)
                return String(decoding: bytes, as: UTF8.self)
            }

            /// Appends the value's text to `out`.
            package func write(into out: inout [UInt8]) {
                switch self {
                case .text(let text):
                    AccessLog.append(text, to: &out)
                case .clientText(let text):
                    AccessLog.append(LogText.escape(text), to: &out)
                case .milliseconds(let microseconds):
                    let sign = microseconds < 0 ? "-" : ""
                    let magnitude = microseconds.magnitude
                    AccessLog.append(sign + String(magnitude / 1000), to: &out)
                    out.append(UInt8(ascii: "."))
                    // The fraction without its trailing zeros, at least one digit.
                    var fraction = magnitude % 1000
                    var digits = 3
                    while digits > 1 && fraction % 10 == 0 {
                        fraction /= 10
                        digits -= 1
                    }
                    var divisor: UInt64 = digits == 3 ? 100 : digits == 2 ? 10 : 1
                    while divisor > 0 {
                        out.append(UInt8(ascii: "0") + UInt8(fraction / divisor % 10))
                        divisor /= 10
                    }
                case .integer(let value):
                    AccessLog.append(String(value), to: &out)
                case .uuid(let id):
                    let start = out.count
                    out.append(contentsOf: repeatElement(0, count: 36))
                    out.withUnsafeMutableBufferPointer { id.write(into: UnsafeMutableBufferPointer(rebasing: $0[start...])) }
                }
            }
        }

        /// The fields in the order of their keys (the order `StreamLogHandler` sorts metadata
        /// in): the one list of an access line's fields, for this log and for a `Logger`. The
        /// method, path and message come from the client and are escaped.
        package func forEachField(_ body: (_ key: StaticString, _ value: Value) -> Void) {
            if let account { body("account", .text(account)) }
            if let client { body("client", .text(client)) }
            body("decision", .text(decision))
            body("latency_ms", .milliseconds(microseconds: latencyMicroseconds))
            if let message { body("message", .clientText(message)) }
            body("method", .clientText(method))
            body("path", .clientText(path))
            body("reason", .text(reason))
            body("status", .integer(status))
            if let tokenID { body("token_id", .uuid(tokenID)) }
        }

        /// The fields as log metadata, for the unbuffered log.
        package var metadata: Logger.Metadata {
            var m: Logger.Metadata = [:]
            forEachField { key, value in m["\(key)"] = .string(value.string) }
            return m
        }
    }

    /// Appends a string's bytes (one copy from its storage).
    static func append(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { out.append(contentsOf: $0) }
    }

    private let descriptor: Int32
    private let label: String
    package let flushInterval: Duration
    package let highWater: Int
    /// Where lines wait for the writer: each event loop's connections record into that loop's.
    package final class Queue: Sendable {
        fileprivate let entries = Mutex<[Entry]>([])
        fileprivate init() {}
    }
    /// Every queue, in the order they were made; the first is ``shared``.
    private let queues: Mutex<[Queue]>
    /// The queue of each event loop that has recorded.
    private let loopQueues = Mutex<[ObjectIdentifier: Queue]>([:])
    /// For lines recorded with no event loop's queue.
    private let shared = Queue()
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
        self.queues = Mutex([shared])
    }

    /// The queue of `loop`'s connections (asked for once per connection).
    package func queue(on loop: any EventLoop) -> Queue {
        loopQueues.withLock { byLoop in
            if let queue = byLoop[ObjectIdentifier(loop)] { return queue }
            let queue = Queue()
            byLoop[ObjectIdentifier(loop)] = queue
            queues.withLock { $0.append(queue) }
            return queue
        }
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

    /// Queues one exchange's line in `queue` (``queue(on:)``; the shared one when nil). The entry
    /// is moved into the queue, not copied.
    package func record(_ entry: consuming Entry, in queue: Queue? = nil) {
        var entry = Optional(entry)
        let full = (queue ?? shared).entries.withLock { entries -> Bool in
            entries.append(entry.take()!)
            return entries.count >= highWater
        }
        if full { flush() }
    }

    /// Writes every queued line now.
    package func flush() {
        writing.withLock { _ in
            var text: [UInt8] = []
            var stamp = (second: Int64.min, text: "")
            for queue in queues.withLock({ $0 }) {
                var batch: [Entry] = []
                queue.entries.withLock { swap(&$0, &batch) }
                text.reserveCapacity(text.count + batch.count * 240)
                for i in batch.indices {
                    if batch[i].time != stamp.second { stamp = (batch[i].time, Self.timestamp(batch[i].time)) }
                    Self.format(batch[i], timestamp: stamp.text, label: label, into: &text)
                }
            }
            if !text.isEmpty { Self.writeAll(descriptor, text) }
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
        append(timestamp, to: &out)
        appendStatic(" info ", to: &out)
        append(label, to: &out)
        out.append(UInt8(ascii: ":"))
        e.forEachField { key, value in
            out.append(UInt8(ascii: " "))
            appendStatic(key, to: &out)
            out.append(UInt8(ascii: "="))
            value.write(into: &out)
        }
        appendStatic(" [RegTokenProxyCore] access\n", to: &out)
    }

    static func appendStatic(_ text: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
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
