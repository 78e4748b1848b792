// Word wrap for terminal output, so reports read well in an 80-column terminal.

/** Wrap one paragraph at spaces; words longer than the width are cut. */
export function wrap(text: string, width: number, indent = ''): string[] {
  const room = Math.max(10, width - indent.length);
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    // Keep a line's own leading spaces (code lines in a fix): wrap continuation under them.
    const lead = /^\s*/.exec(paragraph)?.[0] ?? '';
    const words = paragraph
      .slice(lead.length)
      .split(/ +/)
      .filter((w) => w !== '');
    let line = lead;
    const flush = () => {
      lines.push(indent + line.trimEnd());
      line = lead;
    };
    for (let word of words) {
      while (lead.length + word.length > room) {
        if (line.trim() !== '') flush();
        const cut = room - lead.length;
        lines.push(indent + lead + word.slice(0, cut));
        word = word.slice(cut);
      }
      if (line.trim() !== '' && line.length + 1 + word.length > room) flush();
      line += line.trim() === '' ? word : ` ${word}`;
    }
    if (line.trim() !== '' || words.length === 0) flush();
  }
  return lines;
}

/** "HEAD text...", continuation lines indented under the text (hanging indent). */
export function wrapHanging(head: string, text: string, width: number): string[] {
  const [first = '', ...rest] = wrap(text, width - head.length);
  return [head + first, ...rest.map((line) => ' '.repeat(head.length) + line)];
}
