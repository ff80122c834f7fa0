import { readFileSync } from 'node:fs';
import type { TlsConfig } from '../config/types.js';
import { ConfigError } from '../errors.js';

/** The TLS material of a resource, as PEM text. */
export interface TlsMaterial {
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

/**
 * Turns each of `tls.ca`, `tls.cert` and `tls.key` into PEM text: a value holding a PEM block
 * is taken as is, anything else is a file path read now, so a missing file fails at start-up
 * rather than on the first call.
 * @throws ConfigError naming the field (`configPath.ca`, …) when a file cannot be read or holds no
 *   PEM block (never the file's content: the key is a secret).
 */
export function loadTlsMaterial(configPath: string, tls: TlsConfig): TlsMaterial {
  const load = (field: 'ca' | 'cert' | 'key'): string | undefined => {
    const value = tls[field];
    if (value === undefined || value === '') return undefined;
    if (value.includes('-----BEGIN ')) return value;
    const where = `${configPath}.${field}`;
    let text: string;
    try {
      text = readFileSync(value, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new ConfigError([`${where}: cannot read file ${JSON.stringify(value)} (${code})`], {
        cause: err,
      });
    }
    if (!text.includes('-----BEGIN ')) {
      throw new ConfigError([`${where}: file ${JSON.stringify(value)} holds no PEM block`]);
    }
    return text;
  };
  return { ca: load('ca'), cert: load('cert'), key: load('key') };
}
