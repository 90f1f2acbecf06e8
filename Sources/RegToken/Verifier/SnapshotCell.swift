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

    public init(_ value: Value) {
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: UInt(bitPattern: Unmanaged.passRetained(value).toOpaque()))
    }

    deinit {
        if let p = UnsafeRawPointer(bitPattern: CRegTokenFastPath_atomic_load(pointer)) {
            Unmanaged<Value>.fromOpaque(p).release()
        }
        pointer.deallocate()
    }

    /// Runs `body` with the current value. The value stays alive until `body` returns.
    /// - Warning: do not let the reference escape `body`.
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

    /// The current value's address, retained once (the slow path of `read`).
    @inline(never)
    private func retainCurrent() -> UInt {
        UInt(bitPattern: Unmanaged.passRetained(load()).toOpaque())
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
            CRegTokenFastPath_atomic_store(pointer, UInt(bitPattern: Unmanaged.passRetained(produced.0).toOpaque()))
            // When no reader can be proven done with the old value (the barrier failed, which
            // Linux documents only for unregistered processes), it is kept rather than freed.
            if CRegTokenFastPath_reader_synchronize(oldBits) == 1 { old.release() }
            return .success(produced.1)
        }
        return try outcome.get()
    }

    /// A strong reference to the current value (for reading outside the hot path).
    public func load() -> Value {
        writer.withLock {
            let bits = CRegTokenFastPath_atomic_load(pointer)
            return Unmanaged<Value>.fromOpaque(UnsafeRawPointer(bitPattern: bits).unsafelyUnwrapped).takeUnretainedValue()
        }
    }
}
