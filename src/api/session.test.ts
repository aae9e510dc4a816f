import { describe, expect, it } from "vitest";
import { z } from "zod";
import { renderAllCrds } from "../crds.ts";
import { sessionSpecSchema } from "./session.ts";

type Node = { type?: string; enum?: unknown[]; description?: string; maxLength?: number; maxItems?: number; properties?: Record<string, Node>; items?: Node };
const schema = z.toJSONSchema(sessionSpecSchema, { io: "input" }) as Node;

/** Every string and list under spec.session, by path. */
function leaves(node: Node, path: string): [string, Node][] {
  const own: [string, Node][] = node.type === "string" || node.type === "array" ? [[path, node]] : [];
  const children = Object.entries(node.properties ?? {}).flatMap(([key, child]) => leaves(child, `${path}.${key}`));
  return [...own, ...children, ...(node.items ? leaves(node.items, `${path}[]`) : [])];
}

describe("spec.session's schema", () => {
  it("names, for kubectl explain, the providers that honour each field", () => {
    const crd = renderAllCrds().get("wa-operator.io_whatsappinstances.yaml") as { spec: { versions: { schema: { openAPIV3Schema: Node } }[] } };
    const properties = crd.spec.versions[0]?.schema.openAPIV3Schema.properties?.["spec"]?.properties?.["session"]?.properties ?? {};
    expect(properties["rejectCalls"]?.description).toContain("Honoured by evolution;");
    expect(properties["deviceName"]?.description).toContain("Honoured by waha;");
    expect(properties["proxy"]?.description).toContain("Honoured by waha, evolution;");
    expect(properties["businessProfile"]?.description).toContain("Honoured by cloud_api;");
    expect(properties["ignore"]?.properties?.["status"]?.description).toContain("Honoured by waha;");
  });

  it("bounds every string and list, so the API server's CEL cost stays bounded", () => {
    // An enum is bounded by its longest value.
    const unbounded = leaves(schema, "session").filter(([, node]) => (node.type === "string" ? node.maxLength === undefined && !node.enum : node.maxItems === undefined));
    expect(unbounded.map(([path]) => path)).toEqual([]);
  });

  it("refuses a proxy URL carrying credentials", () => {
    expect(sessionSpecSchema.safeParse({ proxy: { url: "http://user:pass@proxy.example:3128" } }).success).toBe(false);
    expect(sessionSpecSchema.safeParse({ proxy: { url: "socks5://proxy.example:1080" } }).success).toBe(true);
  });
});
