internal import CRegTokenFastPath

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One immutable object, read by many threads without locks and replaced by a writer. The
/// verifier keeps its keys and revocation set in one; a server can keep its own snapshots too.
///
/// Readers neither lock, allocate, nor touch the object's reference count (which would make every
/// reader on every core fight over one cache line), and execute no locked instruction: each
/// thread has a record of the objects it is reading (hazard pointers, up to four nested reads),
/// written with plain stores. A writer, serialised by a mutex, swaps the pointer, makes every
/// thread of the process pass a full memory barrier (membarrier(2)), waits until no record holds
/// the old object and only then releases it. Without membarrier (old kernels, some seccomp
/// profiles; or `REGTOKEN_NO_MEMBARRIER` set) readers execute a full fence instead, which is
/// correct on its own. The protocol lives in CRegTokenFastPath (see `CRegTokenFastPath_Reader`).
public final class SnapshotCell<Value: AnyObject & Sendable>: @unchecked Sendable {
    /// The object's address (retained once by the cell); accessed only through the C atomics.
    private let pointer: UnsafeMutablePointer<UInt>
    private let writer = WriterLock()
    /// Replaced objects not yet proven unread (the memory barrier failed): released by a later
    /// write once it succeeds, or by deinit. Guarded by `writer`.
    private var pending: [UInt] = []

    public init(_ value: Value) {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: UInt(bitPattern: Unmanaged.passRetained(value).toOpaque()))
    }

    deinit {
        // No read can be running: a reader holds the cell.
        if let p = UnsafeRawPointer(bitPattern: CRegTokenFastPath_atomic_load(pointer)) {
            Unmanaged<Value>.fromOpaque(p).release()
        }
        for bits in pending { Self.release(bits) }
        pointer.deallocate()
    }

    /// Runs `body` with the current value. The value stays alive until `body` returns.
    /// - Warning: do not let the reference escape `body`, and do not replace this same cell inside
    ///   `body` (the writer would wait for this very read). Reading or replacing other cells, or
    ///   waiting for other threads that read, is fine.
    @inline(__always)
    public func read<R, E: Error>(_ body: (Value) throws(E) -> R) throws(E) -> R {
        var hazard: UnsafeMutablePointer<UInt>? = nil
        var bits = CRegTokenFastPath_reader_enter(pointer, &hazard)
        // No record free (a read nested more than four deep on one thread, or no memory for the
        // thread's record): a strong reference instead. `body` appears once, so that it inlines.
        if bits == 0 { bits = retainCurrent() }
        defer {
            if let hazard { CRegTokenFastPath_reader_exit(hazard) } else { Self.release(bits) }
        }
        // Never nil: the cell always holds a value.
        let unmanaged = Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: bits).unsafelyUnwrapped)
        let result: Result<R, E> = unmanaged._withUnsafeGuaranteedRef { value in
            Result { () throws(E) -> R in try body(value) }
        }
        return try result.get()
    }

    /// The current value's address, retained once (the slow path of `read`, and `load`): protected
    /// by the thread's transient record slot while it is retained, so it never waits for a writer.
    @inline(never)
    private func retainCurrent() -> UInt {
        let bits = CRegTokenFastPath_reader_protect_transient(pointer)
        guard bits != 0 else {
            // No record for this thread (out of memory): under the writer lock instead.
            return writer.withLock {
                let bits = CRegTokenFastPath_atomic_load(pointer)
                _ = Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: bits).unsafelyUnwrapped).retain()
                return bits
            }
        }
        _ = Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: bits).unsafelyUnwrapped).retain()
        CRegTokenFastPath_reader_clear_transient()
        return bits
    }

    @inline(never)
    private static func release(_ bits: UInt) {
        Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: bits).unsafelyUnwrapped).release()
    }

    /// Replaces the value.
    public func replace(_ value: Value) {
        update { _ in (value, ()) }
    }

    /// Replaces the value with `transform(current)`, atomically with respect to other writers.
    /// Returns what `transform` returned beside the new value. Waits for readers of the old value.
    public func update<R, E: Error>(_ transform: (Value) throws(E) -> (Value, R)) throws(E) -> R {
        let outcome: Result<R, E> = writer.withLock {
            let oldBits = CRegTokenFastPath_atomic_load(pointer)
            let old = Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: oldBits).unsafelyUnwrapped)
            let attempt: Result<(Value, R), E> = old._withUnsafeGuaranteedRef { v in
                Result { () throws(E) -> (Value, R) in try transform(v) }
            }
            let produced: (Value, R)
            switch attempt {
            case .failure(let error): return .failure(error)
            case .success(let value): produced = value
            }
            // The same object (an unchanged reload): nothing to publish, no reader to wait for.
            if produced.0 === old.takeUnretainedValue() { return .success(produced.1) }
            CRegTokenFastPath_atomic_store(pointer, UInt(bitPattern: Unmanaged.passRetained(produced.0).toOpaque()))
            // When no reader can be proven done with an old value (the memory barrier failed),
            // it is kept, and tried again on the next write.
            pending.append(oldBits)
            pending.removeAll { bits in
                guard CRegTokenFastPath_reader_synchronize(bits) == 1 else { return false }
                Self.release(bits)
                return true
            }
            return .success(produced.1)
        }
        return try outcome.get()
    }

    /// A strong reference to the current value (for reading outside the hot path). Never waits
    /// for a writer.
    public func load() -> Value {
        Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: retainCurrent()).unsafelyUnwrapped).takeRetainedValue()
    }
}
