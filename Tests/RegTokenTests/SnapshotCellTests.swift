import CRegTokenFastPath
import Foundation
import Synchronization
import Testing
@testable import RegToken

/// Objects that record their release, so that a reader can tell whether the object it is reading
/// was released under it.
final class Tracked: Sendable {
    static let released = Mutex<Set<Int>>([])
    let id: Int
    init(_ id: Int) { self.id = id }
    deinit {
        let id = self.id
        Self.released.withLock { _ = $0.insert(id) }
    }
    static func wasReleased(_ id: Int) -> Bool { released.withLock { $0.contains(id) } }
}

/// SnapshotCell's readers hold no lock and execute no locked instruction; a writer frees the
/// object it replaced only after every reader of it is done. Run twice by scripts/test.sh: with
/// membarrier, and with REGTOKEN_NO_MEMBARRIER=1 (readers fence instead).
@Suite("SnapshotCell", .serialized)
struct SnapshotCellTests {
    static var mode: String { ProcessInfo.processInfo.environment["REGTOKEN_NO_MEMBARRIER"] != nil ? "fences" : "membarrier if the kernel has it" }

    @Test("readers, nested up to six deep over six cells, never see an object released under them while writers replace all six")
    func noUseAfterRelease() throws {
        let cells = (0..<6).map { SnapshotCell(Tracked($0 * 1_000_000)) }
        let stop = Atomic<Bool>(false)
        let reads = Atomic<Int>(0)
        let bad = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
        let readers = 3

        // Reads cells[depth...] nested inside one another; each checks, at the end of its body
        // (after the nested reads and some work), that its object is still unreleased.
        @Sendable func nested(_ depth: Int, _ spin: Int) {
            cells[depth].read { object in
                let id = object.id
                var x = id
                for i in 0..<spin { x = x &* 31 &+ i }
                if depth + 1 < cells.count { nested(depth + 1, spin) }
                if Tracked.wasReleased(id) || object.id != id { bad.add(1, ordering: .relaxed) }
                if x == 42 { bad.add(0, ordering: .relaxed) }
            }
        }
        for r in 0..<readers {
            Thread {
                var n = 0
                while !stop.load(ordering: .relaxed) {
                    nested((n + r) % cells.count, n % 200)
                    n += 1
                }
                reads.add(n, ordering: .relaxed)
                done.signal()
            }.start()
        }
        var created = (0..<cells.count).map { [$0 * 1_000_000] }
        let deadline = Date().addingTimeInterval(3)
        var swaps = 0
        while Date() < deadline {
            for (i, cell) in cells.enumerated() {
                let id = i * 1_000_000 + created[i].count
                cell.replace(Tracked(id))
                created[i].append(id)
                swaps += 1
            }
        }
        stop.store(true, ordering: .relaxed)
        for _ in 0..<readers { done.wait() }
        let wrong = bad.load(ordering: .relaxed)
        let readCount = reads.load(ordering: .relaxed)
        #expect(wrong == 0, "\(Self.mode)")
        #expect(readCount > 1_000)
        #expect(swaps > 600)
        // Every replaced object was released (none leaked); the six in force were not.
        let released = Tracked.released.withLock { $0 }
        for i in 0..<cells.count {
            let current = cells[i].read { $0.id }
            #expect(current == created[i].last)
            #expect(!released.contains(current))
            #expect(created[i].dropLast().allSatisfy { released.contains($0) })
        }
        let usesMembarrier = CRegTokenFastPath_reader_uses_membarrier()
        if ProcessInfo.processInfo.environment["REGTOKEN_NO_MEMBARRIER"] != nil {
            #expect(usesMembarrier == 0)
        }
    }

    @Test("a thread that exits gives its reader record back: 400 short-lived threads reuse a few records, and writers do not wait for them")
    func exitedThreadsReleaseRecords() throws {
        let cell = SnapshotCell(Tracked(-1))
        _ = cell.read { $0.id }
        let before = CRegTokenFastPath_reader_records()
        for round in 0..<100 {
            let group = DispatchGroup()
            for _ in 0..<4 {
                group.enter()
                Thread {
                    _ = cell.read { $0.id }
                    group.leave()
                }.start()
            }
            group.wait()
            cell.replace(Tracked(-2 - round))
        }
        // Four threads at a time (plus the test's own threads): far fewer records than threads.
        #expect(CRegTokenFastPath_reader_records() < before + 64)
    }

    @Test("a value released by the writer while a reader still reads it stays alive until the reader is done")
    func writerWaitsForReader() throws {
        let cell = SnapshotCell(Tracked(-10_000))
        let entered = DispatchSemaphore(value: 0)
        let leave = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let sawAlive = Atomic<Bool>(false)
        Thread {
            cell.read { object in
                entered.signal()
                leave.wait()
                sawAlive.store(!Tracked.wasReleased(object.id), ordering: .relaxed)
            }
            finished.signal()
        }.start()
        entered.wait()
        let replaced = Atomic<Bool>(false)
        Thread {
            cell.replace(Tracked(-10_001))
            replaced.store(true, ordering: .relaxed)
        }.start()
        // The writer is stuck until the reader leaves.
        Thread.sleep(forTimeInterval: 0.3)
        let replacedEarly = replaced.load(ordering: .relaxed)
        #expect(!replacedEarly)
        #expect(!Tracked.wasReleased(-10_000))
        leave.signal()
        finished.wait()
        let alive = sawAlive.load(ordering: .relaxed)
        #expect(alive)
        let deadline = Date().addingTimeInterval(10)
        while !replaced.load(ordering: .relaxed) && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        let replacedLate = replaced.load(ordering: .relaxed)
        #expect(replacedLate)
        #expect(Tracked.wasReleased(-10_000))
    }
}
