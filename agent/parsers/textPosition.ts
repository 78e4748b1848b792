// Where an offset into a text is, as an editor shows it: 1-based line and column, the column
// counted in characters (code points), so "é" or an emoji before the spot counts once.

export interface TextPosition {
  line: number;
  column: number;
}

/** Line and column of the character at `index` (a UTF-16 index into `text`). */
export function textPosition(text: string, index: number): TextPosition {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < index; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: codePoints(text, lineStart, index) + 1 };
}

/** Code points in text[start, end): UTF-16 units that are not the second half of a pair. */
export function codePoints(text: string, start: number, end: number): number {
  let count = 0;
  for (let i = start; i < end; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xdc00 || unit > 0xdfff || i === start) count++;
    else {
      const previous = text.charCodeAt(i - 1);
      if (previous < 0xd800 || previous > 0xdbff) count++;
    }
  }
  return count;
}
