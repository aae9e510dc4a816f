/**
 * Lines out of a byte stream that arrives in arbitrary chunks (a watch's newline-delimited
 * JSON): a chunk may end inside a line, or inside a multi-byte character, and the last
 * line may have no newline. Blank lines are dropped.
 */
import { StringDecoder } from "node:string_decoder";

export class LineSplitter {
  private readonly decoder = new StringDecoder("utf8");
  /** The line begun but not yet ended. */
  private rest = "";

  /** The lines this chunk completes. */
  push(chunk: Buffer): string[] {
    const text = this.decoder.write(chunk);
    let newline = text.indexOf("\n");
    if (newline < 0) {
      // Only the new text is searched, so a long line in many chunks costs no rescans.
      this.rest += text;
      return [];
    }
    const lines = [this.rest + text.slice(0, newline)];
    let start = newline + 1;
    while ((newline = text.indexOf("\n", start)) >= 0) {
      lines.push(text.slice(start, newline));
      start = newline + 1;
    }
    this.rest = text.slice(start);
    return lines.filter(isNotBlank);
  }

  /** The last line, if the stream did not end with a newline. */
  end(): string[] {
    const last = this.rest + this.decoder.end();
    this.rest = "";
    return isNotBlank(last) ? [last] : [];
  }
}

function isNotBlank(line: string): boolean {
  return line.trim() !== "";
}
