// The managed block of a hosts file (pure text functions).
//
// Text is handled as a "byte string" (latin1: one char per byte) so that any byte of the file, UTF-8
// comments included, survives a read → edit → write round trip exactly.
import {
  describeDomainProblem,
  describeIpProblem,
  type HostEntry,
  validateEntries,
} from '../shared/contracts/updater-config.js';

export const BLOCK_BEGIN = '# BEGIN tcr-assistant hosts-updater (managed: do not edit)';
export const BLOCK_END = '# END tcr-assistant hosts-updater';

const BEGIN_PATTERN = /^# BEGIN tcr-assistant hosts-updater(\s.*)?$/;
const END_PATTERN = /^# END tcr-assistant hosts-updater\s*$/;

type Eol = '' | '\n' | '\r\n';

interface Line {
  text: string;
  eol: Eol;
}

/** Lines with their own line ending; a file ending with a newline has no empty last line. */
function splitLines(text: string): Line[] {
  const lines: Line[] = [];
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf('\n', start);
    if (nl === -1) {
      lines.push({ text: text.slice(start), eol: '' });
      break;
    }
    const crlf = nl > start && text[nl - 1] === '\r';
    lines.push({ text: text.slice(start, crlf ? nl - 1 : nl), eol: crlf ? '\r\n' : '\n' });
    start = nl + 1;
  }
  return lines;
}

function renderEntryLine(entry: HostEntry): string {
  return `${entry.ip} ${entry.domain}`;
}

/** A line exactly as renderHostsBlock writes an entry (used to bound a block whose END was lost). */
function isRenderedEntryLine(text: string): boolean {
  const match = /^(\S+) (\S+)$/.exec(text);
  return (
    !!match && describeIpProblem(match[1]!) === undefined && describeDomainProblem(match[2]!) === undefined
  );
}

function blockLines(entries: readonly HostEntry[], eol: '\n' | '\r\n'): Line[] {
  const { valid } = validateEntries(entries);
  if (valid.length === 0) return [];
  return [BLOCK_BEGIN, ...valid.map(renderEntryLine), BLOCK_END].map((text) => ({ text, eol }));
}

/**
 * The managed block for these entries, every line ending with `eol`; empty when no entry is valid.
 * Invalid entries are dropped here too, so nothing unchecked (a newline in a domain…) can reach the file.
 */
export function renderHostsBlock(entries: readonly HostEntry[], eol: '\n' | '\r\n' = '\n'): string {
  return blockLines(entries, eol)
    .map((l) => l.text + l.eol)
    .join('');
}

/**
 * Returns `original` with exactly one managed block holding `entries` (sorted, valid ones only), or with no
 * block when `entries` is null or has no valid entry. Every other line is kept byte for byte, with its own
 * line ending. The block uses the file's line ending (that of its first line; LF for a file without one),
 * takes the place of the first existing block (or goes at the end), and the file keeps ending — or not —
 * with a newline as it did. No blank line is added, so adding then removing the block restores the file.
 *
 * Damaged blocks: everything from a BEGIN marker to the next END marker is ours. A BEGIN with no END before
 * the next BEGIN or the end of the file is an orphan: we remove it together with the run of lines directly
 * after it that are in our entry format (`<ip> <domain>`), and stop at the first other line, so a lost END
 * never costs the rest of the file. A stray END is removed. Extra blocks are merged into the first one.
 */
export function applyHostsBlock(original: string, entries: readonly HostEntry[] | null | undefined): string {
  const lines = splitLines(original);
  const eol: '\n' | '\r\n' = lines.find((l) => l.eol !== '')?.eol === '\r\n' ? '\r\n' : '\n';
  const endsWithNewline = lines.length === 0 || lines[lines.length - 1]!.eol !== '';

  const spans: Array<[number, number]> = [];
  for (let i = 0; i < lines.length; ) {
    const text = lines[i]!.text;
    if (BEGIN_PATTERN.test(text)) {
      let j = i + 1;
      while (j < lines.length && !BEGIN_PATTERN.test(lines[j]!.text) && !END_PATTERN.test(lines[j]!.text))
        j++;
      if (j < lines.length && END_PATTERN.test(lines[j]!.text)) {
        spans.push([i, j + 1]);
        i = j + 1;
      } else {
        let k = i + 1;
        while (k < lines.length && isRenderedEntryLine(lines[k]!.text)) k++;
        spans.push([i, k]);
        i = k;
      }
    } else if (END_PATTERN.test(text)) {
      spans.push([i, i + 1]);
      i++;
    } else {
      i++;
    }
  }

  const block = blockLines(entries ?? [], eol);
  if (spans.length === 0 && block.length === 0) return original;

  const out: Line[] = [];
  const insertAt = spans[0]?.[0] ?? lines.length;
  let span = 0;
  for (let i = 0; i <= lines.length; i++) {
    if (i === insertAt) out.push(...block);
    if (i === lines.length) break;
    while (span < spans.length && i >= spans[span]![1]) span++;
    const inSpan = span < spans.length && i >= spans[span]![0] && i < spans[span]![1];
    if (!inSpan) out.push(lines[i]!);
  }

  // Only the last line may lack a line ending, and only if the original's did.
  for (let i = 0; i < out.length - 1; i++) if (out[i]!.eol === '') out[i] = { text: out[i]!.text, eol };
  const last = out[out.length - 1];
  if (last) out[out.length - 1] = { text: last.text, eol: endsWithNewline ? last.eol || eol : '' };
  return out.map((l) => l.text + l.eol).join('');
}
