import Foundation
import Synchronization
import Testing
@testable import RegToken

/// Objects that record their release, and that a writer marks retired once `replace` has
/// returned: from then on no reader may still be inside a read of them.
final class Tracked: Sendable {
    static let released = Mutex<Set<Int>>([])
    let id: Int
    let retired = Atomic<Bool>(false)
    init(_ id: Int) { self.id = id }
    deinit {
        let id = self.id
        Self.released.withLock { _ = $0.insert(id) }
    }
    static func wasReleased(_ id: Int) -> Bool { released.withLock { $0.contains(id) } }
}

struct SnapshotTestError: Error {}

/// A bounded wait (20 s, far above what the work takes): a deadlock fails the test instead of
/// hanging the run.
func waited(_ semaphore: DispatchSemaphore) -> Bool {
    semaphore.wait(timeout: .now() + 20) == .success
}

/// Runs `body` on a thread of its own; true when it returned within `seconds` (a guard against a
/// deadlock, not a measurement: the bound is far above what the work takes).
func finishes(within seconds: Double = 20, _ body: @escaping @Sendable () -> Void) -> Bool {
    let done = DispatchSemaphore(value: 0)
    Thread {
        body()
        done.signal()
    }.start()
    return done.wait(timeout: .now() + seconds) == .success
}

/// A thread parked inside `cell.read`: `leave` lets it go, `done` is signalled when its read has
/// ended. Returns nil when the reader did not get in (a deadlock).
func parkedReader(_ cell: SnapshotCell<Tracked>, whileInside: (@Sendable (Tracked) -> Void)? = nil)
    -> (leave: DispatchSemaphore, done: DispatchSemaphore)? {
    let entered = DispatchSemaphore(value: 0)
    let leave = DispatchSemaphore(value: 0)
    let done = DispatchSemaphore(value: 0)
    Thread {
        cell.read { object in
            entered.signal()
            leave.wait()
            whileInside?(object)
        }
        done.signal()
    }.start()
    return waited(entered) ? (leave, done) : nil
}

/// SnapshotCell's readers hold no lock and never wait; a writer releases the object it replaced
/// only after every reader of it is done, and never waits for anything else.
@Suite("SnapshotCell", .serialized)
struct SnapshotCellTests {

