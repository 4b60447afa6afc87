// How wide text will render in the charts' font stack (Helvetica, Arial, sans-serif), and chart
// titles fitted to the width they have. Without a DOM there are no font metrics to ask, so widths
// come from a table of advance widths (1/1000 em) per printable ASCII character, for regular and
// bold: the larger of Helvetica's (Adobe's core-font metrics, which Arial shares) and DejaVu
// Sans's (what Linux draws this stack with when neither font is installed; measured in Chromium).
// An estimate is therefore no narrower than the text renders on those systems. Any other
// character counts a full em, more than almost every glyph of a sans font takes.

export type FontWeight = 'normal' | 'bold';

// Advance widths of U+0020 … U+007E, sixteen characters a row (space ! " # … / on the first).
const ASCII_WIDTHS: { readonly [W in FontWeight]: readonly number[] } = {
  normal: [
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337,
    636, 636, 636, 636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 556,
    1015, 684, 686, 722, 770, 667, 611, 778, 752, 295, 500, 667, 557, 863, 748, 787,
    667, 787, 722, 667, 611, 732, 684, 989, 685, 667, 685, 390, 337, 390, 838, 556,
    500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612,
    635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
  ],
  bold: [
    348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365,
    696, 696, 696, 696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 611,
    1000, 774, 762, 734, 830, 683, 683, 821, 837, 372, 556, 775, 637, 995, 837, 850,
    733, 850, 770, 720, 682, 812, 774, 1103, 771, 724, 725, 457, 365, 457, 838, 556,
    500, 675, 716, 593, 716, 678, 435, 716, 712, 343, 343, 665, 343, 1042, 712, 687,
    716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838,
  ],
};

const OTHER_WIDTH = 1000;

/** Estimated rendered width in px of a single line of text (see the header for how it errs). */
export function textWidth(text: string, fontSize: number, weight: FontWeight = 'normal'): number {
  const table = ASCII_WIDTHS[weight];
  let units = 0;
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    units += code >= 0x20 && code <= 0x7e ? table[code - 0x20]! : OTHER_WIDTH;
  }
  return (units * fontSize) / 1000;
}

/** Title font sizes in px: the preferred one, the smallest a single line may shrink to, and the floor. */
export const TITLE_FONT_SIZE = 15;
const TITLE_ONE_LINE_MIN = 13;
export const TITLE_MIN_FONT_SIZE = 11;

export interface FittedTitle {
  /** One or two lines; the last ends in '…' when even the smallest font could not hold the title. */
  readonly lines: readonly string[];
  readonly fontSize: number;
}

/**
 * A bold title set to fit `room` px, in the first way that works: one line at 15 px, shrinking to
 * 13 px; two lines at 15 px, shrinking to 11 px, broken at the space that makes the longer line
 * shortest; two lines at 11 px, the second cut short with an ellipsis.
 */
export function fitTitle(title: string, room: number): FittedTitle {
  const words = title.trim().split(/\s+/).filter((w) => w.length > 0);
  const line = words.join(' ');
  const fits = (s: string, size: number) => textWidth(s, size, 'bold') <= room;
  for (let size = TITLE_FONT_SIZE; size >= TITLE_ONE_LINE_MIN; size--) {
    if (fits(line, size)) return { lines: [line], fontSize: size };
  }
  for (let size = TITLE_FONT_SIZE; size >= TITLE_MIN_FONT_SIZE; size--) {
    const split = balancedSplit(words, size);
    if (split && split.every((l) => fits(l, size))) return { lines: split, fontSize: size };
  }
  const size = TITLE_MIN_FONT_SIZE;
  // Fill the first line word by word; whatever is left goes on the second, cut to fit.
  let taken = 0;
  while (taken < words.length && fits(words.slice(0, taken + 1).join(' '), size)) taken++;
  if (taken === 0) return { lines: [truncate(line, size, room)], fontSize: size };
  return { lines: [words.slice(0, taken).join(' '), truncate(words.slice(taken).join(' '), size, room)], fontSize: size };
}

/** The two-line break (at a space) whose longer line is shortest, or undefined for a single word. */
function balancedSplit(words: readonly string[], size: number): [string, string] | undefined {
  let best: [string, string] | undefined;
  let bestWidth = Infinity;
  for (let k = 1; k < words.length; k++) {
    const first = words.slice(0, k).join(' ');
    const second = words.slice(k).join(' ');
    const width = Math.max(textWidth(first, size, 'bold'), textWidth(second, size, 'bold'));
    if (width < bestWidth) {
      best = [first, second];
      bestWidth = width;
    }
  }
  return best;
}

/** `text` cut (with an ellipsis) to fit `room` pixels at `size` in `weight` (bold: titles). */
export function truncate(text: string, size: number, room: number, weight: FontWeight = 'bold'): string {
  if (textWidth(text, size, weight) <= room) return text;
  const chars = [...text];
  while (chars.length > 0 && textWidth(`${chars.join('').trimEnd()}…`, size, weight) > room) chars.pop();
  return `${chars.join('').trimEnd()}…`;
}
