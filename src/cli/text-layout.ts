// Plain-text layout for --help: words wrapped to a width, and two-column
// lists (a flag, then its description) whose descriptions wrap in their own
// column. No line ever ends in a space, and none is wider than the width
// unless a single word is (then it is cut, so the width still holds).

/** Breaks text into lines of at most width characters, at spaces. */
export function wrap(text: string, width: number): string[] {
  const w = Math.max(1, width);
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    // A word longer than a whole line is cut into line-sized pieces.
    for (let piece = word; piece; ) {
      const room = line ? w - line.length - 1 : w;
      if (piece.length <= room) {
        line = line ? `${line} ${piece}` : piece;
        piece = "";
      } else if (line) {
        lines.push(line);
        line = "";
      } else {
        lines.push(piece.slice(0, w));
        piece = piece.slice(w);
      }
    }
  }
  if (line) lines.push(line);
  return lines;
}

/**
 * Text with line breaks: each line is wrapped on its own, except lines that
 * start with a space (a command to copy), which are kept as written.
 */
export function paragraphs(text: string, width: number): string[] {
  return text.split("\n").flatMap((line) => (/^\s/.test(line) ? [line.trimEnd()] : line ? wrap(line, width) : [""]));
}

export interface Row {
  left: string;
  right: string;
}

export interface ColumnOptions {
  width: number;
  /** Spaces before the left column. */
  indent?: number;
  /** The left column is at most this wide; longer entries put their description on the next line. */
  maxLeft?: number;
  /** Entries as wide as this are measured for the left column (to align several lists alike). */
  alignWith?: Row[];
}

/** Below this many columns for descriptions, they go under their entry instead of beside it. */
const MIN_RIGHT = 24;

/** Rows as an aligned two-column list. */
export function columns(rows: Row[], o: ColumnOptions): string[] {
  const indent = o.indent ?? 2;
  const maxLeft = Math.min(o.maxLeft ?? 32, Math.floor(o.width * 0.45));
  const leftWidth = Math.min(Math.max(0, ...[...rows, ...(o.alignWith ?? [])].map((r) => r.left.length)), maxLeft);
  const rightAt = indent + leftWidth + 2;
  const beside = o.width - rightAt >= MIN_RIGHT;
  const out: string[] = [];
  for (const r of rows) {
    const left = " ".repeat(indent) + r.left;
    if (!beside) {
      out.push(left, ...wrap(r.right, o.width - indent - 4).map((l) => " ".repeat(indent + 4) + l));
      continue;
    }
    const right = wrap(r.right, o.width - rightAt);
    const pad = " ".repeat(rightAt);
    if (r.left.length <= leftWidth && right.length) {
      out.push(left.padEnd(rightAt) + right[0], ...right.slice(1).map((l) => pad + l));
    } else {
      out.push(left, ...right.map((l) => pad + l));
    }
  }
  return out;
}
