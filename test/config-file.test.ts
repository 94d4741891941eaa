import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, describeSettings, loadConfig, SETTINGS } from "../gateway/config.js";
import { removeDir } from "./support/server-process.js";

function withFile(content: string, run: (path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "chat-config-"));
  try {
    const path = join(dir, "settings.json");
    writeFileSync(path, content);
    run(path);
  } finally {
    removeDir(dir);
  }
}

describe("configuration file", () => {
  it("reads settings from --config or CHAT_CONFIG_FILE, with the environment taking precedence", () => {
    withFile(JSON.stringify({ CHAT_PORT: 9001, CHAT_SEND_BURST: "7", CHAT_METRICS: false }), (path) => {
      const fromFlag = loadConfig({}, ["--config", path]);
      expect(fromFlag).toMatchObject({ port: 9001, sendBurst: 7, metrics: false });
      expect(loadConfig({ CHAT_CONFIG_FILE: path }, []).port).toBe(9001);
      expect(loadConfig({ CHAT_PORT: "9002" }, [`--config=${path}`])).toMatchObject({ port: 9002, sendBurst: 7 });
    });
  });

  it("names the setting, the value and what is accepted when a file value is bad, and refuses unknown names", () => {
    withFile(JSON.stringify({ CHAT_PORT: "eighty" }), (path) => {
      expect(() => loadConfig({}, ["--config", path])).toThrow(new ConfigError('CHAT_PORT="eighty" is not valid: expected an integer 0-65535 (0 picks a free port)'));
    });
    withFile(JSON.stringify({ CHAT_PROT: 80 }), (path) => expect(() => loadConfig({}, ["--config", path])).toThrow(/CHAT_PROT is not a setting/));
    withFile("[1, 2]", (path) => expect(() => loadConfig({}, ["--config", path])).toThrow(/expected a JSON object/));
    expect(() => loadConfig({}, ["--config", "/nonexistent/settings.json"])).toThrow(ConfigError);
  });

  it("--help lists every setting with its default", () => {
    const help = describeSettings();
    for (const setting of SETTINGS) expect(help).toContain(setting.env);
    expect(help).toContain("CHAT_CONFIG_FILE");
    expect(help).toMatch(/CHAT_METRICS[\s\S]*default: true/);
  });
});
