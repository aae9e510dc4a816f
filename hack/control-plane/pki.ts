// Throwaway credentials for the local control plane, made with node:crypto alone (no
// openssl CLI): an ECDSA P-256 CA, leaf certificates signed by it, and an RSA key pair
// for service-account tokens. node:crypto makes and signs keys but cannot issue X.509
// certificates, so this file carries a minimal DER encoder for exactly what a CA and
// its leaves need (RFC 5280).
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { isIP } from "node:net";

// ---- DER ------------------------------------------------------------------------------

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, ...items);
const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items);
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, "utf8"));
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);
const derTrue = Buffer.from([0x01, 0x01, 0xff]);

function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if ((v[0] ?? 0) & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return tlv(0x02, v);
}

function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  const [a = 0, b = 0, ...rest] = arcs;
  const out: number[] = [40 * a + b];
  for (const arc of rest) {
    const chunk: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function bitString(bytes: Buffer, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.from([unusedBits]), bytes);
}

/** A DER named-bit BIT STRING (trailing zero bits dropped), as keyUsage wants it. */
function namedBits(bits: number[]): Buffer {
  const max = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(max / 8) + 1);
  for (const bit of bits) bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) | (0x80 >> (bit & 7));
  return bitString(bytes, 7 - (max & 7));
}

function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2026-11-21T08:00:00.000Z
  const digits = iso.slice(0, 19).replace(/[-:T]/g, "") + "Z"; // 20261121080000Z
  // RFC 5280: UTCTime through 2049, GeneralizedTime from 2050 on.
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(digits.slice(2), "ascii")) : tlv(0x18, Buffer.from(digits, "ascii"));
}

// ---- X.509 ----------------------------------------------------------------------------

const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

export interface Subject {
  commonName: string;
  organizations?: string[];
}

function name(s: Subject): Buffer {
  const rdns = (s.organizations ?? []).map((o) => set(seq(oid(OID.organization), utf8(o))));
  rdns.push(set(seq(oid(OID.commonName), utf8(s.commonName))));
  return seq(...rdns);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), derTrue, octets(value)) : seq(oid(id), octets(value));
}

function keyId(publicKey: KeyObject): Buffer {
  return createHash("sha1").update(publicKey.export({ type: "spki", format: "der" })).digest();
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split(".").map(Number));
  // IPv6: expand "::" and write 8 groups of 16 bits.
  const [head = "", tail] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

export interface Issued {
  /** PEM certificate. */
  cert: string;
  /** PEM private key (SEC1 "EC PRIVATE KEY"). */
  key: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  subject: Subject;
}

interface IssueOptions {
  subject: Subject;
  /** Omit to self-sign (a CA). */
  issuer?: Issued;
  isCA?: boolean;
  usages?: Array<"server" | "client">;
  dnsNames?: string[];
  ipAddresses?: string[];
  validDays?: number;
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export function issue(opts: IssueOptions): Issued {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const signer = opts.issuer?.privateKey ?? privateKey;
  const issuerName = name(opts.issuer?.subject ?? opts.subject);
  const authorityKey = keyId(opts.issuer?.publicKey ?? publicKey);
  const now = Date.now();
  const notBefore = new Date(now - 60 * 60 * 1000); // tolerate a little clock skew
  const notAfter = new Date(now + (opts.validDays ?? 365) * 24 * 60 * 60 * 1000);
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const sigAlg = seq(oid(OID.ecdsaWithSha256));

  const exts: Buffer[] = [];
  if (opts.isCA) {
    exts.push(extension(OID.basicConstraints, true, seq(derTrue)));
    exts.push(extension(OID.keyUsage, true, namedBits([0, 5, 6]))); // digitalSignature, keyCertSign, cRLSign
  } else {
    exts.push(extension(OID.basicConstraints, true, seq()));
    exts.push(extension(OID.keyUsage, true, namedBits([0]))); // digitalSignature
    const eku = (opts.usages ?? []).map((u) => oid(u === "server" ? OID.serverAuth : OID.clientAuth));
    if (eku.length > 0) exts.push(extension(OID.extKeyUsage, false, seq(...eku)));
  }
  const sans = [
    ...(opts.dnsNames ?? []).map((d) => tlv(0x82, Buffer.from(d, "ascii"))),
    ...(opts.ipAddresses ?? []).map((ip) => tlv(0x87, ipBytes(ip))),
  ];
  if (sans.length > 0) exts.push(extension(OID.subjectAltName, false, seq(...sans)));
  exts.push(extension(OID.subjectKeyIdentifier, false, octets(keyId(publicKey))));
  if (opts.issuer) exts.push(extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, authorityKey))));

  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(serial),
    sigAlg,
    issuerName,
    seq(time(notBefore), time(notAfter)),
    name(opts.subject),
    publicKey.export({ type: "spki", format: "der" }),
    explicit(3, seq(...exts)),
  );
  const signature = sign("sha256", tbs, signer); // DER ECDSA-Sig-Value
  const der = seq(tbs, sigAlg, bitString(signature));
  return {
    cert: pem("CERTIFICATE", der),
    key: privateKey.export({ type: "sec1", format: "pem" }).toString(),
    privateKey,
    publicKey,
    subject: opts.subject,
  };
}

export interface ControlPlanePki {
  ca: Issued;
  /** kube-apiserver serving certificate for 127.0.0.1 / localhost. */
  apiserver: Issued;
  /** Client certificate of a cluster admin (O=system:masters). */
  admin: Issued;
  /** Client certificate kube-controller-manager talks to the apiserver with (also system:masters). */
  controllerManager: Issued;
  /** Service-account token signing key pair (PEM, PKCS#1 private / SPKI public). */
  serviceAccount: { key: string; pub: string };
}

export function generateControlPlanePki(validDays = 365): ControlPlanePki {
  const ca = issue({ subject: { commonName: "wa-operator-local-ca" }, isCA: true, validDays });
  const apiserver = issue({
    subject: { commonName: "kube-apiserver" },
    issuer: ca,
    usages: ["server"],
    dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
    ipAddresses: ["127.0.0.1", "::1", "10.0.0.1"],
    validDays,
  });
  const admin = issue({ subject: { commonName: "admin", organizations: ["system:masters"] }, issuer: ca, usages: ["client"], validDays });
  const controllerManager = issue({
    subject: { commonName: "system:kube-controller-manager", organizations: ["system:masters"] },
    issuer: ca,
    usages: ["client"],
    validDays,
  });
  const sa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    ca,
    apiserver,
    admin,
    controllerManager,
    serviceAccount: {
      key: sa.privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
      pub: sa.publicKey.export({ type: "spki", format: "pem" }).toString(),
    },
  };
}
