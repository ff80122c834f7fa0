import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../lib/errors.js';
import { ListenerErrors, Listeners } from '../../lib/policies/listeners.js';

/** Runs `fn` and returns the RESILIENCE_LISTENER_ERROR warnings emitted meanwhile. */
async function listenerWarnings(fn: () => void): Promise<Error[]> {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    fn();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', onWarning);
  }
  return warnings.filter(
    (w) => (w as Error & { code?: string }).code === 'RESILIENCE_LISTENER_ERROR',
  );
}

describe('Listeners', () => {
  it('calls every listener in order with the arguments, until disposed', () => {
    const list = new Listeners<[string, number]>('thing');
    const seen: string[] = [];
    const a = list.add((s, n) => seen.push(`a:${s}${n}`));
    list.add((s, n) => seen.push(`b:${s}${n}`));
    list.emit('x', 1);
    a.dispose();
    a.dispose();
    list.emit('y', 2);
    assert.deepEqual(seen, ['a:x1', 'b:x1', 'b:y2']);
    assert.equal(list.size, 1);
  });

  it('lets a listener unsubscribe itself while the list is emitting', () => {
    const list = new Listeners<[]>('thing');
    const seen: string[] = [];
    const first = list.add(() => {
      seen.push('first');
      first.dispose();
    });
    list.add(() => seen.push('second'));
    list.emit();
    list.emit();
    assert.deepEqual(seen, ['first', 'second', 'second']);
  });

  it('reports a throwing listener once as a warning, and the others still run', async () => {
    const list = new Listeners<[]>('thing');
    let after = 0;
    list.add(() => {
      throw new Error('listener bug');
    });
    list.add(() => after++);
    const warnings = await listenerWarnings(() => {
      list.emit();
      list.emit();
    });
    assert.equal(after, 2);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /listener of a thing threw.*listener bug/);
  });

  it('warns once for all the lists of one emitter sharing its ListenerErrors', async () => {
    const errors = new ListenerErrors('emitter');
    const one = new Listeners<[]>(errors);
    const two = new Listeners<[]>(errors);
    for (const list of [one, two]) {
      list.add(() => {
        throw new Error('bug');
      });
    }
    const warnings = await listenerWarnings(() => {
      one.emit();
      two.emit();
    });
    assert.equal(warnings.length, 1);
  });

  it('refuses a listener that is not a function', () => {
    assert.throws(() => new Listeners<[]>('thing').add(5 as never), InvalidArgumentError);
  });
});
