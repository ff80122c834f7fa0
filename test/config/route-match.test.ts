import assert from 'node:assert/strict';
import { parseRouteMatch, pathReadings } from '../../lib/config/route-match.js';

describe('parseRouteMatch', () => {
  it('parses "METHOD path"', () => {
    assert.deepEqual(parseRouteMatch('GET /orders/:id'), { methods: ['GET'], path: '/orders/:id' });
    assert.deepEqual(parseRouteMatch('  post   /orders '), { methods: ['POST'], path: '/orders' });
  });

  it('parses method lists, dropping repeats', () => {
    assert.deepEqual(parseRouteMatch('GET,HEAD /orders'), {
      methods: ['GET', 'HEAD'],
      path: '/orders',
    });
    assert.deepEqual(parseRouteMatch('get,GET /a'), { methods: ['GET'], path: '/a' });
  });

  it('treats a bare path and "*" as any method', () => {
    assert.deepEqual(parseRouteMatch('/admin/*'), { methods: null, path: '/admin/*' });
    assert.deepEqual(parseRouteMatch('* /x'), { methods: null, path: '/x' });
  });

  it('accepts objects, including an already parsed match', () => {
    assert.deepEqual(parseRouteMatch({ methods: ['put', 'PATCH'], path: '/orders/:id' }), {
      methods: ['PUT', 'PATCH'],
      path: '/orders/:id',
    });
    assert.deepEqual(parseRouteMatch({ path: '/a' }), { methods: null, path: '/a' });
    assert.deepEqual(parseRouteMatch({ methods: null, path: '/a' }), { methods: null, path: '/a' });
    assert.deepEqual(parseRouteMatch({ methods: 'GET,HEAD', path: '/a' }), {
      methods: ['GET', 'HEAD'],
      path: '/a',
    });
  });

  it('keeps path-to-regexp v8 syntax as written', () => {
    for (const path of ['/files/*path', '/a{/:b}', '/a/:id.json', '/x/*/y']) {
      assert.equal(parseRouteMatch(path).path, path);
    }
  });

  it('rejects unknown methods and "*" mixed with methods', () => {
    assert.throws(() => parseRouteMatch('FETCH /a'), /unknown HTTP method "FETCH"/);
    assert.throws(() => parseRouteMatch('GET,* /a'), /"\*" \(any method\) cannot be combined/);
    assert.throws(
      () => parseRouteMatch({ methods: ['GET', 1], path: '/a' }),
      /methods must be a list/,
    );
  });

  it('rejects paths that are not route patterns', () => {
    assert.throws(() => parseRouteMatch('GET orders'), /path must start with "\/", got "orders"/);
    assert.throws(
      () => parseRouteMatch('/a(b)'),
      /path "\/a\(b\)" is not a valid route pattern: Unexpected \( at index 2$/,
    );
    assert.throws(() => parseRouteMatch('/a/:'), /Missing parameter name/);
    assert.throws(() => parseRouteMatch('/a{'), /not a valid route pattern/);
    assert.throws(() => parseRouteMatch('/a?b'), /must not contain spaces, "\?" or "#"/);
    assert.throws(() => parseRouteMatch({ path: '/a b' }), /must not contain spaces/);
  });

  it('rejects other shapes', () => {
    assert.throws(() => parseRouteMatch('GET /a extra'), /must be "<METHODS> <path>"/);
    assert.throws(() => parseRouteMatch(''), /must be "<METHODS> <path>"/);
    assert.throws(
      () => parseRouteMatch(42),
      /must be a string like "GET \/orders\/:id" or an object/,
    );
    assert.throws(
      () => parseRouteMatch({ method: 'GET', path: '/a' }),
      /unknown key "method"; expected methods and path/,
    );
    assert.throws(() => parseRouteMatch({ methods: ['GET'] }), /must have a path/);
  });
});

describe('parseRouteMatch and target spellings', () => {
  it('rejects "//", "." and ".." segments, which Express never dispatches as written', () => {
    for (const path of ['//a', '/a//b', '/a/./b', '/a/../b', '/a/.', '/a/..']) {
      assert.throws(
        () => parseRouteMatch(path),
        /must not contain "\/\/", "\." or "\.\." segments/,
      );
    }
    assert.deepEqual(parseRouteMatch('/a.b/.well-known'), {
      methods: null,
      path: '/a.b/.well-known',
    });
  });
});

describe('pathReadings', () => {
  it('reads a plain path one way', () => {
    assert.deepEqual(pathReadings('/orders/1'), ['/orders/1']);
  });

  it('adds decoded and normalised readings, the path as sent first', () => {
    assert.deepEqual(pathReadings('/a%20b'), ['/a%20b', '/a b']);
    assert.deepEqual(pathReadings('//limited'), ['//limited', '/limited']);
    assert.deepEqual(pathReadings('/x/../limited'), ['/x/../limited', '/limited']);
    assert.deepEqual(pathReadings('/%2e%2e/limited'), [
      '/%2e%2e/limited',
      '/../limited',
      '/limited',
    ]);
    assert.deepEqual(pathReadings('/limited/.'), ['/limited/.', '/limited/']);
    assert.deepEqual(pathReadings('/%E0%A4%A'), ['/%E0%A4%A']);
  });
});
