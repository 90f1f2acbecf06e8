import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Runs a server's service group under the signals every regtoken server answers: the first
/// SIGTERM or SIGINT shuts the group down gracefully (servers drain), a second one cancels it at
/// once; SIGHUP calls `onHangup` (reloads), when given.
enum ServiceRunner {
    enum Outcome {
        /// Stopped by a graceful shutdown, or every service returned.
        case stopped
        /// Cancelled by a second signal: requests in flight were cut.
        case cut
        case failed(any Error)
    }

    static func run(_ group: ServiceGroup, logger: Logger, onHangup: (@Sendable () async -> Void)? = nil) async -> Outcome {
        var trapped: [UnixSignal] = [.sigterm, .sigint]
        if onHangup != nil { trapped.append(.sighup) }
        let signals = await UnixSignalsSequence(trapping: trapped)
        let running = Task { try await group.run() }
        let cut = Mutex(false)
        let watcher = Task {
            var stopping = false
            for await sig in signals {
                if sig == .sighup {
                    await onHangup?()
                } else if !stopping {
                    stopping = true
                    logger.info("\(sig): shutting down gracefully (a second signal stops at once)")
                    await group.triggerGracefulShutdown()
                } else {
                    logger.warning("\(sig) again: stopping at once")
                    cut.withLock { $0 = true }
                    running.cancel()
                }
            }
        }
        let result = await running.result
        watcher.cancel()
        if cut.withLock({ $0 }) { return .cut }
        if case .failure(let error) = result { return .failed(error) }
        return .stopped
    }
}
