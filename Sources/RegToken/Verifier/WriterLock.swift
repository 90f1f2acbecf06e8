import Synchronization

/// The mutex that serialises writers of a ``SnapshotCell`` (readers never take it).
final class WriterLock: Sendable {
    private let mutex = Mutex<Void>(())

    func withLock<R>(_ body: () -> R) -> R {
        mutex.withLock { _ in body() }
    }
}
