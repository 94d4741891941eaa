import { clearScreenDown, createInterface, cursorTo, moveCursor, type Interface } from "node:readline";
import { stripVTControlCharacters } from "node:util";

/**
 * A line-oriented screen: output scrolls above an input line whose prompt doubles as the status bar
 * (open conversation, presence, typing). Lines printed while the user is typing go above the prompt
 * and the half-typed input is redrawn below them, so live events never garble what is being typed.
 */
export class Screen {
  readonly input: NodeJS.ReadStream;
  private readonly output: NodeJS.WriteStream;
  private readonly rl: Interface;
  private status = "";

  constructor(input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stdout) {
    this.input = input;
    this.output = output;
    this.rl = createInterface({ input, output, terminal: Boolean(input.isTTY && output.isTTY), historySize: 200 });
    this.rl.setPrompt(this.promptText());
  }

  /** True when attached to a terminal: keypresses, colours and in-place redraws are available. */
  get interactive(): boolean {
    return this.rl.terminal;
  }

  /** What the user has typed so far on the input line. */
  get currentLine(): string {
    return this.rl.line;
  }

  onLine(listener: (line: string) => void): void {
    this.rl.on("line", listener);
  }

  /** Ctrl-D, end of input, or Ctrl-C. */
  onEnd(listener: () => void): void {
    this.rl.on("close", listener);
    this.rl.on("SIGINT", listener);
  }

  onKeypress(listener: () => void): void {
    if (this.interactive) this.input.on("keypress", listener);
  }

  print(text: string): void {
    if (!this.interactive) {
      this.output.write(`${stripVTControlCharacters(text)}\n`);
      return;
    }
    this.clearInputRows();
    this.output.write(`${text}\n`);
    this.rl.prompt(true);
  }

  setStatus(status: string): void {
    if (status === this.status) return;
    this.status = status;
    this.rl.setPrompt(this.promptText());
    if (!this.interactive) return;
    this.clearInputRows();
    this.rl.prompt(true);
  }

  prompt(): void {
    if (this.interactive) this.rl.prompt();
  }

  /**
   * Removes the line just submitted (readline has already moved below it), so a chat message can be
   * shown once, formatted, instead of twice.
   */
  eraseSubmitted(line: string): void {
    if (!this.interactive) return;
    const width = stripVTControlCharacters(this.promptText()).length + line.length;
    moveCursor(this.output, 0, -Math.max(1, Math.ceil(width / this.columns)));
    cursorTo(this.output, 0);
    clearScreenDown(this.output);
  }

  close(): void {
    this.rl.close();
    // Whatever runs next in this terminal (the shell) starts on a line of its own.
    if (this.interactive) this.output.write("\n");
  }

  private get columns(): number {
    return this.output.columns || 80;
  }

  private promptText(): string {
    return this.status ? `${this.status} › ` : "› ";
  }

  /** Moves to the first row of the prompt (the input may wrap over several) and clears down. */
  private clearInputRows(): void {
    moveCursor(this.output, 0, -this.rl.getCursorPos().rows);
    cursorTo(this.output, 0);
    clearScreenDown(this.output);
  }
}
