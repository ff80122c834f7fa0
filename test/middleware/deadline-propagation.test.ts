import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const APP = fileURLToPath(new URL('../fixtures/propagation-app.ts', import.meta.url));
const run = promisify(execFile);

/** Two requests in a fresh process; whether each handler saw its deadline in currentDeadline(). */
async function seenIn(mode: string): Promise<boolean[]> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', APP, mode], {
    timeout: 30_000,
  });
  return (JSON.parse(stdout.trim().split('\n').pop()!) as { seen: boolean[] }).seen;
}

describe('deadline propagation (AsyncLocalStorage) switches on only when something reads it', function () {
  this.timeout(60_000);

  it('with a resource configured, from the first request', async () => {
    assert.deepEqual(await seenIn('resource'), [true, true]);
  });

  it('with a named policy layer, from the first request', async () => {
    assert.deepEqual(await seenIn('policy'), [true, true]);
  });

  it('in a plain app, from the request after the first currentDeadline() call', async () => {
    assert.deepEqual(await seenIn('plain'), [false, true]);
  });
});
