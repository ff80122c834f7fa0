import assert from 'node:assert/strict';
import { AttemptAbort } from '../../lib/resources/abort-source.js';

describe('AttemptAbort', () => {
  function listener() {
    const heard: unknown[] = [];
    return { heard, handleEvent: () => heard.push('abort') };
  }

  it('tells its listeners once, with the reason readable from it', () => {
    const attempt = new AttemptAbort();
    const first = listener();
    const second = listener();
    attempt.addEventListener('abort', first);
    attempt.addEventListener('abort', second);
    assert.equal(attempt.aborted, false);
    const reason = new Error('deadline');
    attempt.abort(reason);
    attempt.abort(new Error('again'));
    assert.equal(attempt.aborted, true);
    assert.equal(attempt.reason, reason);
    assert.deepEqual(first.heard, ['abort']);
    assert.deepEqual(second.heard, ['abort']);
  });

  it('forgets a removed listener, and calls none added after the abort', () => {
    const attempt = new AttemptAbort();
    const removed = listener();
    const kept = listener();
    attempt.addEventListener('abort', removed);
    attempt.addEventListener('abort', kept);
    attempt.removeEventListener('abort', removed);
    attempt.abort('stop');
    const late = listener();
    attempt.addEventListener('abort', late);
    assert.deepEqual(removed.heard, []);
    assert.deepEqual(kept.heard, ['abort']);
    assert.deepEqual(late.heard, []);
  });

  it('makes an AbortSignal on demand that follows it, before or after the abort', () => {
    const early = new AttemptAbort();
    const signal = early.signal;
    assert.equal(early.signal, signal, 'one signal per attempt');
    assert.equal(signal.aborted, false);
    early.abort('timeout');
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason, 'timeout');

    const late = new AttemptAbort();
    late.abort('gone');
    assert.equal(late.signal.aborted, true);
    assert.equal(late.signal.reason, 'gone');
  });
});
