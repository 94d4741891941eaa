import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { PASSWORD, uniqueName } from "./users.js";

/** Generous: browsers and a gateway share a small, busy machine. */
export const WAIT = { timeout: 30_000 };

/** Debian's Chromium, headless, with nothing reaching out to the network on its own. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

export interface Person {
  readonly page: Page;
  readonly context: BrowserContext;
  readonly username: string;
  readonly displayName: string;
}

/** A page that records what went wrong in it: uncaught errors and console errors. */
export async function newPage(browser: Browser, problems: string[], viewport = { width: 1000, height: 700 }): Promise<Page> {
  const page = await (await browser.newContext({ viewport })).newPage();
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (entry) => entry.type() === "error" && problems.push(`console: ${entry.text()}`));
  return page;
}

/**
 * Signs up through the login screen, as a person would. `typed` is the username as typed (it may
 * have capitals: the server lower-cases it); the result holds the stored one.
 */
export async function signUp(page: Page, baseUrl: string, prefix: string, typed?: (username: string) => string): Promise<Person> {
  const username = uniqueName(prefix);
  const displayName = `${prefix[0]!.toUpperCase()}${prefix.slice(1)} ${username.slice(-4)}`;
  await page.goto(baseUrl);
  await page.getByRole("tab", { name: "Sign up" }).click();
  await page.getByLabel("Username", { exact: true }).fill(typed ? typed(username) : username);
  await page.getByLabel("Password", { exact: true }).fill(PASSWORD);
  await page.getByLabel("Display name (optional)").fill(displayName);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.locator("#me", { hasText: displayName }).waitFor(WAIT);
  return { page, context: page.context(), username, displayName };
}
