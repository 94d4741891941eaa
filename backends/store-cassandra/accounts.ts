import type { AccountStore, DeviceRecord, UserRecord } from "../../services/ports/index.js";
import { wasApplied, type CqlSession, type Row } from "./session.js";

export interface AccountTables {
  readonly users: string;
  readonly usersByUsername: string;
  readonly devices: string;
}

const FAN_OUT = 32;

function userFromRow(row: Row): UserRecord {
  return {
    userId: row.user_id as string,
    username: row.username as string,
    displayName: row.display_name as string,
    passwordHash: row.password_hash as string,
    createdAt: row.created_at as Date,
  };
}

function deviceFromRow(row: Row): DeviceRecord {
  const device = {
    deviceId: row.device_id as string,
    userId: row.user_id as string,
    name: row.name as string,
    createdAt: row.created_at as Date,
    refreshTokenHash: row.refresh_token_hash as string,
    refreshExpiresAt: row.refresh_expires_at as Date,
  };
  return row.revoked_at == null ? device : { ...device, revokedAt: row.revoked_at as Date };
}

/**
 * Users by id and by username, and devices. Every write to a device goes through a lightweight
 * transaction, its creation included: mixing plain writes (client clock) with Paxos writes (server
 * clock) on the same cells could let a skewed client clock shadow a later rotation.
 */
export function createCassandraAccounts(session: CqlSession, tables: AccountTables): AccountStore {
  const USER = `user_id, username, display_name, password_hash, created_at`;
  const claimUsername = `INSERT INTO ${tables.usersByUsername} (${USER}) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS`;
  const insertUser = `INSERT INTO ${tables.users} (${USER}) VALUES (?, ?, ?, ?, ?)`;
  const userById = `SELECT ${USER} FROM ${tables.users} WHERE user_id = ?`;
  const userByUsername = `SELECT ${USER} FROM ${tables.usersByUsername} WHERE username = ?`;
  const DEVICE = `device_id, user_id, name, created_at, refresh_token_hash, refresh_expires_at, revoked_at`;
  const insertDevice = `INSERT INTO ${tables.devices} (${DEVICE}) VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS`;
  const deviceById = `SELECT ${DEVICE} FROM ${tables.devices} WHERE device_id = ?`;
  // Compare-and-set: of two concurrent refreshes with the same token, one wins.
  const rotate = `UPDATE ${tables.devices} SET refresh_token_hash = ?, refresh_expires_at = ? WHERE device_id = ? IF refresh_token_hash = ? AND revoked_at = null`;
  // Keeps the first revocation time; `user_id != null` stops the update from creating a row for an unknown device.
  const revoke = `UPDATE ${tables.devices} SET revoked_at = ? WHERE device_id = ? IF revoked_at = null AND user_id != null`;

  const userParams = (user: UserRecord) => [user.userId, user.username, user.displayName, user.passwordHash, user.createdAt];

  async function lookup(query: string, keys: readonly string[]): Promise<UserRecord[]> {
    const unique = [...new Set(keys)];
    const found: UserRecord[] = [];
    for (let i = 0; i < unique.length; i += FAN_OUT) {
      const rows = await Promise.all(unique.slice(i, i + FAN_OUT).map(async (key) => (await session.read(query, [key]))[0]));
      for (const row of rows) if (row) found.push(userFromRow(row));
    }
    return found;
  }

  return {
    async createUser(user) {
      // The username is claimed first, so a user row never exists without its unique name.
      const claim = await session.conditional(claimUsername, userParams(user));
      // The same user retried after a crash between the two writes finds its own claim and finishes.
      if (!wasApplied(claim) && claim[0]?.user_id !== user.userId) return false;
      await session.write(insertUser, userParams(user));
      return true;
    },
    async findUserByUsername(username) {
      const [row] = await session.read(userByUsername, [username]);
      return row && userFromRow(row);
    },
    async findUsersByIds(userIds) {
      return (await lookup(userById, userIds)).sort((a, b) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0));
    },
    async findUsersByUsernames(usernames) {
      return (await lookup(userByUsername, usernames)).sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0));
    },
    async createDevice(device) {
      const claim = await session.conditional(insertDevice, [
        device.deviceId,
        device.userId,
        device.name,
        device.createdAt,
        device.refreshTokenHash,
        device.refreshExpiresAt,
        device.revokedAt ?? null,
      ]);
      if (!wasApplied(claim)) throw new Error(`device ${device.deviceId} already exists`);
    },
    async getDevice(deviceId) {
      const [row] = await session.read(deviceById, [deviceId]);
      return row && deviceFromRow(row);
    },
    async rotateRefreshToken(deviceId, expectedHash, newHash, newExpiresAt) {
      return wasApplied(await session.conditional(rotate, [newHash, newExpiresAt, deviceId, expectedHash]));
    },
    async revokeDevice(deviceId, at) {
      await session.conditional(revoke, [at, deviceId]);
    },
  } satisfies AccountStore;
}
