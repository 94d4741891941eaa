export interface UserRecord {
  readonly userId: string;
  /** Lower-case, unique. */
  readonly username: string;
  readonly displayName: string;
  /** Self-describing KDF output, e.g. `scrypt$15$8$1$<salt>$<hash>`. */
  readonly passwordHash: string;
  readonly createdAt: Date;
}

export interface DeviceRecord {
  readonly deviceId: string;
  readonly userId: string;
  readonly name: string;
  readonly createdAt: Date;
  /** SHA-256 (hex) of the current refresh token; the token itself is never stored. */
  readonly refreshTokenHash: string;
  readonly refreshExpiresAt: Date;
  readonly revokedAt?: Date;
}

/** Users and their devices (one device per login). */
export interface AccountStore {
  /** Resolves false, storing nothing, when the username is taken. */
  createUser(user: UserRecord): Promise<boolean>;
  findUserByUsername(username: string): Promise<UserRecord | undefined>;
  findUsersByIds(userIds: readonly string[]): Promise<UserRecord[]>;
  findUsersByUsernames(usernames: readonly string[]): Promise<UserRecord[]>;
  createDevice(device: DeviceRecord): Promise<void>;
  getDevice(deviceId: string): Promise<DeviceRecord | undefined>;
  /**
   * Replaces the refresh token only if the stored hash still equals `expectedHash` and the device is
   * not revoked, so a refresh token can be used once. Resolves whether it was replaced.
   */
  rotateRefreshToken(deviceId: string, expectedHash: string, newHash: string, newExpiresAt: Date): Promise<boolean>;
  revokeDevice(deviceId: string, at: Date): Promise<void>;
}
