/**
 * A provider client whose every call is a client span (`provider <operation>`), so a pass's
 * trace shows which provider calls it made and how long each took; the HTTP requests inside
 * carry its traceparent (transport/http.ts). A no-op when tracing is off (src/tracing.ts).
 */
import { withSpan } from "../tracing.ts";
import { PROVIDER_OPERATIONS, type ProviderClient } from "./types.ts";

/** Every call a reconcile can make through a client: each becomes a span. */
const OPERATIONS = [...PROVIDER_OPERATIONS.required, ...PROVIDER_OPERATIONS.optional];

export function traced(client: ProviderClient): ProviderClient {
  const wrapped: Record<string, unknown> = { type: client.type, capabilities: client.capabilities };
  for (const operation of OPERATIONS) {
    const call = client[operation] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    if (call === undefined) continue;
    wrapped[operation] = (...args: unknown[]) =>
      withSpan(`provider ${operation}`, { "wa_operator.provider.type": client.type, "wa_operator.provider.operation": operation }, () => call.apply(client, args), "client");
  }
  return wrapped as unknown as ProviderClient;
}
