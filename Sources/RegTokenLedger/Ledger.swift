import GRDB
import RegToken

/// The record of issued tokens and of revocations, in SQLite (through GRDB) in the state
/// directory. Every change is one `BEGIN IMMEDIATE` transaction, and SQLite's locking (WAL mode,
/// busy timeout) lets several regtoken processes use it at once without losing a change.
///
/// The `revocation` table is the source of truth for the revocation list; the signed file is
/// derived from it (see ``Home``), with the list version kept in `meta`.
public final class Ledger: Sendable {
    let pool: DatabasePool
    public let path: String

    /// Opens (creating if needed) the ledger at `path`.
    public init(path: String) throws(LedgerError) {
        self.path = path
        var config = Configuration()
        config.busyMode = .timeout(30)
        // GRDB opens write transactions of a DatabasePool with BEGIN IMMEDIATE.
        config.label = "regtoken-ledger"
        // Deleted content is overwritten, not left in free pages.
        // Durability: every commit (each acknowledged token, removal, account change) is fsynced
        // before it returns (WAL with synchronous FULL), so neither kill -9 nor a power loss
        // loses it. Deleted content is overwritten, not left in free pages.
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON") }
        do {
            pool = try DatabasePool(path: path, configuration: config)
            let hadValues = try pool.read { db in try db.tableExists("token") && db.columns(in: "token").contains { $0.name == "token" } }
            try Self.migrator.migrate(pool)
            if hadValues {
                // The values dropped by the migration must not survive in the file or the WAL.
                try pool.vacuum()
                _ = try pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
            }
        } catch {
            throw LedgerError(.storage, "cannot open the ledger \(path): \(Self.describe(error)); if it is damaged, move it aside (tokens it lists will no longer show in token-list)")
        }
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? DatabaseError { return e.message ?? "\(e.resultCode)" }
        return "\(error)"
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE token (
                    id TEXT PRIMARY KEY NOT NULL,
                    account TEXT NOT NULL,
                    region TEXT NOT NULL,
                    scope TEXT NOT NULL,
                    description TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER,
                    key_id TEXT NOT NULL,
                    token TEXT NOT NULL,
                    namespaces TEXT
                );
                CREATE INDEX token_by_owner ON token(account, region, created_at);
                CREATE INDEX token_by_expiry ON token(expires_at);
                CREATE TABLE revocation (
                    id TEXT PRIMARY KEY NOT NULL,
                    expires_at INTEGER,
                    key_id TEXT NOT NULL,
                    revoked_at INTEGER NOT NULL
                );
                CREATE TABLE meta (
                    key TEXT PRIMARY KEY NOT NULL,
                    value INTEGER NOT NULL
                );
                INSERT INTO meta(key, value) VALUES ('revocation_version', 0), ('revocation_issued_at', 0);
                """)
        }
        // No token values at rest: the claims and the key id are enough to sign a token again
        // (token-get). Ledgers made before drop their values here, and lose no token.
        m.registerMigration("v2-no-token-values") { db in
            try db.execute(sql: "ALTER TABLE token DROP COLUMN token")
        }
        // Accounts for regtoken serve: who owns which namespaces, and the hashes of their API keys.
        m.registerMigration("v3-accounts") { db in
            try db.execute(sql: """
                CREATE TABLE account (
                    name TEXT PRIMARY KEY NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE namespace (
                    name TEXT PRIMARY KEY NOT NULL,
                    account TEXT NOT NULL REFERENCES account(name) ON DELETE CASCADE
                );
                CREATE INDEX namespace_by_account ON namespace(account);
                CREATE TABLE api_key (
                    id TEXT PRIMARY KEY NOT NULL,
                    account TEXT NOT NULL REFERENCES account(name) ON DELETE CASCADE,
                    hash BLOB NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER
                );
                CREATE INDEX api_key_by_account ON api_key(account);
                INSERT INTO meta(key, value) VALUES ('namespaces_version', 0), ('namespaces_issued_at', 0);
                """)
        }
        // Fine-grained tokens: repository rules and address ranges, space-separated (neither a
        // pattern, its actions nor a range holds a space).
        m.registerMigration("v4-fine-grained-tokens") { db in
            try db.execute(sql: "ALTER TABLE token ADD COLUMN repositories TEXT")
            try db.execute(sql: "ALTER TABLE token ADD COLUMN allow_from TEXT")
        }
        return m
    }

    func write<T>(_ what: String, _ body: @Sendable (Database) throws -> T) throws(LedgerError) -> T {
        do {
            return try pool.write(body)
        } catch let e as LedgerError {
            throw e
        } catch {
            throw LedgerError(.storage, "cannot \(what) in the ledger \(path): \(Self.describe(error))")
        }
    }

    func read<T>(_ what: String, _ body: @Sendable (Database) throws -> T) throws(LedgerError) -> T {
        do {
            return try pool.read(body)
        } catch {
            throw LedgerError(.storage, "cannot \(what) from the ledger \(path): \(Self.describe(error))")
        }
    }

    // MARK: Tokens

    public func add(_ record: TokenRecord) throws(LedgerError) {
        try write("record the token") { db in
            try db.execute(sql: """
                INSERT INTO token(id, account, region, scope, description, created_at, expires_at, key_id, namespaces, repositories, allow_from)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [record.id.description, record.account, record.region, record.scope.rawValue, record.description,
                                 record.createdAt, record.expiresAt, record.keyID,
                                 record.namespaces.map { $0.joined(separator: ",") },
                                 record.repositories.map { $0.map(\.description).joined(separator: " ") },
                                 record.allowFrom.map { $0.map(\.description).joined(separator: " ") }])
        }
    }

    /// The tokens of `account` in `region`, oldest first.
    public func tokens(account: String, region: String) throws(LedgerError) -> [TokenRecord] {
        try read("list tokens") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM token WHERE account = ? AND region = ? ORDER BY created_at, id",
                             arguments: [account, region]).compactMap(Self.record)
        }
    }

    /// Every token, any account or region (for tests and administration).
    public func allTokens() throws(LedgerError) -> [TokenRecord] {
        try read("list tokens") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM token ORDER BY created_at, id").compactMap(Self.record)
        }
    }

    public func token(id: UUIDBytes, account: String, region: String) throws(LedgerError) -> TokenRecord? {
        try read("read the token") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM token WHERE id = ? AND account = ? AND region = ?",
                             arguments: [id.description, account, region]).flatMap(Self.record)
        }
    }

    static func record(_ row: Row) -> TokenRecord? {
        guard let id = UUIDBytes(row["id"] as String), let scope = Scope(rawValue: row["scope"]) else { return nil }
        let ns: String? = row["namespaces"]
        let rules: String? = row["repositories"]
        let ranges: String? = row["allow_from"]
        // A rule or range that does not read back makes the record unusable, not wider.
        let repositories = rules.map { $0.split(separator: " ").map { RepositoryRule(claim: String($0)) } }
        let allowFrom = ranges.map { $0.split(separator: " ").map { AddressRange(String($0)) } }
        if repositories?.contains(where: { $0 == nil }) == true || allowFrom?.contains(where: { $0 == nil }) == true { return nil }
        return TokenRecord(id: id, account: row["account"], region: row["region"], scope: scope, description: row["description"],
                           createdAt: row["created_at"], expiresAt: row["expires_at"], keyID: row["key_id"],
                           namespaces: ns.map { $0.split(separator: ",").map(String.init) },
                           repositories: repositories?.compactMap { $0 }, allowFrom: allowFrom?.compactMap { $0 })
    }

    /// Removes tokens of `account` in `region` in one transaction: all of them, or (when one id is
    /// unknown) none. Those not yet expired at `now` go onto the revocation table and the list
    /// version is bumped. Returns the removed records.
    public func remove(ids: [UUIDBytes], account: String, region: String, now: Int64) throws(LedgerError) -> [TokenRecord] {
        try write("remove tokens") { db in
            var removed: [TokenRecord] = []
            for id in ids {
                guard let row = try Row.fetchOne(db, sql: "SELECT * FROM token WHERE id = ? AND account = ? AND region = ?",
                                                 arguments: [id.description, account, region]),
                      let record = Self.record(row) else {
                    throw LedgerError(.notFound, "no token \(id) for account \(account) in region \(region); nothing was removed (see regtoken token-list)")
                }
                removed.append(record)
            }
            try Self.delete(removed, db, now: now)
            return removed
        }
    }

    /// Deletes tokens that expired longer ago than any verifier's leeway (until then a token can
    /// still be removed, and so revoked, while some verifier would accept it), and revocation
    /// entries past retention. Returns the number of tokens deleted and whether the revocation
    /// table changed (its version is then bumped).
    @discardableResult
    public func purgeExpired(now: Int64) throws(LedgerError) -> (tokens: Int, revocationsChanged: Bool) {
        try write("delete expired tokens") { db in
            try db.execute(sql: "DELETE FROM token WHERE expires_at IS NOT NULL AND expires_at + ? <= ?",
                           arguments: [VerifierConfiguration.maximumLeeway, now])
            let tokens = db.changesCount
            try db.execute(sql: "DELETE FROM revocation WHERE expires_at IS NOT NULL AND expires_at + ? <= ?",
                           arguments: [RevocationList.retentionAfterExpiry, now])
            let changed = db.changesCount > 0
            if changed { try Self.bumpVersion(db, now: now) }
            return (tokens, changed)
        }
    }

    /// Deletes every token and revocation of a retired key (its tokens can no longer verify).
    public func forgetKey(_ keyID: String, now: Int64) throws(LedgerError) -> Int {
        try write("forget a retired key's tokens") { db in
            try db.execute(sql: "DELETE FROM token WHERE key_id = ?", arguments: [keyID])
            let tokens = db.changesCount
            try db.execute(sql: "DELETE FROM revocation WHERE key_id = ?", arguments: [keyID])
            if db.changesCount > 0 { try Self.bumpVersion(db, now: now) }
            return tokens
        }
    }

    /// Deletes tokens, revoking those a verifier could still accept (a token past its expiry
    /// still verifies within a verifier's leeway), and bumps the list version when any was.
    static func delete(_ records: [TokenRecord], _ db: Database, now: Int64) throws {
        var revoked = 0
        for record in records {
            try db.execute(sql: "DELETE FROM token WHERE id = ?", arguments: [record.id.description])
            if !record.isPastEveryLeeway(at: now) {
                try db.execute(sql: "INSERT OR REPLACE INTO revocation(id, expires_at, key_id, revoked_at) VALUES (?, ?, ?, ?)",
                               arguments: [record.id.description, record.expiresAt, record.keyID, now])
                revoked += 1
            }
        }
        if revoked > 0 { try bumpVersion(db, now: now) }
    }

    static func bumpVersion(_ db: Database, now: Int64) throws {
        let current = try storedVersion(db)
        guard current < RevocationList.maximumVersion else {
            throw LedgerError(.storage, "the revocation list version is at its maximum (\(current)); the ledger cannot publish another list")
        }
        try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'revocation_version'", arguments: [Int64(current + 1)])
        try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'revocation_issued_at'", arguments: [now])
    }

    /// The stored list version, checked: an integer from 0 to ``RevocationList/maximumVersion``
    /// (a damaged value is a clear error, never a trap).
    static func storedVersion(_ db: Database) throws -> UInt64 {
        let value = try DatabaseValue.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'revocation_version'") ?? .null
        guard case .int64(let v) = value.storage, v >= 0, UInt64(v) <= RevocationList.maximumVersion else {
            throw LedgerError(.storage, "the ledger's revocation list version is damaged (\(value)); restore the ledger from a backup")
        }
        return UInt64(v)
    }

    // MARK: Revocations

    /// The revocation list as the ledger holds it (the signed file is made from this).
    public func revocationList() throws(LedgerError) -> RevocationList {
        try read("read revocations") { db in
            let version = try Self.storedVersion(db)
            let issued = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'revocation_issued_at' AND typeof(value) = 'integer'") ?? 0
            let entries = try Row.fetchAll(db, sql: "SELECT id, expires_at FROM revocation").compactMap { row -> RevocationList.Entry? in
                guard let id = UUIDBytes(row["id"] as String) else { return nil }
                return RevocationList.Entry(id: id, expiresAt: row["expires_at"])
            }
            return RevocationList(version: version, issuedAt: issued, entries: entries)
        }
    }

    /// A new list version with the same entries, made at `now`: a fresh signature for verifiers
    /// that bound how old a signed list may be.
    public func renewRevocationList(now: Int64) throws(LedgerError) {
        try write("renew the revocation list") { db in try Self.bumpVersion(db, now: now) }
    }

    /// Raises the stored list version to at least `version` (after finding a newer verified file
    /// on disk).
    public func raiseRevocationVersion(to version: UInt64, now: Int64) throws(LedgerError) {
        guard version <= RevocationList.maximumVersion else {
            throw LedgerError(.storage, "revocation list version \(version) is beyond the largest possible (\(RevocationList.maximumVersion))")
        }
        try write("update the revocation version") { db in
            let current = try Self.storedVersion(db)
            guard version > current else { return }
            try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'revocation_version'", arguments: [Int64(version)])
            try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'revocation_issued_at'", arguments: [now])
        }
    }
}

extension TokenRecord {
    /// Expired: no longer listed (verifiers may still accept it within their leeway).
    public func isExpired(at now: Int64) -> Bool {
        guard let expiresAt else { return false }
        return now >= expiresAt
    }

    /// Expired longer ago than any verifier's leeway: no verifier accepts it any more.
    func isPastEveryLeeway(at now: Int64) -> Bool {
        guard let expiresAt else { return false }
        return now >= expiresAt &+ VerifierConfiguration.maximumLeeway
    }
}
