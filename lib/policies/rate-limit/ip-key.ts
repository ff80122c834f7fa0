import { isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';
import { InvalidArgumentError } from '../../errors.js';

/**
 * The key of every client whose address is missing or unparseable. Such clients share one
 * bucket on purpose: failing closed means a misconfigured proxy shows up as "everyone is
 * limited together" rather than as "nobody is limited".
 */
export const UNKNOWN_IP_KEY = 'unknown';

/**
 * The rate-limit key for a client address.
 *
 * - IPv4 (`1.2.3.4`) is the key as is.
 * - IPv4-mapped IPv6 (`::ffff:1.2.3.4`, as a dual-stack socket reports IPv4 clients) is the
 *   IPv4 address, so a client has one key whichever way it connects.
 * - IPv6 is masked to `ipv6Prefix` bits and written in RFC 5952 form with the prefix, e.g.
 *   `2001:db8:ab00::/56`: one subscriber usually gets a whole /56 or /64, so keying by full
 *   address would let it rotate through billions of keys. A zone id (`%eth0`) is dropped.
 * - `undefined`, empty or unparseable input is {@link UNKNOWN_IP_KEY}.
 *
 * @param ipv6Prefix integer 1–128; default 56.
 * @throws InvalidArgumentError when `ipv6Prefix` is out of range.
 */
export function ipKey(ip: string | undefined, ipv6Prefix = 56): string {
  if (!Number.isInteger(ipv6Prefix) || ipv6Prefix < 1 || ipv6Prefix > 128) {
    throw new InvalidArgumentError(
      `ipv6Prefix must be an integer from 1 to 128, got ${String(ipv6Prefix)}`,
    );
  }
  if (typeof ip !== 'string' || ip.length === 0) return UNKNOWN_IP_KEY;
  if (isIPv4(ip)) return ip;
  let address = ip;
  if (address.charCodeAt(0) === 0x5b /* [ */ && address.charCodeAt(address.length - 1) === 0x5d) {
    address = address.slice(1, -1);
  }
  const zone = address.indexOf('%');
  if (zone !== -1) address = address.slice(0, zone);
  if (!isIPv6(address)) return UNKNOWN_IP_KEY;
  const parsed = ipaddr.IPv6.parse(address);
  if (parsed.isIPv4MappedAddress()) return parsed.toIPv4Address().toString();
  const parts = parsed.parts;
  for (let i = 0; i < 8; i++) {
    const bits = ipv6Prefix - i * 16;
    if (bits <= 0) parts[i] = 0;
    else if (bits < 16) parts[i] = (parts[i] as number) & ((0xffff << (16 - bits)) & 0xffff);
  }
  return `${new ipaddr.IPv6(parts).toRFC5952String()}/${ipv6Prefix}`;
}
