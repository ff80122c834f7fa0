import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isConfigError } from '../../lib/errors.js';
import { FormatError, formatPath } from '../../lib/config/problems.js';
import type { Format } from '../../lib/config/walk.js';

/** Runs a format; returns the coerced value, or the problems (thrown and nested) as lines. */
export function run(format: Format, value: unknown): { value?: unknown; problems: string[] } {
  const problems: string[] = [];
  try {
    const out = format.parse(value, {
      path: ['x'],
      report: (path, message) => problems.push(`${formatPath(path)}: ${message}`),
    });
    return problems.length > 0 ? { problems } : { value: out, problems };
  } catch (err) {
    if (!(err instanceof FormatError)) throw err;
    problems.push(err.message);
    return { problems };
  }
}

/** Config directories written per test under os.tmpdir(), removed by cleanup(). */
export class TempDirs {
  private readonly dirs: string[] = [];

  /** A fresh directory holding `files` (name → content). */
  make(files: Record<string, string> = {}): string {
    const dir = mkdtempSync(join(tmpdir(), 'resilience-config-'));
    this.dirs.push(dir);
    for (const [name, content] of Object.entries(files)) {
      const file = join(dir, name);
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(file, content);
    }
    return dir;
  }

  cleanup(): void {
    for (const dir of this.dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

/** The problem lines of the ConfigError that `load` throws (it must throw one). */
export function configProblems(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    if (!isConfigError(err)) throw err;
    return [...err.problems];
  }
  throw new Error('expected a ConfigError');
}
