import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** PEM material made by {@link generateTls}; nothing is committed to the repository. */
export interface TestTls {
  /** The throwaway CA's certificate: what a client must trust. */
  ca: string;
  /** A server certificate for `localhost` and `127.0.0.1`, signed by the CA. */
  cert: string;
  /** The server certificate's private key. */
  key: string;
  /** A client certificate (for mutual TLS), signed by the CA. */
  clientCert: string;
  clientKey: string;
}

let cached: TestTls | undefined;

/**
 * Generates a CA, a server certificate for `localhost`/`127.0.0.1` and a client certificate
 * with the `openssl` CLI in a temporary directory (removed afterwards), valid for one day.
 * EC P-256 keys keep it fast; the result is cached for the test process.
 * @throws Error when `openssl` is not installed or fails (its stderr is in the message).
 */
export function generateTls(): TestTls {
  if (cached !== undefined) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'resilience-tls-'));
  const file = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    try {
      execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
      throw new Error(`openssl ${args[0] ?? ''} failed: ${stderr || (err as Error).message}`);
    }
  };
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  try {
    openssl(
      'req',
      '-x509',
      ...ecKey,
      '-keyout',
      file('ca.key'),
      '-out',
      file('ca.crt'),
      '-days',
      '1',
      '-subj',
      '/CN=express-resilience test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    );
    const leaf = (name: string, cn: string, extensions: string): void => {
      writeFileSync(file(`${name}.ext`), extensions);
      openssl(
        'req',
        ...ecKey,
        '-keyout',
        file(`${name}.key`),
        '-out',
        file(`${name}.csr`),
        '-subj',
        `/CN=${cn}`,
      );
      openssl(
        'x509',
        '-req',
        '-in',
        file(`${name}.csr`),
        '-CA',
        file('ca.crt'),
        '-CAkey',
        file('ca.key'),
        '-CAcreateserial',
        '-days',
        '1',
        '-out',
        file(`${name}.crt`),
        '-extfile',
        file(`${name}.ext`),
      );
    };
    leaf(
      'server',
      'localhost',
      'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' +
        'keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
    );
    leaf(
      'client',
      'express-resilience test client',
      'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n',
    );
    const read = (name: string): string => readFileSync(file(name), 'utf8');
    cached = {
      ca: read('ca.crt'),
      cert: read('server.crt'),
      key: read('server.key'),
      clientCert: read('client.crt'),
      clientKey: read('client.key'),
    };
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Writes `pem` to a new temporary file and returns its path with a cleanup function, for
 * tests of options that accept a file path.
 */
export function writeTempPem(name: string, pem: string): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'resilience-pem-'));
  const path = join(dir, name);
  writeFileSync(path, pem);
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
