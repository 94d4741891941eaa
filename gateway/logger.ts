import { pino, type Logger } from "pino";

export type { Logger };

/**
 * JSON lines on stdout. Request bodies are never logged, and the redaction list catches the fields
 * that could carry a secret if someone logs an object carelessly.
 */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: "chat-gateway" },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ["password", "text", "accessToken", "refreshToken", "token", "authorization", "*.password", "*.text", "*.accessToken", "*.refreshToken", "*.authorization"],
      censor: "[redacted]",
    },
  });
}
