/**
 * The pure helpers of the end-to-end benchmark (bench/e2e/figures.ts): if they count
 * wrong, every figure the benchmark prints is wrong.
 */
import { describe, expect, it } from "vitest";
import {
  addTo,
  busiestSecond,
  apiserverRequests,
  describeByResource,
  describeByVerb,
  difference,
  filterTally,
  fixed,
  markdownTable,
  parseMetric,
  percentile,
  requestKindOf,
  total,
  type RequestTally,
} from "../../bench/e2e/figures.ts";

const METRICS = `# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="GET",version="v1"} 12
apiserver_request_total{code="404",component="apiserver",dry_run="",group="",resource="secrets",scope="resource",subresource="",verb="GET",version="v1"} 5
apiserver_request_total{code="200",component="apiserver",dry_run="",group="wa-operator.io",resource="whatsappinstances",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 4
apiserver_request_total{code="200",component="apiserver",dry_run="",group="wa-operator.io",resource="whatsappinstances",scope="resource",subresource="status",verb="PATCH",version="v1beta1"} 1
apiserver_request_total_other{code="200",resource="secrets",verb="GET"} 99
apiserver_request_duration_seconds_bucket{le="0.1",resource="secrets",verb="GET"} 7
`;

describe("reading kube-apiserver's /metrics", () => {
  it("reads a metric's samples with their labels, braces and escapes inside values included", () => {
    const text = 'm{a="x}y",b="say \\"hi\\"\\\\"} 3\nm 4\nm_suffix{a="1"} 5\n';
    expect(parseMetric(text, "m")).toEqual([
      { labels: { a: "x}y", b: 'say "hi"\\' }, value: 3 },
      { labels: {}, value: 4 },
    ]);
  });

  it("tallies apiserver_request_total by verb, resource and code, summing over versions, and nothing else", () => {
    const tally = apiserverRequests(METRICS);
    expect(Object.fromEntries(tally)).toEqual({
      "GET||secrets||200": 12,
      "GET||secrets||404": 5,
      "PATCH|wa-operator.io|whatsappinstances|status|200": 5,
    });
  });

  it("gives the change between two scrapes, leaving out what did not move", () => {
    const before = apiserverRequests(METRICS);
    const after = apiserverRequests(METRICS.replace("} 12", "} 20"));
    expect(Object.fromEntries(difference(after, before))).toEqual({ "GET||secrets||200": 8 });
  });
});

describe("telling what a request counts as", () => {
  it.each([
    ["GET", "/api/v1/namespaces/ns/secrets/a-qr", "GET", "", "secrets", ""],
    ["GET", "/api/v1/namespaces/ns/secrets?limit=500", "LIST", "", "secrets", ""],
    ["GET", "/api/v1/namespaces/ns/secrets?watch=1&resourceVersion=5", "WATCH", "", "secrets", ""],
    ["POST", "/apis/wa-operator.io/v1alpha1/namespaces/ns/whatsappinstances", "POST", "wa-operator.io", "whatsappinstances", ""],
    ["PATCH", "/apis/wa-operator.io/v1alpha1/namespaces/ns/whatsappinstances/a/status", "PATCH", "wa-operator.io", "whatsappinstances", "status"],
    ["DELETE", "/api/v1/namespaces/ns/secrets", "DELETECOLLECTION", "", "secrets", ""],
    ["POST", "/api/v1/namespaces", "POST", "", "namespaces", ""],
    ["GET", "/api/v1/namespaces/ns", "GET", "", "namespaces", ""],
    ["GET", "/apis/wa-operator.io/v1alpha1/clusterwhatsappproviders/x", "GET", "wa-operator.io", "clusterwhatsappproviders", ""],
  ])("%s %s is %s", (method, url, verb, group, resource, subresource) => {
    expect(requestKindOf(method, url)).toEqual({ verb, group, resource, subresource });
  });

  it("counts a server-side apply as APPLY, as the API server does", () => {
    expect(requestKindOf("PATCH", "/api/v1/namespaces/ns/secrets/a", "application/apply-patch+yaml").verb).toBe("APPLY");
  });

  it("takes the benchmark's own requests out of the server's count", () => {
    const server = apiserverRequests(METRICS);
    const own: RequestTally = new Map();
    addTo(own, { verb: "GET", group: "", resource: "secrets", subresource: "", code: "200" }, 12);
    const rest = difference(server, own);
    expect(total(rest)).toBe(10);
    expect(total(filterTally(rest, (kind) => kind.code === "404"))).toBe(5);
  });
});

describe("describing the figures", () => {
  const tally = apiserverRequests(METRICS);

  it("gives requests per instance by verb, with the share answered 404", () => {
    expect(describeByVerb(tally, 2)).toBe("11: GET 8.5 (2.5 404), PATCH 2.5");
  });

  it("gives requests per instance by verb and resource, the largest first", () => {
    expect(describeByResource(tally, 2)).toBe("GET secrets 8.5, PATCH whatsappinstances/status 2.5");
    expect(describeByResource(tally, 2, 1)).toBe("GET secrets 8.5, … 1 more");
  });

  it.each([
    [50, 50],
    [99, 99],
    [100, 100],
    [0, 1],
  ])("takes the nearest-rank p%i of 1..100 as %i", (p, expected) => {
    const values = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(values, p)).toBe(expected);
  });

  it("has no percentile of nothing", () => {
    expect(percentile([], 50)).toBeNaN();
  });

  it.each([
    [0, "0"],
    [0.00412, "0.0041"],
    [0.25, "0.25"],
    [2, "2"],
    [19.46, "19.5"],
    [109.4, "109"],
    [Number.NaN, "n/a"],
  ])("writes %d as %s", (value, text) => {
    expect(fixed(value)).toBe(text);
  });

  it("writes a markdown table, escaping | in cells", () => {
    expect(markdownTable(["a", "b"], [["1", "x|y"]])).toBe("| a | b |\n| --- | --- |\n| 1 | x\\|y |");
  });
});

describe("busiestSecond", () => {
  it("counts the calls of the fullest whole second from the start", () => {
    expect(busiestSecond([], 0)).toBe(0);
    expect(busiestSecond([100, 900, 1_000, 1_100, 1_999, 2_500], 0)).toBe(3);
    expect(busiestSecond([1_500, 1_600, 2_400], 1_000)).toBe(2);
  });
});
