import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on Linux). */
const CLOCK_TICKS = 100;

/**
 * User + system CPU time another process has used so far, in seconds, from Linux's
 * `/proc/<pid>/stat`; undefined where it cannot be read (not Linux, process gone).
 */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    // utime and stime are fields 14 and 15 of stat(5), after the parenthesised command name.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}