    @Test("no reader is still inside a read of an object once replace has returned, reads nested up to six deep over six cells; every replaced object is released")
    func noReadAfterReplace() throws {
        let cells = (0..<6).map { SnapshotCell(Tracked($0 * 1_000_000)) }
        let stop = Atomic<Bool>(false)
        let reads = Atomic<Int>(0)
        let bad = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
        let readers = 3

        // Reads cells[depth...] nested inside one another. At the end of each body (after the
        // nested reads and some work) the object must be this cell's and not retired: replace
        // waits for its readers, at every depth.
        @Sendable func nested(_ depth: Int, _ spin: Int) {
            cells[depth].read { object in
                var x = object.id
                for i in 0..<spin { x = x &* 31 &+ i }
                if depth + 1 < cells.count { nested(depth + 1, spin) }
                if object.id / 1_000_000 != depth { bad.add(1, ordering: .relaxed) }
                if object.retired.load(ordering: .acquiring) { bad.add(1, ordering: .relaxed) }
                if x == 42 { bad.add(0, ordering: .relaxed) }
            }
        }
        for r in 0..<readers {
            Thread {
                var n = 0
                while !stop.load(ordering: .relaxed) {
                    nested((n + r) % cells.count, n % 64)
                    n += 1
                }
                reads.add(n, ordering: .relaxed)
                done.signal()
            }.start()
        }
        // Every object stays alive until the end (the test holds it), so a reader that reads
        // too long finds a retired object, not a freed one reused at the same address.
        var all = [[Tracked]](repeating: [], count: cells.count)
        var created = (0..<cells.count).map { [$0 * 1_000_000] }
        var previous: [Tracked] = cells.map { $0.load() }
        let deadline = Date().addingTimeInterval(3)
        var swaps = 0
        while Date() < deadline {
            for (i, cell) in cells.enumerated() {
                let id = i * 1_000_000 + created[i].count
                let object = Tracked(id)
                cell.replace(object)
                previous[i].retired.store(true, ordering: .releasing)
                all[i].append(previous[i])
                previous[i] = object
                created[i].append(id)
                swaps += 1
            }
        }
        stop.store(true, ordering: .relaxed)
        for _ in 0..<readers { #expect(waited(done)) }
        let wrong = bad.load(ordering: .relaxed)
        let readCount = reads.load(ordering: .relaxed)
        #expect(wrong == 0)
        #expect(readCount > 0 && swaps > 0)
        all = []
        previous = []
        // Every replaced object was released (none leaked); the six in force were not.
        let released = Tracked.released.withLock { $0 }
        for i in 0..<cells.count {
            let current = cells[i].read { $0.id }
            #expect(current == created[i].last)
            #expect(!released.contains(current))
            #expect(created[i].dropLast().allSatisfy { released.contains($0) })
        }
    }

    @Test("a value replaced while a reader still reads it stays alive until the reader is done")
    func writerWaitsForReader() throws {
        let cell = SnapshotCell(Tracked(-10_000))
        let sawAlive = Atomic<Bool>(false)
        let parked = try #require(parkedReader(cell) { object in
            sawAlive.store(!Tracked.wasReleased(object.id), ordering: .relaxed)
        })
        let replaced = Atomic<Bool>(false)
        Thread {
            cell.replace(Tracked(-10_001))
            replaced.store(true, ordering: .relaxed)
        }.start()
        // The writer is held until the reader leaves.
        Thread.sleep(forTimeInterval: 0.3)
        let replacedEarly = replaced.load(ordering: .relaxed)
        #expect(!replacedEarly)
        #expect(!Tracked.wasReleased(-10_000))
        parked.leave.signal()
        #expect(waited(parked.done))
        let alive = sawAlive.load(ordering: .relaxed)
        #expect(alive)
        let deadline = Date().addingTimeInterval(20)
        while !replaced.load(ordering: .relaxed) && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        let replacedLate = replaced.load(ordering: .relaxed)
        #expect(replacedLate)
        #expect(Tracked.wasReleased(-10_000))
    }

    /// A reader parked inside `x.read` (under `nesting` further reads), a writer of `x` then
    /// waiting for it, and `inside` run by the reader while the writer waits: both must finish.
    func whileWriterWaits(nesting: [SnapshotCell<Tracked>] = [], _ inside: @escaping @Sendable () -> Void) -> (reader: Bool, writer: Bool) {
        let x = SnapshotCell(Tracked(-20_000))
        let entered = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        let readerDone = DispatchSemaphore(value: 0)
        Thread {
            x.read { _ in
                @Sendable func deeper(_ k: Int) {
                    if k == nesting.count {
                        entered.signal()
                        go.wait()
                        inside()
                    } else {
                        nesting[k].read { _ in deeper(k + 1) }
                    }
                }
                deeper(0)
            }
            readerDone.signal()
        }.start()
        // Bounded waits throughout: a deadlock fails the test instead of hanging the run.
        guard entered.wait(timeout: .now() + 20) == .success else { return (false, false) }
        let writerDone = DispatchSemaphore(value: 0)
        Thread {
            x.replace(Tracked(-20_001))
            writerDone.signal()
        }.start()
        Thread.sleep(forTimeInterval: 0.2)   // lets the writer reach its wait; not a measurement
        go.signal()
        let reader = readerDone.wait(timeout: .now() + 20) == .success
        let writer = writerDone.wait(timeout: .now() + 20) == .success
        return (reader, writer)
    }

    @Test("no deadlock: a reader nested six deep reads cells again, and load()s, while a writer waits for its outermost read")
    func nestedReadsWhileWriterWaits() {
        let others = (0..<3).map { SnapshotCell(Tracked(-30_000 - $0)) }
        let x2 = SnapshotCell(Tracked(-30_100))
        // x (depth 1), three others (2-4), then x2 and x2 again: none may take a lock the writer
        // of x holds.
        let outcome = whileWriterWaits(nesting: others) {
            x2.read { _ in x2.read { o in _ = o.id } }
            _ = x2.load()
            _ = others[0].read { $0.id }
        }
        #expect(outcome.reader && outcome.writer)
    }

    @Test("no deadlock: a reader of one cell replaces another while the first one's writer waits")
    func replaceOtherCellInsideRead() {
        let y = SnapshotCell(Tracked(-40_000))
        let outcome = whileWriterWaits { y.replace(Tracked(-40_001)) }
        #expect(outcome.reader && outcome.writer)
        let current = Atomic<Int>(0)
        #expect(finishes { current.store(y.read { $0.id }, ordering: .relaxed) })
        #expect(current.load(ordering: .relaxed) == -40_001)
    }

    @Test("no deadlock: a reader waits for a new thread's first read while a writer waits for the reader")
    func newThreadReadsInsideRead() {
        let z = SnapshotCell(Tracked(-50_000))
        let outcome = whileWriterWaits {
            let read = DispatchSemaphore(value: 0)
            Thread {
                _ = z.read { $0.id }
                _ = z.load()
                read.signal()
            }.start()
            read.wait()
        }
        #expect(outcome.reader && outcome.writer)
    }

    @Test("an update that keeps the same object returns at once, even while a reader reads it")
    func unchangedUpdateDoesNotWait() throws {
        let cell = SnapshotCell(Tracked(-60_000))
        let parked = try #require(parkedReader(cell))
        let returned = finishes { cell.update { ($0, ()) } }
        #expect(returned)
        parked.leave.signal()
        #expect(waited(parked.done))
        #expect(!Tracked.wasReleased(-60_000))
    }

    @Test("a read whose body throws ends the read: writers do not wait for it")
    func throwingBody() {
        let cell = SnapshotCell(Tracked(-70_000))
        let cells = (0..<6).map { SnapshotCell(Tracked(-70_100 - $0)) }
        for _ in 0..<10 {
            #expect(throws: SnapshotTestError.self) { try cell.read { (_) throws(SnapshotTestError) in throw SnapshotTestError() } }
            // Thrown from six deep.
            func nest(_ k: Int) throws(SnapshotTestError) {
                if k == cells.count { throw SnapshotTestError() }
                try cells[k].read { (_) throws(SnapshotTestError) in try nest(k + 1) }
            }
            #expect(throws: SnapshotTestError.self) { try nest(0) }
        }
        #expect(finishes { cell.replace(Tracked(-70_001)) })
        #expect(finishes { for c in cells { c.replace(Tracked(-70_200)) } })
        #expect(Tracked.wasReleased(-70_000))
    }
}
