/**
 * Connections to the API server through a kubeconfig's proxy-url: node's own agents whose
 * connections are HTTP CONNECT tunnels through the proxy (an http:// proxy, or an https://
 * one reached over TLS), with TLS to the API server inside the tunnel for an https server.
 * The agents pool the tunnels as they pool plain connections (keepAlive), so a request does
 * not pay a CONNECT each time.
 *
 * client-go forwards plain-http requests to an http proxy with absolute URIs instead; a
 * tunnel serves both here, and every proxy that forwards https (the reason for proxy-url)
 * accepts CONNECT. Proxy credentials in the URL (user:password@) go as Proxy-Authorization.
 */
import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import net from "node:net";
import tls from "node:tls";

type Callback = (error: Error | null, socket?: Duplex) => void;

/** The Proxy-Authorization of a proxy URL's user:password, if it has one. */
function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username && !proxy.password) return undefined;
  return `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString("base64")}`;
}

/**
 * Opens a CONNECT tunnel to host:port through the proxy; the callback gets the raw socket.
 * An https proxy is verified as Go's transport verifies it: with the TLS settings of the
 * server's connection (the kubeconfig's CA, or insecure-skip-tls-verify), else the system's roots.
 */
function tunnel(proxy: URL, host: string, port: number, verify: Pick<tls.ConnectionOptions, "ca" | "rejectUnauthorized">, done: (error: Error | null, socket?: net.Socket) => void): void {
  const target = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  const authorization = proxyAuthorization(proxy);
  const request = (proxy.protocol === "https:" ? https : http).request({
    host: proxy.hostname.replace(/^\[|\]$/g, ""),
    port: proxy.port || (proxy.protocol === "https:" ? 443 : 80),
    method: "CONNECT",
    path: target,
    headers: { Host: target, ...(authorization ? { "Proxy-Authorization": authorization } : {}) },
    agent: false,
    ...(proxy.protocol === "https:" ? verify : {}),
  });
  request.once("connect", (response, socket) => {
    if (response.statusCode === 200) {
      done(null, socket);
      return;
    }
    socket.destroy();
    done(new Error(`the proxy ${proxy.host} refused to tunnel to ${target}: ${response.statusCode} ${response.statusMessage ?? ""}`.trim()));
  });
  request.once("error", (error) => done(new Error(`the proxy ${proxy.host} could not be reached: ${(error as NodeJS.ErrnoException).code ?? error.message}`)));
  request.end();
}

interface TunnelOptions {
  readonly host?: string | null;
  readonly hostname?: string | null;
  readonly port?: number | string | null;
}

function targetOf(options: TunnelOptions, defaultPort: number): { host: string; port: number } {
  return { host: (options.hostname ?? options.host ?? "localhost").replace(/^\[|\]$/g, ""), port: Number(options.port) || defaultPort };
}

/** An https.Agent whose connections are tunnels through the proxy, with TLS to the server inside (its CA, SNI, client certificate). */
export class HttpsProxyAgent extends https.Agent {
  private readonly proxy: URL;

  constructor(proxy: URL, options: https.AgentOptions = {}) {
    super(options);
    this.proxy = proxy;
  }

  override createConnection(options: tls.ConnectionOptions & TunnelOptions, callback: Callback): undefined {
    const { host, port } = targetOf(options, 443);
    tunnel(this.proxy, host, port, { ...(options.ca ? { ca: options.ca } : {}), ...(options.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}) }, (error, socket) => {
      if (error || !socket) return callback(error ?? new Error("no tunnel"));
      const secure = tls.connect({ ...options, socket, servername: options.servername ?? (net.isIP(host) ? undefined : host) } as tls.ConnectionOptions);
      callback(null, secure);
    });
    return undefined;
  }
}

/** An http.Agent whose connections are tunnels through the proxy (a plain-http API server). */
export class HttpProxyAgent extends http.Agent {
  private readonly proxy: URL;

  constructor(proxy: URL, options: http.AgentOptions = {}) {
    super(options);
    this.proxy = proxy;
  }

  override createConnection(options: TunnelOptions, callback: Callback): undefined {
    const { host, port } = targetOf(options, 80);
    tunnel(this.proxy, host, port, {}, (error, socket) => (error || !socket ? callback(error ?? new Error("no tunnel")) : callback(null, socket)));
    return undefined;
  }
}

/** The https and http agents for an API server: through the proxy when there is one. */
export function serverAgents(proxyUrl: string | undefined, options: http.AgentOptions): { https: https.Agent; http: http.Agent } {
  if (!proxyUrl) return { https: new https.Agent(options), http: new http.Agent(options) };
  const proxy = new URL(proxyUrl);
  return { https: new HttpsProxyAgent(proxy, options), http: new HttpProxyAgent(proxy, options) };
}
