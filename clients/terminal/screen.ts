import { clearLine, clearScreenDown, createInterface, cursorTo, moveCursor, type Interface } from "node:readline";
import { stripVTControlCharacters } from "node:util";

/** A printed line that can be rewritten in place while it is still on screen (a message's ticks). */
export interface LineRef {
  /** How many rows had been printed above the input line before this one. */
  readonly startRow: number;
  /** The rows it takes, at the width it was printed at. */
  readonly rows: number;
  readonly columns: number;
}

/** readline's writer, which a hidden prompt replaces for as long as it reads. */
type WithWriter = Interface & { _writeToOutput?: (text: string) => void; history?: string[] };

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
  /** Rows printed above the input line so far: where a LineRef's row is now, counted from the bottom. */
  private printedRows = 0;
  private hidden: { resolve: (line: string) => void; prompt: string } | undefined;

  constructor(input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stdout) {
    this.input = input;
    this.output = output;
    this.rl = createInterface({ input, output, terminal: Boolean(input.isTTY && output.isTTY), historySize: 200 });
    this.rl.setPrompt(this.promptText());
    // A hidden prompt's keystrokes are not echoed; everything else is written as usual. readline
    // writes through `_writeToOutput` (its internal writer is a getter for it, kept so that a
    // replacement like this one takes effect).
    const rl = this.rl as WithWriter;
    const write = rl._writeToOutput?.bind(rl);
    if (write) {
      rl._writeToOutput = (text: string) => {
        if (!this.hidden) return write(text);
        if (text.includes("\n") || text.includes("\r")) write("\r\n");
      };
    }
    this.rl.on("line", (line) => {
      const hidden = this.hidden;
      if (hidden) {
        this.hidden = undefined;
        this.forget(line);
        this.rl.setPrompt(this.promptText());
        // The prompt line ("password: ") goes too.
        this.eraseSubmitted("", hidden.prompt);
        hidden.resolve(line);
        return;
      }
      this.printedRows += this.rowsOf(this.promptText() + line);
    });
  }

  /** True when attached to a terminal: keypresses, colours and in-place redraws are available. */
  get interactive(): boolean {
    return this.rl.terminal;
  }

  /** What the user has typed so far on the input line. */
  get currentLine(): string {
    return this.rl.line;
  }

  /** Each submitted line, except the answers to a hidden prompt. */
  onLine(listener: (line: string) => void): void {
    this.rl.on("line", (line) => {
      if (!this.answering) listener(line);
      this.answering = false;
    });
  }

  private answering = false;

  /**
   * Reads one line without showing it (a password): nothing is echoed, it is not kept in the input
   * history, and the prompt is taken off the screen afterwards.
   */
  askHidden(prompt: string): Promise<string> {
    return new Promise((resolve) => {
      if (this.interactive) {
        this.clearInputRows();
        this.rl.setPrompt(prompt);
        this.rl.prompt();
      }
      // Muted from here on: the prompt above is the last thing shown until Enter.
      this.hidden = {
        prompt,
        resolve: (line) => {
          this.answering = true;
          resolve(line);
        },
      };
    });
  }

  /** Takes a line out of the input history (Up would bring it back), e.g. a command that held a password. */
  forget(line: string): void {
    const history = (this.rl as WithWriter).history;
    if (!history) return;
    const at = history.indexOf(line);
    if (at >= 0) history.splice(at, 1);
  }

  /** Ctrl-D, end of input, or Ctrl-C. */
  onEnd(listener: () => void): void {
    this.rl.on("close", listener);
    this.rl.on("SIGINT", listener);
  }

  onKeypress(listener: () => void): void {
    if (this.interactive) this.input.on("keypress", listener);
  }

  print(text: string): LineRef | undefined {
    if (!this.interactive) {
      this.output.write(`${stripVTControlCharacters(text)}\n`);
      return undefined;
    }
    this.clearInputRows();
    this.output.write(`${text}\n`);
    const ref = { startRow: this.printedRows, rows: this.rowsOf(text), columns: this.columns };
    this.printedRows += ref.rows;
    this.rl.prompt(true);
    return ref;
  }

  /**
   * Writes a printed line again, in place, if it is still on screen and takes the same rows (so
   * nothing below it moves). Returns whether it did.
   */
  rewrite(ref: LineRef | undefined, text: string): boolean {
    if (!ref || !this.interactive || ref.columns !== this.columns || this.rowsOf(text) !== ref.rows) return false;
    const distance = this.printedRows - ref.startRow;
    if (distance + this.rl.getCursorPos().rows + 1 > (this.output.rows || 24)) return false;
    this.clearInputRows();
    moveCursor(this.output, 0, -distance);
    cursorTo(this.output, 0);
    this.output.write(text);
    clearLine(this.output, 1);
    moveCursor(this.output, 0, distance - (ref.rows - 1));
    cursorTo(this.output, 0);
    this.rl.prompt(true);
    return true;
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
  eraseSubmitted(line: string, prompt = this.promptText()): void {
    if (!this.interactive) return;
    const rows = this.rowsOf(prompt + line);
    // It was counted as printed when it was submitted.
    if (prompt === this.promptText()) this.printedRows -= rows;
    moveCursor(this.output, 0, -rows);
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

  /** The rows a line takes on screen (each code point counted as one column). */
  private rowsOf(text: string): number {
    return stripVTControlCharacters(text)
      .split("\n")
      .reduce((rows, line) => rows + Math.max(1, Math.ceil([...line].length / this.columns)), 0);
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
