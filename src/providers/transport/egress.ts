/**
 * The connect-time check on provider URLs: the address a connection is about to be made to
 * (a URL's literal address, or each address its name resolves to, at every new connection)
 * is refused when it lies in a denied range (EGRESS_DENY_CIDRS: link-local and cloud
 * metadata addresses by default). Checked on the address actually connected to, so a name
 * that resolves to 169.254.169.254, or starts to (DNS rebinding), is refused too.
 */
import dns, { type LookupAddress, type LookupOptions } from "node:dns";
import http from "node:http";
import https from "node:https";
import { BlockList, isIP, type LookupFunction } from "node:net";

/** The address a connection would go to lies in a denied range; nothing was sent. */
export class EgressDenied extends Error {
  readonly address: string;
  readonly range: string;
  constructor(host: string, address: string, range: string) {
    super(`${host === address ? address : `${host} resolves to ${address}, which`} is in a denied address range (${range}, EGRESS_DENY_CIDRS); not connecting`);
    this.name = "EgressDenied";
    this.address = address;
    this.range = range;
  }
}

/** Resolves a name the way dns.lookup does with `all: true`; tests give a fixed table. */
export type Resolver = (hostname: string, callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

const systemResolver: Resolver = (hostname, callback) => dns.lookup(hostname, { all: true }, callback);

export class EgressGuard {
  private readonly ranges: { readonly text: string; readonly list: BlockList }[];
  private readonly resolve: Resolver;
  /** Keep-alive pools whose every new connection is checked; one pair per guard. */
  readonly agents: { readonly http: http.Agent; readonly https: https.Agent };

  constructor(options: { deny: readonly string[]; resolve?: Resolver }) {
    this.ranges = options.deny.map((text) => ({ text, list: blockOf(text) }));
    this.resolve = options.resolve ?? systemResolver;
    const lookup = this.lookup;
    this.agents = {
      http: new http.Agent({ keepAlive: true, maxSockets: 32, lookup }),
      https: new https.Agent({ keepAlive: true, maxSockets: 32, lookup }),
    };
  }

  /** The denied range an address lies in, if any. */
  deniedRange(address: string): string | undefined {
    const family = isIP(address);
    if (family === 0) return undefined;
    // ::ffff:169.254.169.254 reaches the same host as 169.254.169.254.
    const mapped = family === 6 ? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] : undefined;
    for (const range of this.ranges) {
      if (range.list.check(address, family === 4 ? "ipv4" : "ipv6")) return range.text;
      if (mapped && range.list.check(mapped, "ipv4")) return range.text;
    }
    return undefined;
  }

  /**
   * Throws EgressDenied for a URL whose host is a denied address literal: Node connects to
   * a literal without a lookup, so the agent's lookup never sees it.
   */
  checkLiteral(url: URL): void {
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const range = this.deniedRange(host);
    if (range) throw new EgressDenied(host, host, range);
  }

  /** The agents' lookup: resolves, then refuses the connection when any address is denied. */
  private readonly lookup: LookupFunction = (hostname: string, options: LookupOptions, callback: (...args: never[]) => void) => {
    const done = callback as unknown as (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
    this.resolve(hostname, (error, addresses) => {
      if (error) return done(error, "", 0);
      const wanted = options.family === 4 || options.family === 6 ? addresses.filter((entry) => entry.family === options.family) : addresses;
      // Refused when any answer is denied: a name that mixes metadata addresses in is not trusted.
      for (const entry of wanted) {
        const range = this.deniedRange(entry.address);
        if (range) return done(new EgressDenied(hostname, entry.address, range), "", 0);
      }
      const first = wanted[0];
      if (!first) return done(Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }), "", 0);
      return options.all ? done(null, wanted) : done(null, first.address, first.family);
    });
  };
}

function blockOf(cidr: string): BlockList {
  const [address = "", prefix = ""] = cidr.split("/");
  const list = new BlockList();
  list.addSubnet(address, Number(prefix), isIP(address) === 4 ? "ipv4" : "ipv6");
  return list;
}
