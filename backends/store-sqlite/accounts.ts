import Database from "better-sqlite3";
import type { AccountStore, DeviceRecord, UserRecord } from "../../services/ports/index.js";

interface UserRow {
  user_id: string;
  username: string;
  display_name: string;
  password_hash: string;
  created_at: bigint;
}

interface DeviceRow {
  device_id: string;
  user_id: string;
  name: string;
  created_at: bigint;
  refresh_token_hash: string;
  refresh_expires_at: bigint;
  revoked_at: bigint | null;
}

const USER_COLUMNS = `user_id, username, display_name, password_hash, created_at`;

function userFromRow(row: UserRow): UserRecord {
  return {
    userId: row.user_id,
    username: row.username,
    displayName: row.display_name,
    passwordHash: row.password_hash,
    createdAt: new Date(Number(row.created_at)),
  };
}

function deviceFromRow(row: DeviceRow): DeviceRecord {
  const device = {
    deviceId: row.device_id,
    userId: row.user_id,
    name: row.name,
    createdAt: new Date(Number(row.created_at)),
    refreshTokenHash: row.refresh_token_hash,
    refreshExpiresAt: new Date(Number(row.refresh_expires_at)),
  };
  return row.revoked_at === null ? device : { ...device, revokedAt: new Date(Number(row.revoked_at)) };
}

/** Expects `db.defaultSafeIntegers(true)`: integer columns are read as bigint and converted here. */
/**
 * Devices kept in memory; past it the longest-cached is dropped. Every request authenticates against
 * its device, and a read on the gateway's connection starts from a cold page cache whenever the append
 * thread has committed since (SQLite drops a connection's cache when another one wrote), so at
 * thousands of GraphQL operations a second the lookup was about a tenth of the event loop. Only this
 * process writes the file, and every write of a device drops its entry.
 */
const DEVICE_CACHE_SIZE = 50_000;

export function createSqliteAccounts(db: Database.Database): AccountStore {
  const devices = new Map<string, DeviceRecord>();
  const insertUser = db.prepare(
    `INSERT INTO users (${USER_COLUMNS}) VALUES (@userId, @username, @displayName, @passwordHash, @createdAt)`,
  );
  const userByUsername = db.prepare<[string], UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE username = ?`);
  // A JSON array bound as one parameter: one prepared statement for any number of ids, and no
  // brush with SQLite's limit on bound variables.
  const usersByIds = db.prepare<[string], UserRow>(
    `SELECT ${USER_COLUMNS} FROM users WHERE user_id IN (SELECT value FROM json_each(?)) ORDER BY user_id`,
  );
  const usersByUsernames = db.prepare<[string], UserRow>(
    `SELECT ${USER_COLUMNS} FROM users WHERE username IN (SELECT value FROM json_each(?)) ORDER BY username`,
  );
  const insertDevice = db.prepare(
    `INSERT INTO devices (device_id, user_id, name, created_at, refresh_token_hash, refresh_expires_at, revoked_at)
     VALUES (@deviceId, @userId, @name, @createdAt, @refreshTokenHash, @refreshExpiresAt, @revokedAt)`,
  );
  const deviceById = db.prepare<[string], DeviceRow>(
    `SELECT device_id, user_id, name, created_at, refresh_token_hash, refresh_expires_at, revoked_at FROM devices WHERE device_id = ?`,
  );
  // Compare-and-set in one statement: of two concurrent refreshes with the same token, one wins.
  const rotate = db.prepare<[string, number, string, string]>(
    `UPDATE devices SET refresh_token_hash = ?, refresh_expires_at = ?
      WHERE device_id = ? AND refresh_token_hash = ? AND revoked_at IS NULL`,
  );
  // Keeps the first revocation time: a repeated logout does not rewrite history.
  const revoke = db.prepare<[number, string]>(`UPDATE devices SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL`);

  return {
    async createUser(user) {
      try {
        insertUser.run({
          userId: user.userId,
          username: user.username,
          displayName: user.displayName,
          passwordHash: user.passwordHash,
          createdAt: user.createdAt.getTime(),
        });
        return true;
      } catch (error) {
        // Only username has a UNIQUE constraint; a reused user_id is SQLITE_CONSTRAINT_PRIMARYKEY,
        // a caller bug, and is rethrown.
        if (error instanceof Database.SqliteError && error.code === "SQLITE_CONSTRAINT_UNIQUE") return false;
        throw error;
      }
    },
    async findUserByUsername(username) {
      const row = userByUsername.get(username);
      return row && userFromRow(row);
    },
    async findUsersByIds(userIds) {
      if (userIds.length === 0) return [];
      return usersByIds.all(JSON.stringify(userIds)).map(userFromRow);
    },
    async findUsersByUsernames(usernames) {
      if (usernames.length === 0) return [];
      return usersByUsernames.all(JSON.stringify(usernames)).map(userFromRow);
    },
    async createDevice(device) {
      devices.delete(device.deviceId);
      insertDevice.run({
        deviceId: device.deviceId,
        userId: device.userId,
        name: device.name,
        createdAt: device.createdAt.getTime(),
        refreshTokenHash: device.refreshTokenHash,
        refreshExpiresAt: device.refreshExpiresAt.getTime(),
        revokedAt: device.revokedAt?.getTime() ?? null,
      });
    },
    async getDevice(deviceId) {
      const cached = devices.get(deviceId);
      if (cached) return cached;
      const row = deviceById.get(deviceId);
      if (!row) return undefined;
      const device = Object.freeze(deviceFromRow(row));
      if (devices.size >= DEVICE_CACHE_SIZE) devices.delete(devices.keys().next().value!);
      devices.set(deviceId, device);
      return device;
    },
    async rotateRefreshToken(deviceId, expectedHash, newHash, newExpiresAt) {
      devices.delete(deviceId);
      return rotate.run(newHash, newExpiresAt.getTime(), deviceId, expectedHash).changes === 1;
    },
    async revokeDevice(deviceId, at) {
      devices.delete(deviceId);
      revoke.run(at.getTime(), deviceId);
    },
  } satisfies AccountStore;
}
