import { InvalidArgumentError } from '../errors.js';

/**
 * A lookup table indexed by HTTP status from patterns: `"5xx"`, `"4xx"`, or exact codes
 * (`"429"`, `503`). One array read per decision on the hot path.
 *
 * @throws InvalidArgumentError naming `option` for a pattern that is neither.
 */
export function statusTable(patterns: readonly (string | number)[], option: string): Uint8Array {
  const table = new Uint8Array(600);
  for (const pattern of patterns) {
    const text = String(pattern);
    const range = /^([1-5])xx$/.exec(text);
    if (range) table.fill(1, Number(range[1]) * 100, Number(range[1]) * 100 + 100);
    else if (/^[1-5]\d\d$/.test(text)) table[Number(text)] = 1;
    else throw new InvalidArgumentError(`${option}: invalid status ${JSON.stringify(pattern)}`);
  }
  return table;
}

/** A predicate over statuses from patterns; see {@link statusTable}. */
export function statusMatcher(
  patterns: readonly (string | number)[],
  option: string,
): (status: number) => boolean {
  const table = statusTable(patterns, option);
  return (status) => table[status] === 1;
}
