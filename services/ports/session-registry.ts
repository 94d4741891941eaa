export interface DeviceLocation {
  readonly deviceId: string;
  readonly gatewayId: string;
}

/**
 * Which gateway holds which device. An entry lives while its gateway keeps refreshing it, so the
 * devices of a gateway that died without a word drop out after the registry's time-to-live.
 */
export interface SessionRegistry {
  /** This registry's gateway. */
  readonly gatewayId: string;
  /**
   * The device is connected to this gateway (kept alive by the registry until unregistered).
   * Registrations nest: a device registered n times stays until unregistered n times, because a
   * reconnecting device opens its new stream before the old one's end has been handled.
   */
  register(userId: string, deviceId: string): Promise<void>;
  unregister(userId: string, deviceId: string): Promise<void>;
  /** For each user, the gateways holding at least one of their devices (users with none are left out). */
  gatewaysOf(userIds: readonly string[]): Promise<Map<string, string[]>>;
  devicesOf(userId: string): Promise<DeviceLocation[]>;
  close(): Promise<void>;
}
