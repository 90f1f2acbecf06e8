import Histogram
import RegToken
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Load over HTTP against a running `regtoken proxy`: `connections` keep-alive connections send
/// requests back to back for `duration` seconds with the mix of tokens, and every response's
/// status is checked against the expected decision (allowed: anything but 401/403; expired,
/// revoked and malformed: 401; a pull-only token pushing: 403).
public struct HTTPLoadTest: Sendable {
    public var host: String
    public var port: Int
    public var connections: Int
    public var duration: Double
    public var mix: Mix
    /// Token values by outcome (issued by the caller with the proxy's issuer).
    public var tokens: [Outcome: [String]]
    /// The namespace the requests go to (the tokens' account owns it).
    public var repository: String
    public var progress: (@Sendable (Double, Int) -> Void)?
    /// Adds a TLS client handler first, for an `https://` proxy (this module has no TLS of its
    /// own: the command line passes swift-nio-ssl's handler in).
    public var secure: (@Sendable (ChannelPipeline.SynchronousOperations) throws -> Void)?

    public init(host: String, port: Int, connections: Int, duration: Double, mix: Mix, tokens: [Outcome: [String]],
                repository: String, progress: (@Sendable (Double, Int) -> Void)? = nil,
                secure: (@Sendable (ChannelPipeline.SynchronousOperations) throws -> Void)? = nil) {
        self.secure = secure
        self.host = host
        self.port = port
        self.connections = connections
        self.duration = duration
        self.mix = mix
        self.tokens = tokens
        self.repository = repository
        self.progress = progress
    }

    final class Totals: Sendable {
        let operations = Atomic<Int>(0)
        let wrong = Atomic<Int>(0)
        let errors = Atomic<Int>(0)
        let merged = Mutex<(Histogram<UInt64>, [Outcome: Int])>((Histogram<UInt64>(highestTrackableValue: 600_000_000_000, numberOfSignificantValueDigits: .three), [:]))
    }

    public func run() async throws -> Report {
        let totals = Totals()
        let table = mix.table()
        let group = MultiThreadedEventLoopGroup.singleton
        let secure = self.secure
        let start = LoadClock.nanoseconds()
        let deadline = start + UInt64(duration * 1e9)
        var done: [EventLoopFuture<Void>] = []
        for c in 0..<connections {
            let promise = group.next().makePromise(of: Void.self)
            let plan = Plan(table: table, tokens: tokens, repository: repository, host: "\(host):\(port)", deadline: deadline, seed: UInt64(c + 1))
            do {
                _ = try await ClientBootstrap(group: group)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try secure?(channel.pipeline.syncOperations)
                            try channel.pipeline.syncOperations.addHTTPClientHandlers()
                            try channel.pipeline.syncOperations.addHandler(Connection(plan: plan, totals: totals, done: promise))
                        }
                    }
                    .connect(host: host, port: port).get()
            } catch {
                promise.fail(error)
                throw LoadTestError(.unreachable, "cannot connect to \(host):\(port): \(SystemErrorText.describe(error))")
            }
            done.append(promise.futureResult)
        }
        var lastProgress = start
        while LoadClock.nanoseconds() < deadline {
            try await Task.sleep(nanoseconds: 50_000_000)
            let now = LoadClock.nanoseconds()
            if now - lastProgress >= 1_000_000_000 {
                lastProgress = now
                progress?(Double(now - start) / 1e9, totals.operations.load(ordering: .relaxed))
            }
        }
        for f in done { try? await f.get() }
        let elapsed = Double(LoadClock.nanoseconds() - start) / 1e9
        let (histogram, counts) = totals.merged.withLock { $0 }
        let ops = Int(histogram.totalCount)
        var outcomes: [String: Int] = [:]
        for (o, n) in counts { outcomes[o.rawValue] = n }
        if totals.errors.load(ordering: .relaxed) > 0 { outcomes["errors"] = totals.errors.load(ordering: .relaxed) }
        return Report(mode: "http", threads: 1, connections: connections, algorithm: nil, cache: nil, mix: mix.description,
                      durationSeconds: elapsed, operations: ops, throughputPerSecond: Double(ops) / elapsed,
                      latencyMicroseconds: Report.percentiles(histogram), outcomes: outcomes, wrongDecisions: totals.wrong.load(ordering: .relaxed))
    }

    struct Plan: Sendable {
        let table: [Outcome]
        let tokens: [Outcome: [String]]
        let repository: String
        let host: String
        let deadline: UInt64
        let seed: UInt64
    }

    /// One keep-alive connection sending requests back to back.
    final class Connection: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundOut = HTTPClientRequestPart

        let plan: Plan
        let totals: Totals
        let done: EventLoopPromise<Void>
        var rng: SplitMix
        var histogram = Histogram<UInt64>(highestTrackableValue: 600_000_000_000, numberOfSignificantValueDigits: .three)
        var counts: [Outcome: Int] = [:]
        var current: Outcome = .valid
        var sentAt: UInt64 = 0
        var status = 0
        var finished = false

        init(plan: Plan, totals: Totals, done: EventLoopPromise<Void>) {
            self.plan = plan
            self.totals = totals
            self.done = done
            rng = SplitMix(seed: plan.seed &* 0x2545_F491_4F6C_DD1D)
        }

        func channelActive(context: ChannelHandlerContext) {
            send(context)
            context.fireChannelActive()
        }

        func send(_ context: ChannelHandlerContext) {
            current = plan.table[Int(rng.next() % UInt64(plan.table.count))]
            let pool = plan.tokens[current] ?? []
            let token = pool.isEmpty ? "x" : pool[Int(rng.next() % UInt64(pool.count))]
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: plan.host)
            headers.add(name: "Authorization", value: "Bearer \(token)")
            let push = current == .wrongscope
            if push { headers.add(name: "Content-Length", value: "0") }
            let head = HTTPRequestHead(version: .http1_1, method: push ? .PUT : .GET,
                                       uri: "/v2/\(plan.repository)/manifests/latest", headers: headers)
            sentAt = LoadClock.nanoseconds()
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                status = Int(head.status.code)
            case .body:
                break
            case .end:
                let now = LoadClock.nanoseconds()
                _ = histogram.record(now - sentAt)
                counts[current, default: 0] += 1
                totals.operations.add(1, ordering: .relaxed)
                if status >= 500 { totals.errors.add(1, ordering: .relaxed) }
                if !Self.expected(current, status) { totals.wrong.add(1, ordering: .relaxed) }
                if now < plan.deadline { send(context) } else { finish(context) }
            }
        }

        static func expected(_ outcome: Outcome, _ status: Int) -> Bool {
            switch outcome {
            case .valid: return status != 401 && status != 403
            case .expired, .revoked, .malformed: return status == 401
            case .wrongscope: return status == 403
            }
        }

        func finish(_ context: ChannelHandlerContext) {
            guard !finished else { return }
            finished = true
            let h = histogram, c = counts
            totals.merged.withLock { merged in
                merged.0.add(h)
                for (o, n) in c { merged.1[o, default: 0] += n }
            }
            context.close(promise: nil)
            done.succeed(())
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !finished {
                totals.errors.add(1, ordering: .relaxed)
                finish(context)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension HTTPLoadTest.Connection: Sendable {}
